/**
 * One crew member's tunnel: the `ssh -N -L …` process that is also the
 * member's ControlMaster — its paths, spawning it (through the foreground
 * anchor or detached), waiting until every forward works end to end, the
 * first connect with retries, and stopping it. Shared by the foreground
 * mesh (`connect.ts`) and the `--export` daemons (`daemon.ts`).
 *
 * @module
 */

import type { Runtime } from "../runtime.ts";
import { sleep } from "../core/async.ts";
import { CrabboxError } from "../core/errors.ts";
import { dirOf, ensurePrivateDir, type EnvReader, joinPath, removeFile } from "../core/fs.ts";
import {
  isLoopbackPortFree,
  memberSshArgs,
  MESH_PORT_RANGE,
  type MeshMember,
  nextFreePort,
} from "./forwards.ts";
import type { MeshForward } from "./files.ts";
import type { ConnectOptions, MemberState, MeshEvent, MeshPlan } from "./plan.ts";
import type { PeerState } from "./peer_table.ts";
import {
  ADDR_IN_USE,
  lastLogReason,
  logSize,
  openFailures,
  PERMANENT,
  probeForward,
  readLog,
} from "./probe.ts";
import type { Anchor } from "../process/identity.ts";
import type { SocketWatch } from "./socket_watch.ts";
import { sshDestination, sshProgram } from "../ssh/args.ts";
import { ensureControlDir, isSocket, memberControlPath, sshAnswers } from "../ssh/control.ts";
import { pinHostKeys } from "../ssh/known_hosts.ts";

/** One member's tunnel and its supervision state. */
export interface Tunnel {
  /** Crew name. */
  crew: string;
  /** The member. */
  member: MeshMember;
  /** Its forwards (local ports may move while reallocating). */
  forwards: MeshForward[];
  /** ControlMaster socket path. */
  controlPath: string;
  /** ssh's `-E` log file. */
  logFile: string;
  /** The crew's known_hosts file. */
  knownHostsFile: string;
  /** Current state. */
  state: MemberState;
  /** Restarts so far. */
  restarts: number;
  /** Last failure, if any. */
  lastError?: string;
  /** The running ssh, once spawned. */
  child?: Running;
  /** Resolves when the current ssh exited. */
  exited?: Promise<{ code: number }>;
  /** Exit status of the current ssh once it exited. */
  exitStatus?: { code: number };
  /** Exact argv of the current ssh. */
  argv?: string[];
  /** Set when the tunnel is being stopped (no more restarts). */
  stopping: boolean;
  /** The ssh-peer plane on this member (`connect --peers` only). */
  peer?: PeerState;
}

/** What every tunnel of one mesh shares. */
export interface Ctx {
  /** Resolved runtime. */
  rt: Runtime;
  /** Environment reader (ssh program override). */
  env: EnvReader;
  /** The caller's options. */
  options: ConnectOptions;
  /** "Is this local port free" probe. */
  isFree: (port: number) => boolean;
  /** Local port range. */
  range: { first: number; last: number };
  /** Local ports in use by this mesh (or known taken). */
  taken: Set<number>;
  /** Set a tunnel's state and report the change through `options.onEvent`. */
  emit: (t: Tunnel, state: MemberState, extra?: Partial<MeshEvent>) => void;
  /** Foreground only: starts our ssh processes and stops them if this process dies. */
  anchor?: Anchor;
  /** Called (and awaited) with `t.argv` set, right before each ssh is spawned: daemons record the intent. */
  beforeSpawn?: (t: Tunnel) => Promise<void>;
  /** Called (and awaited) right after each ssh is spawned: daemons record it at once. */
  onSpawn?: (t: Tunnel) => Promise<void>;
  /** Wakes a tunnel when its control socket appears (else it polls). */
  sockets?: SocketWatch;
  /** Called after a member's ssh came back up (the ssh-peer plane restores its forwards). */
  afterRestart?: (t: Tunnel) => Promise<void>;
  /** Warm-up sessions in flight (see `warm.ts`). */
  warming: Set<Promise<void>>;
}

function tunnelArgs(ctx: Ctx, t: Tunnel): string[] {
  return memberSshArgs(t.member.lease.ssh!, t.forwards, {
    knownHostsFile: t.knownHostsFile,
    controlPath: t.controlPath,
    logFile: t.logFile,
    aliveInterval: ctx.options.aliveInterval,
    aliveCountMax: ctx.options.aliveCountMax,
  });
}

