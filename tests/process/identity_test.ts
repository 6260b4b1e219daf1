import assert from "node:assert/strict";
import {
  killIfMatches,
  parseCmdline,
  parseProcStat,
  processIdentity,
  sameProcess,
  shellQuote,
  startAnchor,
} from "../../lib/process/identity.ts";
import { type ProcessRunner, systemProcess } from "../../lib/process/run.ts";

Deno.test("parseProcStat: comm with spaces and parentheses", () => {
  const tail = "S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
  assert.deepEqual(parseProcStat(`42 (ssh) ${tail}`), { state: "S", startTime: "987654" });
  assert.deepEqual(parseProcStat(`42 (a) b (c)) ${tail}`), { state: "S", startTime: "987654" });
  assert.equal(parseProcStat("garbage"), undefined);
  assert.equal(parseProcStat("1 (x) S 1 2"), undefined);
});

Deno.test("parseCmdline", () => {
  assert.deepEqual(parseCmdline("ssh\0-N\0\0--\0root@h\0"), ["ssh", "-N", "", "--", "root@h"]);
  assert.deepEqual(parseCmdline(""), []);
});

/** The identity of a just-spawned child, once it has exec'd `prog`. */
async function identityOf(pid: number, prog: string) {
  for (let i = 0; i < 100; i++) {
    const id = await processIdentity(pid);
    if (id?.argv[0]?.endsWith(prog)) return id;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no identity for ${pid}`);
}

Deno.test("processIdentity of a live child, and gone after exit", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const id = await identityOf(child.pid, "sleep");
    assert.deepEqual(id.argv.slice(1), ["30"]);
    assert.match(id.startTime, /^\d+$/);
    assert.ok(sameProcess(id, { ...id }));
    assert.ok(!sameProcess(id, { ...id, startTime: "1" }));
    assert.ok(!sameProcess(id, { ...id, argv: ["sleep", "31"] }));
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  assert.equal(await processIdentity(child.pid), undefined);
  assert.equal(await processIdentity(-1), undefined);
});

Deno.test("killIfMatches kills only the recorded process", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const id = await identityOf(child.pid, "sleep");
  try {
    // A reused pid: same pid, another start time or argv → nothing is signalled.
    assert.equal(
      await killIfMatches({ ...id, startTime: String(Number(id.startTime) - 1) }),
      false,
    );
    assert.equal(await killIfMatches({ ...id, argv: [id.argv[0], "31"] }), false);
    assert.equal(await processIdentity(child.pid).then((x) => x?.pid), child.pid);
    // The real identity → stopped.
    assert.equal(await killIfMatches(id), true);
    const st = await child.status;
    assert.equal(st.signal, "SIGTERM");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }
});

Deno.test("killIfMatches escalates to SIGKILL after the grace period", async () => {
  // One process that ignores SIGTERM (exec keeps the ignored disposition), so
  // the SIGKILL leaves nothing behind (a backgrounded sleep outlived the test).
  const child = new Deno.Command("sh", { args: ["-c", "trap '' TERM; exec sleep 30"] }).spawn();
  const id = await identityOf(child.pid, "sleep");
  const sent: string[] = [];
  const ok = await killIfMatches(id, {
    graceMs: 200,
    kill: (pid, sig) => {
      sent.push(sig);
      Deno.kill(pid, sig);
    },
  });
  assert.equal(ok, true);
  assert.deepEqual(sent, ["SIGTERM", "SIGKILL"]);
  await child.status;
});

Deno.test("killIfMatches with a fake /proc never signals a mismatching process", async () => {
  const files: Record<string, string> = {
    "/proc/77/stat": "77 (ssh) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0",
    "/proc/77/cmdline": "ssh\0-N\0",
  };
  const sent: number[] = [];
  const ok = await killIfMatches(
    { pid: 77, startTime: "499", argv: ["ssh", "-N"] },
    { read: (p) => Promise.resolve(files[p]), kill: (pid) => void sent.push(pid) },
  );
  assert.equal(ok, false);
  assert.deepEqual(sent, []);
});

Deno.test("shellQuote survives sh", async () => {
  const args = ["plain", "it's", "$HOME", "a b", "`x`", "-o", "'", ""];
  const out = await new Deno.Command("sh", {
    args: ["-c", `printf '%s\\n' ${args.map(shellQuote).join(" ")}`],
    stdout: "piped",
  }).output();
  assert.deepEqual(new TextDecoder().decode(out.stdout).split("\n").slice(0, -1), args);
});

Deno.test("anchor: spawn runs the program itself, reports exit codes, kill works", async () => {
  const anchor = startAnchor();
  try {
    const a = await anchor.spawn(["sh", "-c", "exit 7"]);
    assert.equal((await a.status).code, 7);
    const b = await anchor.spawn(["sleep", "30"]);
    const id = await identityOf(b.pid, "sleep");
    assert.deepEqual(id.argv.slice(1), ["30"]);
    b.kill("SIGTERM");
    assert.equal((await b.status).code, 143);
  } finally {
    await anchor.close();
  }
});

Deno.test("anchor: closing (or the owner dying) stops every child still running", async () => {
  const anchor = startAnchor();
  const p = await anchor.spawn(["sleep", "30"]);
  await identityOf(p.pid, "sleep");
  await anchor.close();
  await p.status;
  assert.equal(await processIdentity(p.pid), undefined);
});

/** Process group and session of a live process (`/proc/<pid>/stat` fields 5 and 6). */
async function groupAndSession(pid: number): Promise<{ pgrp: number; session: number }> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const [, , pgrp, session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  return { pgrp, session };
}

Deno.test({
  name:
    "anchor: every child leads a session of its own (scheduled apart), and still stops with the anchor",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const anchor = startAnchor();
    const a = await anchor.spawn(["sleep", "30"]);
    const b = await anchor.spawn(["sleep", "30"]);
    await identityOf(a.pid, "sleep");
    await identityOf(b.pid, "sleep");
    assert.deepEqual(await groupAndSession(a.pid), { pgrp: a.pid, session: a.pid });
    assert.deepEqual(await groupAndSession(b.pid), { pgrp: b.pid, session: b.pid });
    await anchor.close();
    assert.equal((await a.status).code, 143);
    assert.equal((await b.status).code, 143);
    assert.equal(await processIdentity(a.pid), undefined);
    assert.equal(await processIdentity(b.pid), undefined);
  },
});

Deno.test("anchor: SIGKILL of the owner process leaves no child behind", async () => {
  const code = `
    import { startAnchor } from ${
    JSON.stringify(new URL("../../lib/process/identity.ts", import.meta.url).href)
  };
    const a = startAnchor();
    const p = await a.spawn(["sleep", "30"]);
    console.log(p.pid);
    await new Promise(() => {});`;
  const owner = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = owner.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const pid = Number((await reader.read()).value?.trim());
  await identityOf(pid, "sleep");
  owner.kill("SIGKILL");
  await owner.status;
  reader.releaseLock();
  for (let i = 0; i < 100 && await processIdentity(pid); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(await processIdentity(pid), undefined);
});

/** A fake `/proc` holding one process; `swap` replaces it (a pid reused by another program). */
function fakeProc(pid: number, state: string, startTime: string, argv: string[]) {
  const files = new Map<string, string>();
  const put = (st: string, start: string, args: string[]) => {
    files.set(
      `/proc/${pid}/stat`,
      `${pid} (${args[0]}) ${st} 1 ${pid} ${pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 0 0`,
    );
    files.set(`/proc/${pid}/cmdline`, args.join("\0") + "\0");
  };
  put(state, startTime, argv);
  return {
    read: (p: string) => Promise.resolve(files.get(p)),
    swap: put,
    gone: () => files.clear(),
  };
}

Deno.test("killIfMatches: identity changes between SIGTERM and SIGKILL → no SIGKILL", async () => {
  const proc = fakeProc(88, "S", "700", ["ssh", "-N"]);
  const sent: string[] = [];
  const ok = await killIfMatches({ pid: 88, startTime: "700", argv: ["ssh", "-N"] }, {
    graceMs: 0, // no polling: the re-check right before SIGKILL is all that stands in the way
    read: proc.read,
    kill: (_pid, sig) => {
      sent.push(sig);
      // Our ssh ignores SIGTERM and dies later; the pid is reused by another program.
      if (sig === "SIGTERM") proc.swap("S", "900", ["postgres"]);
    },
  });
  assert.deepEqual(sent, ["SIGTERM"]);
  assert.equal(ok, true, "ours is gone; the stranger was not touched");
});

Deno.test("killIfMatches: still ours after the grace period → SIGKILL; gone after SIGTERM → none", async () => {
  const stubborn = fakeProc(89, "S", "700", ["ssh", "-N"]);
  const sent: string[] = [];
  const ok = await killIfMatches({ pid: 89, startTime: "700", argv: ["ssh", "-N"] }, {
    graceMs: 0,
    read: stubborn.read,
    kill: (_pid, sig) => {
      sent.push(sig);
      if (sig === "SIGKILL") stubborn.gone();
    },
  });
  assert.deepEqual([ok, sent], [true, ["SIGTERM", "SIGKILL"]]);

  const polite = fakeProc(90, "S", "700", ["ssh", "-N"]);
  const sent2: string[] = [];
  const ok2 = await killIfMatches({ pid: 90, startTime: "700", argv: ["ssh", "-N"] }, {
    graceMs: 1000,
    read: polite.read,
    kill: (_pid, sig) => {
      sent2.push(sig);
      polite.gone();
    },
  });
  assert.deepEqual([ok2, sent2], [true, ["SIGTERM"]]);
});

Deno.test("killIfMatches: a zombie (state Z or X) is not alive → no signal", async () => {
  for (const state of ["Z", "X"]) {
    const proc = fakeProc(91, state, "700", ["ssh", "-N"]);
    const sent: string[] = [];
    const ok = await killIfMatches({ pid: 91, startTime: "700", argv: ["ssh", "-N"] }, {
      read: proc.read,
      kill: (_pid, sig) => void sent.push(sig),
    });
    assert.deepEqual([ok, sent], [false, []], state);
    assert.equal(await processIdentity(91, proc.read), undefined, state);
  }
  const live = fakeProc(92, "S", "700", ["ssh", "-N"]);
  assert.deepEqual(await processIdentity(92, live.read), {
    pid: 92,
    startTime: "700",
    argv: ["ssh", "-N"],
  });
});

/** The session of the anchor that runs a child: its monitor subshell's (the child's parent's). */
async function anchorSession(anchor: ReturnType<typeof startAnchor>): Promise<number> {
  const out = await Deno.makeTempFile();
  try {
    const p = await anchor.spawn([
      "sh",
      "-c",
      'cut -d" " -f6 "/proc/$PPID/stat" > "$1"',
      "sh",
      out,
    ]);
    assert.equal((await p.status).code, 0);
    return Number((await Deno.readTextFile(out)).trim());
  } finally {
    await Deno.remove(out);
  }
}

Deno.test({
  name:
    "anchor: its own session through setsid(1), spawned without a fork of this process; without setsid, detached",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const ours = (await groupAndSession(Deno.pid)).session;
    for (const setsidMissing of [false, true]) {
      const spawned: { program: string; detached?: boolean }[] = [];
      const runner: ProcessRunner = {
        output: (program, o) => systemProcess.output(program, o),
        spawn: (program, o) => {
          spawned.push({ program, detached: o.detached });
          if (setsidMissing && program === "setsid") throw new Deno.errors.NotFound("setsid");
          return systemProcess.spawn(program, o);
        },
      };
      const anchor = startAnchor(runner);
      try {
        const session = await anchorSession(anchor);
        assert.notEqual(session, ours, "the anchor leads a session of its own");
        const a = await anchor.spawn(["sh", "-c", "exit 7"]);
        assert.equal((await a.status).code, 7);
      } finally {
        await anchor.close();
      }
      assert.deepEqual(
        spawned,
        setsidMissing
          ? [{ program: "setsid", detached: undefined }, { program: "sh", detached: true }]
          : [{ program: "setsid", detached: undefined }],
      );
    }
  },
});
