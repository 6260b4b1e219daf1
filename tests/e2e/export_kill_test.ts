// crew connect --export killed at any point of its start (issue 10): whatever
// it started, `crew disconnect` finds and stops it, and a new connect works.
import assert from "node:assert/strict";
import { cliArgv, cliEnv, crabbox } from "./_cli.ts";
import { requireE2E } from "./_local.ts";
import { pgrep, waitFor } from "./_e2e_util.ts";

const enabled = requireE2E();
const CREW = "kx";

const daemonFile = (home: string) => `${home}/crew/${CREW}/daemon.json`;
const cmDir = (home: string) => `${home}/crew/${CREW}/cm/`;
/**
 * The member's mesh ssh (the ControlMaster itself), not a short-lived
 * `ssh -O check` on the same ControlPath.
 */
const meshSsh = (home: string) => `ControlMaster=yes -o ControlPath=${cmDir(home)}`;

/** Start `crew connect --export` as a process of its own. */
function startConnect(home: string, extraEnv: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: cliArgv(["crew", "connect", CREW, "--export"]),
    env: cliEnv(home, extraEnv),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** No ssh of this crew runs, no ControlMaster socket and no daemon.json are left. */
async function assertNothingLeft(home: string, context: string): Promise<void> {
  assert.deepEqual(await pgrep(cmDir(home)), [], `${context}: an ssh of the crew still runs`);
  const sockets = await Array.fromAsync(Deno.readDir(cmDir(home))).catch(() => []);
  assert.deepEqual(sockets.map((e) => e.name), [], `${context}: stale ControlMaster socket`);
  assert.equal(
    await Deno.stat(daemonFile(home)).then(() => true, () => false),
    false,
    `${context}: daemon.json left`,
  );
}

/** A new `connect --export` comes up, its forward answers; then disconnect stops it. */
async function assertConnectWorks(home: string, context: string): Promise<void> {
  const c = await crabbox(home, ["crew", "connect", CREW, "--export"]);
  assert.equal(c.code, 0, `${context}: new connect failed: ${c.stderr}`);
  const m = /CRABBOX_CREW_A_8080=127\.0\.0\.1:(\d+)/.exec(c.stdout);
  assert.ok(m, c.stdout);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(m[1]) });
  const buf = new Uint8Array(64);
  const n = await conn.read(buf);
  conn.close();
  assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim(), "hi-from-a");
  const d = await crabbox(home, ["crew", "disconnect", CREW]);
  assert.equal(d.code, 0, d.stderr);
  await assertNothingLeft(home, `${context}, after the new connect's disconnect`);
}

async function withCrew(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "cbx-e2e-" });
  try {
    const w = await crabbox(home, [
      "warmup",
      "--crew",
      CREW,
      "--slug",
      "a",
      "--expose",
      "8080",
      "--provider",
      "local",
    ]);
    assert.equal(w.code, 0, w.stderr);
    const serve = await crabbox(home, [
      "run",
      "--id",
      `${CREW}/a`,
      "--",
      "bash",
      "-c",
      "setsid socat TCP-LISTEN:8080,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo hi-from-a' " +
      "</dev/null >/dev/null 2>&1 & for _ in $(seq 100); do ss -Hltn 'sport = :8080' | grep -q . && exit 0; sleep 0.05; done; exit 1",
    ]);
    assert.equal(serve.code, 0, serve.stderr);
    await fn(home);
  } finally {
    await crabbox(home, ["crew", "disconnect", CREW]);
    await crabbox(home, ["release", "--crew", CREW]);
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

/**
 * The ssh runs and is up (its ControlMaster socket exists: every forward is
 * bound, so it will not exit on a port clash), but daemon.json does not name
 * its pid yet — the spawn→record window.
 */
function inGap(home: string): () => Promise<number[] | undefined> {
  return async () => {
    const pids = await pgrep(meshSsh(home));
    if (pids.length === 0) return undefined;
    const sockets = await Array.fromAsync(Deno.readDir(cmDir(home))).catch(() => []);
    if (!sockets.some((e) => e.name.startsWith("cbx-"))) return undefined;
    const text = await Deno.readTextFile(daemonFile(home)).catch(() => "");
    return pids.some((p) => !new RegExp(`"pid": ${p}\\b`).test(text)) ? pids : undefined;
  };
}

Deno.test({
  name:
    "e2e: crew connect --export SIGKILLed between spawning its ssh and recording it: disconnect finds and stops that ssh, a new connect works",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCrew(async (home) => {
      const child = startConnect(home, { CRABBOX_TEST_RECORD_DELAY_MS: "60000" });
      const pids = await waitFor("the member's ssh, not yet recorded", inGap(home));
      child.kill("SIGKILL");
      await child.status;
      assert.notDeepEqual(await pgrep(meshSsh(home)), [], "the detached ssh outlived the connect");

      const d = await crabbox(home, ["crew", "disconnect", CREW]);
      assert.equal(d.code, 0, d.stderr);
      assert.match(d.stdout, /disconnected 1 SSH-mesh daemon/, d.stdout);
      for (const p of pids) {
        assert.equal(await pgrep(cmDir(home)).then((l) => l.includes(p)), false, `ssh ${p} runs`);
      }
      await assertNothingLeft(home, "after disconnect");
      await assertConnectWorks(home, "after SIGKILL in the window");

      // Killed in the window again: the next connect --export replaces it by itself.
      const again = startConnect(home, { CRABBOX_TEST_RECORD_DELAY_MS: "60000" });
      await waitFor("the member's ssh, not yet recorded", inGap(home));
      again.kill("SIGKILL");
      await again.status;
      const c = await crabbox(home, ["crew", "connect", CREW, "--export"]);
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stderr, /replacing 1 earlier/);
      assert.equal((await pgrep(meshSsh(home))).length, 1, "exactly the new ssh runs");
      const d2 = await crabbox(home, ["crew", "disconnect", CREW]);
      assert.equal(d2.code, 0, d2.stderr);
      await assertNothingLeft(home, "after the second disconnect");
    });
  },
});

