import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";
import { CrabboxError, ExitStatus, type ExitStatusName } from "../../lib/core/mod.ts";
import type { Provider } from "../../providers/types.ts";

/** A provider whose create fails with `error`. */
function failing(error: unknown): Provider {
  return { ...memoryProvider("broken"), create: () => Promise.reject(error) };
}

/** The error lines of stderr (progress lines like "leasing a on broken…" aside). */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("crabbox: ") || l.startsWith("hint: "));
}

const KINDS = (Object.keys(ExitStatus) as ExitStatusName[]).filter((k) => k !== "ok");

for (const kind of KINDS) {
  Deno.test(`a ${kind} error exits ${ExitStatus[kind]} with one line`, async () => {
    const error = new CrabboxError(kind, `test_${kind}`, `the ${kind} thing failed`);
    const world = await cliWorld({ broken: failing(error) });
    try {
      const r = await world.run(["warmup", "--slug", "a", "--provider", "broken"]);
      assert.equal(r.code, ExitStatus[kind], r.stderr);
      assert.deepEqual(errorLines(r.stderr), [`crabbox: the ${kind} thing failed`]);
      assert.equal(r.stdout, "");
    } finally {
      await world.close();
    }
  });
}

Deno.test("a hint is printed on a second line", async () => {
  const error = new CrabboxError("credentials", "test", "no token", { hint: "set TOKEN" });
  const world = await cliWorld({ broken: failing(error) });
  try {
    const r = await world.run(["warmup", "--slug", "a", "--provider", "broken"]);
    assert.equal(r.code, 9);
    assert.ok(r.stderr.endsWith("crabbox: no token\nhint: set TOKEN\n"), r.stderr);
  } finally {
    await world.close();
  }
});

Deno.test("an unexpected error exits 1 with its first line and no stack", async () => {
  const world = await cliWorld({ broken: failing(new Error("boom\nsecond line")) });
  try {
    const r = await world.run(["warmup", "--slug", "a", "--provider", "broken"]);
    assert.equal(r.code, 1);
    assert.deepEqual(errorLines(r.stderr), ["crabbox: boom"]);
    assert.ok(!r.stderr.includes("    at "), "no stack trace");
  } finally {
    await world.close();
  }
});

/** A memory provider whose boxes have an ssh endpoint (nothing listens: ssh is faked). */
function sshy(): Provider {
  const p = memoryProvider("sshy", ["ssh"]);
  return {
    ...p,
    async create(spec, signal) {
      const lease = await p.create(spec, signal);
      lease.ssh = { host: "127.0.0.1", port: 2222, user: "root" };
      return lease;
    },
  };
}

Deno.test("run and ssh exit with the remote command's status", async () => {
  const world = await cliWorld({ sshy: sshy() }, (call) => {
    const command = call.args.slice(call.args.indexOf("--") + 2);
    return { code: command[0] === "'exit7'" ? 7 : 0 };
  });
  try {
    const w = await world.run(["warmup", "--crew", "t1", "--slug", "a", "--provider", "sshy"]);
    assert.equal(w.code, 0, w.stderr);
    const id = w.stdout.trim();
    assert.match(id, /^cbx-[0-9a-f]{12}$/);
    const seven = await world.run(["run", "--id", "t1/a", "--", "exit7"]);
    assert.equal(seven.code, 7, seven.stderr);
    const zero = await world.run(["ssh", "--id", id, "--", "true"]);
    assert.equal(zero.code, 0, zero.stderr);
    const ssh = world.process.calls.filter((c) => c.program === "ssh" && c.args[0] !== "-V");
    assert.equal(ssh.length, 2);
    assert.deepEqual(ssh[0].args.slice(-3), ["--", "root@127.0.0.1", "'exit7'"]);
    assert.ok(ssh[0].args.includes("-p") && ssh[0].args.includes("2222"), ssh[0].args.join(" "));
  } finally {
    await world.close();
  }
});
