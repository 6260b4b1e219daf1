import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";
import type { Provider } from "../../providers/types.ts";
import type { FakeCall } from "../fakes/process.ts";

/** A memory provider whose boxes have an ssh endpoint (ssh itself is faked). */
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

/**
 * A fake ssh that does what sshd does with the command string it receives:
 * `sh -c <string>` (here, locally). Records each remote string and its stdout.
 */
function shellSsh() {
  const seen: { line: string | undefined; stdout: string }[] = [];
  const program = async (call: FakeCall) => {
    const dest = call.args.indexOf("--") + 1;
    const rest = call.args.slice(dest + 1);
    assert.ok(rest.length <= 1, `ssh got the command as one string: ${JSON.stringify(rest)}`);
    const line = rest[0];
    if (line === undefined) {
      seen.push({ line, stdout: "" });
      return { code: 0 };
    }
    const out = await new Deno.Command("sh", {
      args: ["-c", line],
      stdout: "piped",
      stderr: "piped",
      env: { HOME: "/remote-home" },
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    seen.push({ line, stdout });
    return { code: out.code, stdout };
  };
  return { seen, program };
}

const HARD_WORDS = [
  "a b",
  "it's",
  "$HOME",
  "safe;id",
  "",
  "line1\nline2",
  "ünïcödé ✓",
  '"dq" `bq` \\ *',
  "-n",
];

Deno.test("run/ssh --id pass every argv word intact (spaces, quotes, $, ;, empty, newline, non-ASCII)", async () => {
  const ssh = shellSsh();
  const world = await cliWorld({ sshy: sshy() }, ssh.program);
  try {
    const w = await world.run(["warmup", "--crew", "q", "--slug", "a", "--provider", "sshy"]);
    assert.equal(w.code, 0, w.stderr);
    for (const verb of ["run", "ssh"]) {
      const r = await world.run([verb, "--id", "q/a", "--", "printf", "<%s>\\n", ...HARD_WORDS]);
      assert.equal(r.code, 0, r.stderr);
      const last = ssh.seen.at(-1)!;
      assert.equal(last.stdout, HARD_WORDS.map((w) => `<${w}>\n`).join(""), last.line);
    }
  } finally {
    await world.close();
  }
});

Deno.test("run --id returns the remote status of sh -c 'exit 7' and a ; never runs a second command", async () => {
  const ssh = shellSsh();
  const world = await cliWorld({ sshy: sshy() }, ssh.program);
  try {
    await world.run(["warmup", "--crew", "q", "--slug", "a", "--provider", "sshy"]);
    const seven = await world.run(["run", "--id", "q/a", "--", "sh", "-c", "exit 7"]);
    assert.equal(seven.code, 7, seven.stderr);
    const semi = await world.run(["run", "--id", "q/a", "--", "echo", "safe;echo", "INJECTED"]);
    assert.equal(semi.code, 0);
    assert.equal(ssh.seen.at(-1)!.stdout, "safe;echo INJECTED\n");
    const failing = await world.run(["run", "--id", "q/a", "--", "false"]);
    assert.equal(failing.code, 1);
  } finally {
    await world.close();
  }
});

Deno.test("run --shell sends one shell string as written; with a command after -- it is exit 2", async () => {
  const ssh = shellSsh();
  const world = await cliWorld({ sshy: sshy() }, ssh.program);
  try {
    await world.run(["warmup", "--crew", "q", "--slug", "a", "--provider", "sshy"]);
    const r = await world.run(["run", "--id", "q/a", "--shell", "echo one && echo $HOME; exit 3"]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(ssh.seen.at(-1)!.stdout, "one\n/remote-home\n");
    const both = await world.run(["run", "--id", "q/a", "--shell", "true", "--", "true"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^crabbox: give a command after -- or --shell, not both\n$/);
    const empty = await world.run(["ssh", "--id", "q/a", "--shell", " "]);
    assert.equal(empty.code, 2);
  } finally {
    await world.close();
  }
});

for (
  const flag of [
    ["--init", "/dev/null"],
    ["--tailscale"],
    ["--provider", "sshy"],
    ["--keep"],
    ["--no-wait"],
    ["--wait-timeout", "1m"],
  ]
) {
  Deno.test(`run --id with ${flag[0]} (new box only) exits 2 naming it`, async () => {
    const ssh = shellSsh();
    const world = await cliWorld({ sshy: sshy() }, ssh.program);
    try {
      await world.run(["warmup", "--crew", "q", "--slug", "a", "--provider", "sshy"]);
      const r = await world.run(["run", "--id", "q/a", ...flag, "--", "true"]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(
        r.stderr,
        `crabbox: --id runs on an existing box; ${flag[0]} only applies when run creates one\n`,
      );
      assert.equal(ssh.seen.length, 0, "nothing ran on the box");
    } finally {
      await world.close();
    }
  });
}
