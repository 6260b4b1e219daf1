/**
 * The warm-up session of a member's master (`lib/mesh/warm.ts`) as
 * `connectCrew` drives it: started only once the mesh is ready, once per
 * member and once per restart, through the member's master, and a failing
 * one never fails the connect. The tunnels are stand-ins
 * (`tests/fakes/ssh_tunnel.ts` as `CRABBOX_SSH`, started through the real
 * anchor); the warm-up sessions are answered by the fake process runner.
 */

import assert from "node:assert/strict";
import type { Lease } from "../../lib/lease/claims.ts";
import { connectCrew } from "../../lib/mesh/connect.ts";
import type { ConnectTiming, MeshEvent } from "../../lib/mesh/plan.ts";
import { type ProcessRunner, systemProcess } from "../../lib/process/mod.ts";
import { memberControlPath } from "../../lib/ssh/control.ts";
import { type FakeCall, fakeProcess, type FakeResult } from "../fakes/process.ts";

const FAKE_TUNNEL = new URL("../fakes/ssh_tunnel.ts", import.meta.url).pathname;

function lease(slug: string, n: number): Lease {
  const id = `cbx-${n.toString(16).padStart(12, "0")}`;
  return {
    id,
    provider: "local",
    providerId: id,
    crew: "warm",
    slug,
    role: slug,
    owner: "tester",
    labels: {},
    expose: [8080],
    ssh: { host: `127.77.9.${n}`, port: 22, user: "root" },
    tailscale: false,
    createdAt: "2026-01-01T00:00:00Z",
    state: "active",
  };
}

/** A warm-up call as the fake saw it, with what the mesh had said by then. */
interface Seen extends FakeCall {
  /** Whether `connectCrew` had resolved. */
  resolved: boolean;
  /** The `up` events so far. */
  ups: number;
}

async function setup(answer: (call: FakeCall) => FakeResult) {
  const home = await Deno.makeTempDir({ prefix: "cbx-warm-" });
  const wrapper = `${home}/ssh`;
  await Deno.writeTextFile(
    wrapper,
    `#!/bin/sh\nexec '${Deno.execPath()}' run -A '${FAKE_TUNNEL}' "$@"\n`,
  );
  await Deno.chmod(wrapper, 0o755);
  const state = { resolved: false, ups: 0 };
  const seen: Seen[] = [];
  const fake = fakeProcess({
    ssh: (call) => {
      seen.push({ ...call, ...state });
      return answer(call);
    },
  });
  // Sessions (a remote command after the destination) go to the fake; the
  // anchor, the stand-in tunnels and `ssh -O check` run for real.
  const runner: ProcessRunner = {
    output: (program, o) => systemProcess.output(program, o),
    spawn: (program, o) =>
      program === wrapper && o.args?.at(-1) === "exit 0"
        ? fake.spawn(program, o)
        : systemProcess.spawn(program, o),
  };
  const env = (k: string) =>
    ({ CRABBOX_HOME: home, CRABBOX_OWNER: "tester", CRABBOX_SSH: wrapper } as Record<
      string,
      string
    >)[k];
  const logs: string[] = [];
  const warmed: ConnectTiming[] = [];
  const events: MeshEvent[] = [];
  const options = {
    home,
    env,
    process: runner,
    log: (m: string) => void logs.push(m),
    backoff: { initialMs: 20, maxMs: 100 },
    portRange: { first: 54100, last: 54199 },
    onTiming: (t: ConnectTiming) => void (t.phase === "warm" && warmed.push(t)),
    onEvent: (e: MeshEvent) => {
      events.push(e);
      if (e.state === "up") state.ups++;
    },
  };
  return { home, state, seen, logs, warmed, events, options };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const controlOf = (call: FakeCall) =>
  call.args.find((a) => a.startsWith("ControlPath="))?.slice("ControlPath=".length);

Deno.test("warm-up: one session per member through its master, only after ready, and again after a restart", async () => {
  const s = await setup(() => ({}));
  const members = [lease("api", 1), lease("db", 2)];
  try {
    const mesh = await connectCrew("warm", { ...s.options, members });
    s.state.resolved = true;
    try {
      assert.equal(s.seen.length, 0, "no session may start before connectCrew resolved");
      await until("two warm-ups", () => s.warmed.length === 2);
      assert.equal(s.seen.length, 2);
      const paths = await Promise.all(
        members.map((l) => memberControlPath(s.home, "warm", l.id)),
      );
      assert.deepEqual(s.seen.map(controlOf).sort(), [...paths].sort());
      for (const call of s.seen) {
        assert.ok(call.resolved, "started after ready");
        assert.ok(call.args.includes("ControlMaster=no"), call.args.join(" "));
        const dash = call.args.indexOf("--");
        assert.deepEqual(call.args.slice(dash + 2), ["exit 0"]);
        assert.match(call.args[dash + 1], /^root@127\.77\.9\.[12]$/);
      }
      assert.deepEqual(s.warmed.map((t) => t.peer).sort(), ["api", "db"]);
      assert.deepEqual(s.logs, []);

      // The api member's ssh dies: its restart gets one session, the db member none.
      const api = mesh.status().find((m) => m.peer === "api")!;
      const upsBefore = s.state.ups;
      Deno.kill(api.pid!, "SIGKILL");
      await until(
        "api restarted",
        () => s.events.some((e) => e.peer === "api" && e.state === "up" && e.restarts === 1),
      );
      await until("a third warm-up", () => s.warmed.length === 3);
      assert.equal(s.seen.length, 3);
      assert.equal(controlOf(s.seen[2]), paths[0]);
      assert.ok(s.seen[2].ups > upsBefore, "the restart's session started after its up");
      assert.deepEqual(s.warmed.map((t) => t.peer).sort(), ["api", "api", "db"]);
    } finally {
      await mesh.close();
    }
    assert.equal(s.seen.length, 3, "nothing more after close");
  } finally {
    await Deno.remove(s.home, { recursive: true });
  }
});

Deno.test("warm-up: a failing session does not fail the connect; one log line says so", async () => {
  const s = await setup(() => ({
    code: 255,
    stderr: "mux_client_request_session: session request failed: Session open refused by peer\n",
  }));
  try {
    const mesh = await connectCrew("warm", { ...s.options, members: [lease("api", 3)] });
    s.state.resolved = true;
    try {
      await until("the warm-up's log line", () => s.logs.length === 1);
      assert.match(
        s.logs[0],
        /^crew "warm": api: warm-up session through its master failed \(mux_client_request_session: session request failed: Session open refused by peer\)/,
      );
      assert.equal(s.seen.length, 1);
      assert.ok(s.seen[0].resolved);
      assert.deepEqual(s.warmed, []);
      assert.deepEqual(mesh.status().map((m) => m.state), ["up"]);
      assert.ok((await mesh.check()).every((f) => f.ok));
    } finally {
      await mesh.close();
    }
  } finally {
    await Deno.remove(s.home, { recursive: true });
  }
});