/** Remove a ControlMaster socket nobody answers on; refuse when a live master holds it. */
async function clearStaleControl(env: EnvReader, t: Tunnel): Promise<void> {
  try {
    await Deno.lstat(t.controlPath);
  } catch {
    return;
  }
  if (await sshAnswers(env, t.controlPath, sshDestination(t.member.lease.ssh!))) {
    throw new CrabboxError(
      "state",
      "already_connected",
      `crew "${t.crew}" member ${t.member.name} is already connected by another crabbox (${t.controlPath})`,
      { hint: `stop it first: crabbox crew disconnect ${t.crew} (or Ctrl-C the other connect)` },
    );
  }
  await removeFile(t.controlPath);
}

/** The slow, async part of starting a tunnel (dirs, stale socket, fresh log). */
async function prepareTunnel(ctx: Ctx, t: Tunnel): Promise<void> {
  await ensureControlDir(dirOf(t.controlPath));
  await clearStaleControl(ctx.env, t);
  await ensurePrivateDir(dirOf(t.logFile));
  await Deno.writeTextFile(t.logFile, "", { mode: 0o600 });
}

/** A running ssh: from the anchor (foreground) or a detached Deno child (daemons). */
export interface Running {
  /** Process id. */
  pid: number;
  /** Resolves with the exit code. */
  status: Promise<{ code: number }>;
  /** Send a signal (no-op once exited). */
  kill(signal: Deno.Signal): void;
  /** Let this process exit without waiting for the child (daemons). */
  unref?(): void;
}

/** Spawn the tunnel's ssh. */
async function launchTunnel(ctx: Ctx, t: Tunnel): Promise<void> {
  const args = tunnelArgs(ctx, t);
  const program = sshProgram(ctx.env);
  t.argv = [program, ...args];
  t.exitStatus = undefined;
  await ctx.beforeSpawn?.(t);
  let proc: Running;
  if (ctx.anchor) {
    proc = await ctx.anchor.spawn(t.argv);
  } else {
    const c = ctx.rt.process.spawn(program, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      // Own session: survives us, never gets a terminal's signals. Forked
      // (detached), not through setsid(1) as the anchor is: a daemon's
      // identity is read right after the spawn (`onSpawn`), and setsid's
      // own argv could still be there.
      detached: true,
    });
    proc = {
      pid: c.pid,
      status: c.status.then((s) => ({ code: s.code })),
      kill: (sig) => {
        try {
          c.kill(sig);
        } catch { /* exited */ }
      },
      unref: () => c.unref(),
    };
  }
  t.child = proc;
  t.exited = proc.status.then((s) => (t.exitStatus = s));
  await ctx.onSpawn?.(t);
  ctx.emit(t, "starting", { pid: proc.pid });
}

/** Prepare and spawn one tunnel. */
export async function spawnTunnel(ctx: Ctx, t: Tunnel): Promise<void> {
  await prepareTunnel(ctx, t);
  await launchTunnel(ctx, t);
}

/** Prepare every tunnel, then spawn them all in one go. */
export async function launchAll(ctx: Ctx, tunnels: readonly Tunnel[]): Promise<void> {
  await Promise.all(tunnels.map((t) => prepareTunnel(ctx, t)));
  await Promise.all(tunnels.map((t) => launchTunnel(ctx, t)));
}

/** Thrown when ssh runs but a forward's far end never accepted. */
export class ForwardUnverified extends CrabboxError {}

/**
 * Wait until every forward of `t` works end to end (see the doc of
 * `connectCrew` in connect.ts). With `realloc`, an "Address already in
 * use" exit moves that forward to the next free port and respawns.
 */
