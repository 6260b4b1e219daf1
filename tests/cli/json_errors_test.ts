import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";
import { buildProgram } from "../../cli/program.ts";
import { makeIo } from "../../cli/output.ts";

// The test world sets no provider credentials: every provider but local was not asked.
const UNQUERIED =
  "not queried for lack of credentials: aws, azure, daytona, exe-dev, gcp, hetzner, namespace, proxmox, runpod, semaphore, sprites, ssh (crabbox doctor shows what each needs)";

function oneJsonError(stderr: string) {
  const lines = stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, `one line on stderr: ${stderr}`);
  const e = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(e), ["error"]);
  assert.deepEqual(Object.keys(e.error), ["kind", "code", "message", "hint"]);
  return e.error as { kind: string; code: string; message: string; hint: string | null };
}

Deno.test("--json errors: one JSON object on stderr, exit status unchanged", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const bad = await world.run([
      "warmup",
      "--crew",
      "t",
      "--slug",
      "a",
      "--provider",
      "nope",
      "--json",
    ]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, "");
    const e = oneJsonError(bad.stderr);
    assert.equal(e.kind, "usage");
    assert.equal(e.code, "unknown_provider");
    assert.match(e.message, /^unknown provider "nope" \(known: /);
    assert.equal(e.hint, null);

    const missing = await world.run(["status", "--id", "t/none", "--json"]);
    assert.equal(missing.code, 3);
    assert.deepEqual(oneJsonError(missing.stderr), {
      kind: "notFound",
      code: "no_lease",
      message: 'no active lease "t/none"',
      hint: UNQUERIED,
    });

    await world.run(["warmup", "--crew", "t", "--slug", "db", "--provider", "memory"]);
    const taken = await world.run(
      ["warmup", "--crew", "t", "--slug", "db", "--provider", "memory", "--json"],
    );
    assert.equal(taken.code, 2);
    const t = oneJsonError(taken.stderr);
    assert.equal(t.code, "slug_taken");
    assert.equal(t.hint, "pick another --slug or release that lease first");

    // The parser's own errors too.
    const unknown = await world.run(["list", "--bogus", "--json"]);
    assert.equal(unknown.code, 2);
    const u = oneJsonError(unknown.stderr);
    assert.equal(u.kind, "usage");
    assert.equal(u.code, "unknown_option");
    assert.match(u.message, /--bogus/);

    // Without --json (a --json after -- belongs to the remote command), the usual line.
    const plain = await world.run(["ssh", "--id", "t/none", "--", "cat", "--json"]);
    assert.equal(plain.code, 3);
    assert.equal(plain.stderr, `crabbox: no active lease "t/none"\nhint: ${UNQUERIED}\n`);
  } finally {
    await world.close();
  }
});

Deno.test("--json on release and crew disconnect: documented shapes", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const w = await world.run(["warmup", "--crew", "r", "--slug", "a", "--provider", "memory"]);
    const id = w.stdout.trim();
    const rel = await world.run(["release", "--id", id, "--json"]);
    assert.equal(rel.code, 0, rel.stderr);
    assert.deepEqual(JSON.parse(rel.stdout), {
      crew: "r",
      disconnected: 0,
      released: [id],
      failed: [],
    });
    const dis = await world.run(["crew", "disconnect", "r", "--json"]);
    assert.equal(dis.code, 0, dis.stderr);
    assert.deepEqual(JSON.parse(dis.stdout), { crew: "r", recorded: 0, stopped: 0 });
    const none = await world.run(["release", "--crew", "r", "--json"]);
    assert.deepEqual(JSON.parse(none.stdout), {
      crew: "r",
      disconnected: 0,
      released: [],
      failed: [],
    });
  } finally {
    await world.close();
  }
});

Deno.test("every command but completions and proxy (a byte pipe for ssh) accepts --json", () => {
  const program = buildProgram(makeIo({ stdout: () => {}, stderr: () => {} }, {}));
  const missing: string[] = [];
  const walk = (c: typeof program, path: string[]) => {
    if (c.commands.length === 0) {
      const exempt = path[0] === "completions" || path[0] === "proxy";
      if (!exempt && !c.options.some((o) => o.long === "--json")) {
        missing.push(path.join(" "));
      }
      return;
    }
    for (const sub of c.commands) walk(sub, [...path, sub.name]);
  };
  walk(program, []);
  assert.deepEqual(missing, []);
});
