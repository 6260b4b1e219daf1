import assert from "node:assert/strict";
import { cliWorld, entries } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

// Every bad input: exit 2, exactly one "crabbox: …" line (plus at most a hint),
// no stack trace, nothing created, no process started.
const BAD: string[][] = [
  ["warmup", "--crew", "!!", "--slug", "a", "--provider", "local"],
  ["warmup", "--crew=-oProxyCommand=x", "--slug", "a", "--provider", "local"],
  ["warmup", "--crew", "t2", "--slug", "a", "--provider", "local", "--expose", "70000"],
  ["warmup", "--crew", "t2", "--slug", "a", "--provider", "local", "--expose", "http"],
  ["warmup", "--crew", "t2", "--slug", "-oProxyCommand=x", "--provider", "local"],
  ["warmup", "--crew", "t2", "--slug", "a", "--provider", "nope"],
  ["warmup", "--crew", "t2", "--slug", "a", "--provider", "local", "--tailscale"],
  ["warmup", "--crew", "t2", "--slug", "a", "--init", "/nonexistent/script.sh"],
  ["warmup", "--crew", "t2", "--slug", "a", "--init", "/dev/null", "--user-data", "/dev/null"],
  ["warmup", "--crew", "t2", "--slug", "a", "--role", "w"],
  ["warmup", "--crew", "t2", "--role", "w", "--count", "101"],
  ["warmup", "--crew", "t2", "--slug", "a", "--ttl", "soon"],
  ["warmup", "--no-such-flag"],
  ["run", "--id", "t2/a"],
  ["run", "--id", "nota-lease-ref", "--", "true"],
  ["run", "--id", "t2/a", "--crew", "t2", "--", "true"],
  ["ssh"],
  ["ssh", "--id", "cbx-000000000001", "--crew", "t2"],
  ["status"],
  ["status", "--id", "t2/a", "--crew", "t2"],
  ["release"],
  ["release", "--id", "t2/a", "--crew", "t2"],
  ["crew", "connect"],
  ["crew", "connect", "t2", "--export", "--json"],
  ["crew", "bogus"],
  ["crew", "up", "--json"],
  ["list", "--bogus", "--json"],
  ["completions", "fish"],
  ["warmup", "--crew", "t2", "--slug", "a", "--wait-timeout", "soon"],
  ["run", "--id", "t2/a", "--network", "vpn", "--", "true"],
  ["ssh", "--id", "t2/a", "--network", "vpn"],
  ["crew", "connect", "t2", "--network", "vpn"],
  ["bogus"],
];

for (const args of BAD) {
  Deno.test(`bad input exits 2 with one line: crabbox ${args.join(" ")}`, async () => {
    const world = await cliWorld({ memory: memoryProvider("memory") });
    try {
      const r = await world.run(args);
      assert.equal(r.code, 2, `${args.join(" ")} → ${r.code}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split("\n");
      if (args.includes("--json")) {
        // With --json the one line is the JSON error object.
        assert.equal(lines.length, 1, r.stderr);
        assert.equal(JSON.parse(lines[0]).error.kind, "usage");
      } else assert.match(lines[0], /^crabbox: \S/, r.stderr);
      assert.ok(
        lines.length === 1 || (lines.length === 2 && lines[1].startsWith("hint: ")),
        `one line (plus a hint): ${JSON.stringify(r.stderr)}`,
      );
      assert.ok(!r.stderr.includes("    at "), "no stack trace");
      assert.equal(r.stdout, "");
      assert.deepEqual(await entries(`${world.home}/claims`), []);
      assert.deepEqual(await entries(`${world.home}/local`), []);
      assert.deepEqual(world.process.calls, [], "no process started");
    } finally {
      await world.close();
    }
  });
}

Deno.test("a lease that does not exist is not-found (3), not a usage error", async () => {
  const world = await cliWorld();
  try {
    const r = await world.run(["run", "--id", "t2/a", "--", "true"]);
    assert.equal(r.code, 3, r.stderr);
    // Providers without credentials were not asked: the hint says which.
    assert.match(
      r.stderr,
      /^crabbox: no active lease "t2\/a"\nhint: not queried for lack of credentials: aws, /,
    );
  } finally {
    await world.close();
  }
});

Deno.test("a bad config file is exit 11 with file:line", async () => {
  const world = await cliWorld();
  try {
    await Deno.writeTextFile(`${world.home}/config.yaml`, "hetzner:\n  sshPortt: 22\n");
    const r = await world.run(["list"]);
    assert.equal(r.code, 11, r.stderr);
    assert.match(r.stderr, /^crabbox: .*config\.yaml:2: unknown key "hetzner\.sshPortt"/);
  } finally {
    await world.close();
  }
});

Deno.test("a taken slug in a crew is a usage error and creates nothing more", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const args = ["warmup", "--crew", "t3", "--slug", "api", "--provider", "memory"];
    assert.equal((await world.run(args)).code, 0);
    const dup = await world.run(args);
    assert.equal(dup.code, 2, dup.stderr);
    assert.match(
      dup.stderr,
      /^crabbox: crew t3 already has a member api \(cbx-[0-9a-f]{12}\)\nhint: /,
    );
    assert.equal(mem.creates.length, 1);
    assert.equal(
      (await entries(`${world.home}/claims`)).filter((e) => e.endsWith(".json")).length,
      1,
    );
  } finally {
    await world.close();
  }
});