export async function awaitReady(
  ctx: Ctx,
  t: Tunnel,
  deadline: number,
  realloc: boolean,
): Promise<void> {
  const spawnedAt = Date.now();
  const timing = ctx.options.onTiming;
  let mark = performance.now();
  let socketSeen = false;
  let settle = 0;
  let verified = new Set<number>();
  let reallocs = 0;
  let delay = 2;
  let lastOpenFailure: string | undefined;
  let stalled: number[] = []; // local ports whose last probe could not even connect
  while (true) {
    if (t.stopping) throw new CrabboxError("interrupted", "stopped", "connect was stopped");
    if (t.exitStatus) {
      const log = await readLog(t.logFile);
      const inUse = ADDR_IN_USE.exec(log);
      if (inUse && realloc && reallocs < 50) {
        const port = Number(inUse[1]);
        const f = t.forwards.find((x) => x.localPort === port);
        if (f) {
          reallocs++;
          ctx.taken.add(port);
          f.localPort = nextFreePort(ctx.isFree, ctx.taken, ctx.range);
          ctx.taken.add(f.localPort);
          verified = new Set();
          await spawnTunnel(ctx, t);
          continue;
        }
      }
      const reason = lastLogReason(log) ?? `ssh exited with status ${t.exitStatus.code}`;
      throw new CrabboxError("ssh", "ssh_exited", reason, {
        details: { permanent: PERMANENT.test(log), code: t.exitStatus.code },
      });
    }
    if (Date.now() > deadline) {
      const pending = t.forwards.filter((f) => !verified.has(f.localPort));
      const list = pending.map((f) => `127.0.0.1:${f.localPort} -> ${f.peer}:${f.remotePort}`)
        .join(", ");
      if (lastOpenFailure) {
        throw new ForwardUnverified(
          "ssh",
          "forward_unreachable",
          `${list}: ${lastOpenFailure}`,
          {
            hint: `is a service listening on ${t.member.name}'s 127.0.0.1:${
              pending.map((f) => f.remotePort).join(",")
            }?`,
          },
        );
      }
      const why = stalled.length > 0
        ? `: ${stalled.map((p) => `127.0.0.1:${p}`).join(", ")} accepts no connections`
        : "";
      throw new CrabboxError(
        "ssh",
        "ssh_timeout",
        `ssh to ${t.member.name} did not come up${why}`,
        {
          details: { permanent: false },
        },
      );
    }
    const woken = ctx.sockets?.next(t.controlPath); // before the check: no change is missed
    if (!(await isSocket(t.controlPath))) {
      // ssh creates its ControlMaster socket only after binding every -L
      // listener (ExitOnForwardFailure makes a bind failure fatal before
      // that), so until it exists a probe could reach someone else's socket.
      // With a watch the poll is only a safety net: polling every member
      // every few ms costs CPU that the ssh handshakes need.
      await Promise.race([sleep(delay), t.exited, ...(woken ? [woken] : [])]);
      delay = Math.min(delay * 2, woken ? 250 : 10);
      continue;
    }
    if (!socketSeen) {
      socketSeen = true;
      timing?.({ phase: "sockets", ms: performance.now() - mark, peer: t.member.name });
      mark = performance.now();
    }
    const pending = t.forwards.filter((f) => !verified.has(f.localPort));
    if (pending.length === 0) {
      timing?.({ phase: "probes", ms: performance.now() - mark, peer: t.member.name });
      return;
    }
    const offset = await logSize(t.logFile);
    const s = settle || 100;
    const results = await Promise.all(pending.map((f) => probeForward(f.localPort, s)));
    stalled = pending.filter((_, i) => results[i] === "stalled").map((f) => f.localPort);
    if (results.some((r) => r === "refused" || r === "stalled")) {
      // Not expected once the socket exists; retry until ssh exits or the deadline.
      await Promise.race([sleep(50), t.exited]);
      continue;
    }
    if (settle === 0) {
      // Handshake time ~ several round trips: a safe window for an open failure to come back.
      settle = Math.min(2000, Math.max(100, Math.round((Date.now() - spawnedAt) / 2)));
    }
    const failures = openFailures(await readLog(t.logFile, offset));
    pending.forEach((f, i) => {
      const r = results[i];
      if (r === "data" || (failures.length === 0 && (r === "closed" || r === "open"))) {
        verified.add(f.localPort);
      }
    });
    if (failures.length > 0) {
      lastOpenFailure = `open failed: ${failures.at(-1)}`;
      t.lastError = lastOpenFailure;
      await Promise.race([sleep(Math.min(settle, 250)), t.exited]);
      settle = Math.min(2000, settle * 2);
    }
  }
}