Deno.test({
  name:
    "e2e: crew connect --export SIGTERMed between spawning its ssh and recording it stops that ssh itself and exits 130",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCrew(async (home) => {
      const child = startConnect(home, { CRABBOX_TEST_RECORD_DELAY_MS: "60000" });
      await waitFor("the member's ssh, not yet recorded", inGap(home));
      child.kill("SIGTERM");
      const status = await child.status;
      assert.equal(status.code, 130, "interrupted: exit 130");
      await assertNothingLeft(home, "after the interrupted connect");
      const d = await crabbox(home, ["crew", "disconnect", CREW]);
      assert.equal(d.code, 0, d.stderr);
      await assertConnectWorks(home, "after SIGTERM in the window");
    });
  },
});

Deno.test({
  name:
    "e2e: crew connect --export killed (SIGKILL or SIGTERM) at a spread of points of its start: disconnect always leaves no ssh, a new connect works",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCrew(async (home) => {
      // Kill points measured from the moment the crew's first ssh appears
      // (negative: before it, counted from the CLI's start), so the spread
      // covers planning, the intent write, spawn, record and readiness.
      const points = [-400, -150, -50, 0, 2, 5, 10, 20, 40, 80, 160, 320];
      let caught = 0;
      for (const [i, at] of points.entries()) {
        const signal: Deno.Signal = i % 2 === 0 ? "SIGKILL" : "SIGTERM";
        const startedAt = Date.now();
        const child = startConnect(home);
        if (at < 0) {
          // Before the ssh exists: wait for the CLI to get going, then kill.
          await waitFor(
            "the CLI to start",
            async () =>
              Date.now() - startedAt > 1500 + at || (await pgrep(meshSsh(home))).length > 0
                ? true
                : undefined,
          );
        } else {
          await waitFor(
            "the member's ssh",
            async () => (await pgrep(meshSsh(home))).length > 0 ? true : undefined,
          );
          await new Promise((r) => setTimeout(r, at));
        }
        try {
          child.kill(signal);
        } catch { /* the connect finished first: disconnect must stop its daemons too */ }
        await child.status;
        if ((await pgrep(meshSsh(home))).length > 0) caught++;
        const d = await crabbox(home, ["crew", "disconnect", CREW]);
        assert.equal(d.code, 0, `kill ${signal} at ${at} ms: ${d.stderr}`);
        await assertNothingLeft(home, `kill ${signal} at ${at} ms`);
      }
      console.log(`${caught} of ${points.length} kills left an ssh for disconnect to stop`);
      await assertConnectWorks(home, "after the spread of kills");
    });
  },
});
