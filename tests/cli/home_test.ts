import assert from "node:assert/strict";
import { main } from "../../cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";
import { fakeProcess, fakeSshKeygen } from "../fakes/process.ts";

async function run(home: string, args: string[]) {
  let stdout = "";
  let stderr = "";
  const process = fakeProcess({
    "ssh-keygen": fakeSshKeygen,
    ssh: () => ({ stderr: "OpenSSH_9.6p1 fake\n" }),
  });
  const code = await main(args, {
    stdout: (t) => stdout += t,
    stderr: (t) => stderr += t,
    home,
    env: (k) => ({ CRABBOX_OWNER: "tester", CRABBOX_CREW_ACL: "off" } as Record<string, string>)[k],
    providers: { memory: memoryProvider("memory") },
    process,
    fetch: () => Promise.reject(new Error("no network")),
  });
  return { code, stdout, stderr, process };
}

Deno.test("CRABBOX_HOME that is a file: exit 7, one line, nothing created", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const home = `${dir}/home-file`;
    await Deno.writeTextFile(home, "not a dir");
    for (
      const args of [["list"], ["warmup", "--crew", "h", "--slug", "a", "--provider", "memory"]]
    ) {
      const r = await run(home, args);
      assert.equal(r.code, 7, r.stderr);
      assert.equal(
        r.stderr,
        `crabbox: CRABBOX_HOME ${JSON.stringify(home)} is not a directory\n` +
          "hint: point CRABBOX_HOME at a writable directory whose path has no spaces\n",
      );
      assert.deepEqual(r.process.calls, [], "no key generated");
    }
    const doctor = await run(home, ["doctor", "--json"]);
    const check = JSON.parse(doctor.stdout).checks.find((c: { name: string }) => c.name === "home");
    assert.equal(check.status, "fail");
    assert.match(check.message, /is not a directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CRABBOX_HOME with a space: exit 7 before any key or known_hosts is written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const home = `${dir}/my home`;
    const r = await run(home, ["warmup", "--crew", "h", "--slug", "a", "--provider", "memory"]);
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /^crabbox: CRABBOX_HOME ".*my home" contains whitespace/);
    assert.equal(r.stderr.trimEnd().split("\n").length, 2);
    assert.equal(await Deno.stat(home).then(() => true, () => false), false, "nothing created");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config.yaml that is a directory: exit 11, one line naming it", async () => {
  const home = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${home}/config.yaml`);
    const r = await run(home, ["list"]);
    assert.equal(r.code, 11, r.stderr);
    assert.equal(
      r.stderr,
      `crabbox: ${home}/config.yaml is a directory, not a file\n` +
        "hint: config.yaml must be a readable YAML file (or absent)\n",
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("doctor lists every provider with its credential state, not only the usable ones", async () => {
  const home = await Deno.makeTempDir();
  try {
    const r = await run(home, ["doctor"]);
    assert.match(r.stdout, /^skip\s+hetzner\s+HCLOUD_TOKEN is not set$/m, r.stdout);
    const json = await run(home, ["doctor", "--json"]);
    const names = JSON.parse(json.stdout).checks.map((c: { name: string }) => c.name);
    for (const p of ["hetzner", "aws", "gcp", "azure"]) assert.ok(names.includes(p), p);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("a failed crew-less create removes its per-lease key directory", async () => {
  const home = await Deno.makeTempDir();
  try {
    let stderr = "";
    const broken = {
      ...memoryProvider("broken"),
      create: () => Promise.reject(new Error("quota exceeded")),
    };
    const code = await main(["warmup", "--slug", "solo", "--provider", "broken"], {
      stdout: () => {},
      stderr: (t) => stderr += t,
      home,
      env: (k) =>
        ({ CRABBOX_OWNER: "tester", CRABBOX_CREW_ACL: "off" } as Record<string, string>)[k],
      providers: { broken },
      process: fakeProcess({ "ssh-keygen": fakeSshKeygen }),
    });
    assert.equal(code, 1, stderr);
    const keys = await Array.fromAsync(Deno.readDir(`${home}/keys`)).catch(() => []);
    assert.deepEqual(keys.map((e) => e.name), [], "no key dir left behind");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