/** Stop a tunnel's ssh: SIGTERM, SIGKILL after `graceMs`; removes its control socket. */
export async function stopChild(t: Tunnel, graceMs = 2000): Promise<void> {
  const child = t.child;
  if (!child || t.exitStatus) return;
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  const done = await Promise.race([t.exited!.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await t.exited;
  }
  await removeFile(t.controlPath).catch(() => {});
}

/** Stop `tunnels` for good (no more restarts); resolves when every ssh of them has exited. */
export async function stopTunnels(tunnels: Iterable<Tunnel>): Promise<void> {
  const all = [...tunnels];
  for (const t of all) t.stopping = true;
  await Promise.all(all.map((t) => stopChild(t)));
}

/**
 * The tunnels of `plan` for a mesh whose first ones were stopped (they
 * started from a stale claim): the plan's local ports become the taken ones.
 */
export async function replanTunnels(
  ctx: Ctx,
  plan: Pick<MeshPlan, "crew" | "members" | "forwards" | "paths">,
  everyMember: boolean,
): Promise<Tunnel[]> {
  ctx.taken.clear();
  for (const f of plan.forwards) ctx.taken.add(f.localPort);
  return await makeTunnels(ctx.rt, plan, everyMember);
}

/** Restart delay of attempt `attempt` (1-based): doubling from the initial delay, capped. */
export function backoffDelay(options: ConnectOptions, attempt: number): number {
  const initial = options.backoff?.initialMs ?? 500;
  const max = options.backoff?.maxMs ?? 30_000;
  return Math.min(max, initial * 2 ** Math.max(0, attempt - 1));
}

/** First connect of a member: spawn, retry transient ssh failures until the deadline. */
export async function firstConnect(ctx: Ctx, t: Tunnel, deadline: number): Promise<void> {
  let attempt = 0;
  while (true) {
    if (!t.child || t.exitStatus) await spawnTunnel(ctx, t);
    try {
      await awaitReady(ctx, t, deadline, true);
      ctx.emit(t, "up", { pid: t.child?.pid });
      return;
    } catch (e) {
      const err = e as CrabboxError;
      t.lastError = err.message;
      const permanent = err.details?.permanent === true || e instanceof ForwardUnverified ||
        err.kind === "interrupted";
      await stopChild(t);
      if (permanent || Date.now() + backoffDelay(ctx.options, attempt + 1) > deadline) {
        throw new CrabboxError(
          err.kind === "interrupted" ? "interrupted" : "ssh",
          err.code,
          `crew "${t.crew}": member ${t.member.name} (${t.member.lease.id}) cannot be reached: ${err.message}`,
          { hint: err.hint, cause: e },
        );
      }
      attempt++;
      const wait = Math.min(backoffDelay(ctx.options, attempt), 2000);
      ctx.emit(t, "backoff", { reason: err.message, retryInMs: wait });
      await sleep(wait, ctx.options.signal, { resolveOnAbort: true });
    }
  }
}

/** The shared context of one mesh; `emit` sets a tunnel's state and reports it. */
export function makeCtx(
  rt: Runtime,
  options: ConnectOptions,
  crew: string,
  taken: Set<number>,
): Ctx {
  return {
    rt,
    env: rt.env,
    options,
    isFree: options.isPortFree ?? isLoopbackPortFree,
    range: options.portRange ?? MESH_PORT_RANGE,
    taken,
    warming: new Set(),
    emit: (t, state, extra = {}) => {
      const previous = t.state;
      t.state = state;
      try {
        options.onEvent?.({
          crew,
          peer: t.member.name,
          leaseId: t.member.lease.id,
          state,
          previous,
          restarts: t.restarts,
          ...extra,
        });
      } catch { /* an observer's bug must not break supervision */ }
    },
  };
}

/**
 * One tunnel per member with forwards — with `everyMember` (the ssh-peer
 * plane) one per member with an SSH endpoint — pinning the crew's host keys
 * first.
 */
export async function makeTunnels(
  rt: Runtime,
  plan: Pick<MeshPlan, "crew" | "members" | "forwards" | "paths">,
  everyMember = false,
): Promise<Tunnel[]> {
  const out: Tunnel[] = [];
  const wanted = plan.members.filter((m) =>
    m.lease.ssh !== undefined && (everyMember || m.ports.length > 0)
  );
  await pinHostKeys(wanted.map((m) => m.lease.ssh!), plan.paths.knownHosts);
  for (const m of wanted) {
    const forwards = plan.forwards.filter((f) => f.leaseId === m.lease.id);
    out.push({
      crew: plan.crew,
      member: m,
      forwards,
      controlPath: await memberControlPath(rt.home, plan.crew, m.lease.id),
      logFile: joinPath(plan.paths.logDir, `${m.lease.id}.log`),
      knownHostsFile: plan.paths.knownHosts,
      state: "stopped",
      restarts: 0,
      stopping: false,
    });
  }
  return out;
}
