/**
 * `connectCrew()`: the foreground SSH mesh — one supervised `ssh -N -L …`
 * per crew member, which is also the member's ControlMaster; readiness means
 * every forward works end to end; members that die are restarted with
 * backoff while the others stay up.
 *
 * @module
 */

import { resolveRuntime } from "../runtime.ts";
import { sleep } from "../core/async.ts";
import { CrabboxError } from "../core/errors.ts";
import { dirOf, joinPath, removeFile, withLock, writeJsonAtomic } from "../core/fs.ts";
import { type MeshPaths, meshPaths } from "../core/home.ts";
import { forwardAddress, type MeshMember, type SkippedMember } from "./forwards.ts";
import { liveDaemonCount } from "./daemon_state.ts";
import { envRecord, exportLines, type MeshForward } from "./files.ts";
import { liveMeshes } from "./live.ts";
import {
  claimedPlan,
  confirmClaims,
  type ConnectOptions,
  type MemberState,
  planCrew,
  planMembers,
  sortForwards,
  writeMeshFiles,
} from "./plan.ts";
import { normalizeCrewName } from "../core/names.ts";
import { lastLogReason, logSize, openFailures, probeForward, readLog } from "./probe.ts";
import {
  awaitReady,
  backoffDelay,
  type Ctx,
  firstConnect,
  ForwardUnverified,
  launchAll,
  makeCtx,
  makeTunnels,
  replanTunnels,
  spawnTunnel,
  stopChild,
  stopTunnels,
  type Tunnel,
} from "./tunnel.ts";
import { startAnchor } from "../process/identity.ts";
import { watchSockets } from "./socket_watch.ts";
import { warmInBackground, warmingDone } from "./warm.ts";
import { followMembers } from "./membership.ts";
import type { MemberPeers } from "./peer_table.ts";
import {
  memberPeerTables,
  newPeerPlane,
  type PeerPlane,
  removePeerBlocks,
  resyncRestarted,
  syncAllPeers,
} from "./peer_sync.ts";

/** Status of one member's tunnel. */
export interface MemberStatus {
  /** Peer name. */
  peer: string;
  /** Lease id. */
  leaseId: string;
  /** Current state. */
  state: MemberState;
  /** ssh pid while running. */
  pid?: number;
  /** Restarts so far. */
  restarts: number;
  /** Last failure, if any. */
  lastError?: string;
  /** This member's forwards. */
  forwards: MeshForward[];
}

/** Result of {@link CrewMesh.check} for one forward. */
export interface ForwardHealth extends MeshForward {
  /** Whether a connection through the forward reached the member's port. */
  ok: boolean;
  /** Why not (ssh's "open failed" reason, or the member's tunnel state). */
  reason?: string;
}
/** A running mesh. Dispose it (or call `close()`) to stop every ssh process. */
export interface CrewMesh extends AsyncDisposable {
  /** Crew name. */
  readonly crew: string;
  /** The forward table (local ports are final once `connectCrew` resolved). */
  readonly forwards: readonly MeshForward[];
  /** Members in name order. */
  readonly members: readonly MeshMember[];
  /** Leases left out, with the reason. */
  readonly skipped: readonly SkippedMember[];
  /** `CRABBOX_CREW_<PEER>_<PORT>` → `127.0.0.1:<port>`. */
  readonly env: Readonly<Record<string, string>>;
  /** `export …` lines. */
  readonly exports: readonly string[];
  /** Where the hosts and env files were written. */
  readonly paths: MeshPaths;
  /** `127.0.0.1:<local>` for a peer's port; throws not-found. */
  address(peer: string, port: number): string;
  /** Current state of every member that has forwards. */
  status(): MemberStatus[];
  /**
   * Check every forward end to end right now (a running ssh is not proof:
   * a dead member or a closed remote port only shows through the forward).
   */
  check(): Promise<(MeshForward & { ok: boolean; reason?: string })[]>;
  /** With `peers`: each member's peer table (where it reaches every other member). */
  peers(): MemberPeers[];
  /** With `peers`: sync every member's forwards and hosts block now (also done on changes). */
  syncPeers(): Promise<void>;
  /** Stop every ssh process (idempotent); resolves when all are gone. */
  close(): Promise<void>;
  /** Resolves once `close()` finished. */
  readonly closed: Promise<void>;
}

/**
 * One health round over a tunnel's forwards: probe all, then let the ssh log
 * decide for probes that saw no bytes (see {@link connectCrew}).
 */
async function checkTunnel(t: Tunnel, settleMs = 250): Promise<ForwardHealth[]> {
  if (t.state !== "up" || t.exitStatus) {
    return t.forwards.map((f) => ({ ...f, ok: false, reason: `member is ${t.state}` }));
  }
  const offset = await logSize(t.logFile);
  const results = await Promise.all(t.forwards.map((f) => probeForward(f.localPort, settleMs)));
  const failures = openFailures(await readLog(t.logFile, offset));
  return t.forwards.map((f, i) => {
    const r = results[i];
    if (r === "data") return { ...f, ok: true };
    if (r === "refused") return { ...f, ok: false, reason: "nothing listens on the local port" };
    if (r === "stalled") {
      return { ...f, ok: false, reason: "the local port accepts no connections (is ssh stuck?)" };
    }
    if (failures.length === 0) return { ...f, ok: true };
    return { ...f, ok: false, reason: `open failed: ${failures.at(-1)}` };
  });
}

/** After readiness: restart the member whenever its ssh dies, until stopped. */
async function supervise(ctx: Ctx, t: Tunnel, stop: AbortSignal): Promise<void> {
  let attempt = 0;
  while (!t.stopping) {
    const status = await t.exited!;
    if (t.stopping) break;
    const reason = lastLogReason(await readLog(t.logFile)) ??
      `ssh exited with status ${status.code}`;
    t.lastError = reason;
    ctx.emit(t, "down", { reason });
    while (!t.stopping) {
      attempt++;
      t.restarts++;
      const wait = backoffDelay(ctx.options, attempt);
      ctx.emit(t, "backoff", { reason: t.lastError, retryInMs: wait });
      await sleep(wait, stop, { resolveOnAbort: true });
      if (t.stopping) break;
      try {
        await spawnTunnel(ctx, t);
        await awaitReady(ctx, t, Date.now() + 30_000, false);
        attempt = 0;
        ctx.emit(t, "up", { pid: t.child?.pid });
        warmInBackground(ctx, [t]);
        await ctx.afterRestart?.(t);
        break;
      } catch (e) {
        if (t.stopping) break;
        if (e instanceof ForwardUnverified && !t.exitStatus) {
          // ssh is up and holds the ports; the member's service is not answering yet.
          attempt = 0;
          ctx.emit(t, "up", { pid: t.child?.pid, reason: `forwards not verified: ${e.message}` });
          warmInBackground(ctx, [t]);
          await ctx.afterRestart?.(t);
          break;
        }
        t.lastError = (e as Error).message;
        await stopChild(t);
      }
    }
  }
  await stopChild(t);
  if (t.state !== "stopped") ctx.emit(t, "stopped");
}

/**
 * Connect to every member of a crew: one `ssh -N` per member holding all its
 * `-L 127.0.0.1:<local>:127.0.0.1:<remote>` forwards, which is also the
 * member's ControlMaster. Members start in parallel; the promise resolves
 * only when **every forward works end to end**, then writes the hosts and env
 * files.
 *
 * Readiness: ssh binds its listeners only after authentication, so probes
 * are refused until then. A probe connects through the local port and reads:
 * bytes mean the channel is open; otherwise ssh's `-E` log (LogLevel INFO)
 * decides — ssh logs "channel N: open failed" *before* it closes the local
 * socket, so a closed probe with no new open-failure line is a service that
 * hung up, and a probe still open after a settle window (half the handshake
 * time, 100 ms..2 s) with no failure line is an open channel. With a failure
 * line, the forwards without bytes are probed again.
 *
 * Members start from this machine's claims: their ssh processes run while
 * the providers are asked which members the crew has (a cloud provider's
 * list is an API round trip that would otherwise come before every ssh).
 * Nothing is reported ready before the providers answered: when their
 * members (names, leases, ports, SSH targets) are the claimed ones, the
 * running ssh processes stay; when not (a box gone, moved, or made on
 * another machine), those are stopped and the providers' members started
 * instead, with a `log` line. An ssh started from a stale claim runs no
 * command (`-N`), checks the host key against the crew's known_hosts like
 * any other, and is gone before anything is reported ready.
 *
 * A member whose ssh dies is restarted with exponential backoff (500 ms
 * doubling, capped at 30 s) on the same local ports; the others stay up.
 *
 * Once the mesh is ready (never before), and again after each restart, every
 * member's master runs one no-op session (`exit 0`) in the background:
 * OpenSSH's sshd sets `TCP_NODELAY` on a connection only once a session ran
 * there, and without it a new channel through a forward can wait ~40 ms for
 * a delayed ACK (see `warm.ts`). A failure is one `log` line, never an error.
 *
 * @example
 * ```ts
 * import { connectCrew } from "@crabbox/crabbox";
 * await using mesh = await connectCrew("pr-42", { onEvent: (e) => console.error(e.peer, e.state) });
 * const res = await fetch(`http://${mesh.address("api", 8080)}/health`);
 * ```
 */
export async function connectCrew(name: string, options: ConnectOptions = {}): Promise<CrewMesh> {
  let mark = performance.now();
  const lap = (phase: "plan" | "spawn" | "confirm" | "files") => {
    const now = performance.now();
    options.onTiming?.({ phase, ms: now - mark });
    mark = now;
  };
  const rt = await resolveRuntime(options);
  const crew = normalizeCrewName(name);
  const key = `${rt.home}\0${crew}`;
  // One start at a time per crew, as for --export daemons: of two racing
  // connects one gets ready, and the other then finds its masters.
  return await withLock(joinPath(meshPaths(rt.home, crew).dir, ".mesh.lock"), async () => {
    if (liveMeshes.has(key)) {
      throw new CrabboxError("state", "already_connected", `crew "${crew}" is already connected`);
    }
    // This machine's claims say where the members are: their ssh starts now,
    // while the providers confirm (below, before anything is reported ready).
    const claimed = await claimedPlan(crew, options).catch(() => undefined);
    let plan = claimed ?? await planCrew(crew, options);
    if (await liveDaemonCount(plan.paths) > 0) {
      throw new CrabboxError(
        "state",
        "already_connected",
        `crew "${crew}" is already connected by --export daemons`,
        { hint: `crabbox crew disconnect ${crew}` },
      );
    }
    const taken = new Set(plan.forwards.map((f) => f.localPort));
    const ctx = makeCtx(rt, options, crew, taken);
    let tunnels = await makeTunnels(rt, plan, options.peers === true);
    if (tunnels.length > 0) ctx.anchor = startAnchor(rt.process);
    lap("plan");
    const plane: PeerPlane | undefined = options.peers ? newPeerPlane() : undefined;
    const stopper = new AbortController();
    liveMeshes.set(key, { tunnels, ctx });
    let supervisors: Promise<void>[] = [];
    let closing: Promise<void> | undefined;
    let follower: Promise<void> | undefined;
    const joining = new Set<Tunnel>();
    const close = () =>
      closing ??= (async () => {
        stopper.abort();
        await stopTunnels(joining);
        await follower;
        if (plane) {
          await plane.queue.catch(() => {});
          await removePeerBlocks(ctx, tunnels);
          await removeFile(plan.paths.peers).catch(() => {});
        }
        await stopTunnels(tunnels);
        await Promise.all(supervisors);
        await warmingDone(ctx); // a master gone ends its session client at once
        for (const t of tunnels) if (t.state !== "stopped") ctx.emit(t, "stopped");
        ctx.sockets?.close();
        await ctx.anchor?.close();
        liveMeshes.delete(key);
      })();
    const onAbort = () => void close();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const interrupted = () =>
      new CrabboxError("interrupted", "interrupted", `connect to crew "${crew}" interrupted`);
    try {
      options.signal?.throwIfAborted();
      const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
      await launchAll(ctx, tunnels);
      ctx.sockets = watchSockets(tunnels.map((t) => dirOf(t.controlPath)));
      lap("spawn");
      if (claimed) {
        // Asked only now: its work would otherwise run between our own steps.
        const answer = await confirmClaims(plan, options);
        if (options.signal?.aborted) {
          throw interrupted();
        }
        if (answer.same) {
          plan = { ...plan, skipped: answer.members.skipped };
        } else {
          // A claim is stale (a box gone, moved, or made elsewhere): what
          // started from the claims stops, and the providers' members start.
          await stopTunnels(tunnels);
          for (const t of tunnels) ctx.emit(t, "stopped");
          plan = planMembers(rt.home, crew, answer.members, options);
          tunnels = await replanTunnels(ctx, plan, options.peers === true);
          liveMeshes.set(key, { tunnels, ctx });
          if (tunnels.length > 0) ctx.anchor ??= startAnchor(rt.process);
          await launchAll(ctx, tunnels);
          ctx.sockets?.close();
          ctx.sockets = watchSockets(tunnels.map((t) => dirOf(t.controlPath)));
        }
        lap("confirm");
      }
      const results = await Promise.allSettled(tunnels.map((t) => firstConnect(ctx, t, deadline)));
      const failed = results.find((r) => r.status === "rejected") as
        | PromiseRejectedResult
        | undefined;
      if (options.signal?.aborted) {
        throw interrupted();
      }
      if (failed) throw failed.reason;
    } catch (e) {
      await close();
      options.signal?.removeEventListener("abort", onAbort);
      throw e;
    }
    supervisors = tunnels.map((t) => supervise(ctx, t, stopper.signal));
    const forwards = sortForwards(tunnels.flatMap((t) => t.forwards).concat());
    mark = performance.now();
    await writeMeshFiles(plan.paths, crew, forwards);
    lap("files");
    const current = () => sortForwards(tunnels.flatMap((t) => t.forwards).map((f) => ({ ...f })));
    const peersFile = plan.paths.peers;
    const record = () => writeJsonAtomic(peersFile, { crew, members: memberPeerTables(tunnels) });
    const syncPeers = async () => {
      if (!plane) return;
      await syncAllPeers(ctx, tunnels, plane);
      await record();
    };
    if (plane) {
      ctx.afterRestart = async (t) => {
        await resyncRestarted(ctx, tunnels, plane, t);
        await record();
      };
      await syncPeers();
      const every = options.peerPollMs ?? 5000;
      if (every > 0) {
        follower = followMembers(
          {
            ctx,
            tunnels,
            plan,
            joining,
            missingSince: new Map(),
            supervise: (t) => {
              supervisors.push(supervise(ctx, t, stopper.signal));
              warmInBackground(ctx, [t]);
            },
            changed: async (joined, left) => {
              for (const t of joined) options.log?.(`crew "${crew}": ${t.member.name} joined`);
              for (const t of left) options.log?.(`crew "${crew}": ${t.member.name} left`);
              await writeMeshFiles(plan.paths, crew, current());
              await syncPeers();
            },
          },
          options,
          every,
          stopper.signal,
        );
      }
    }
    // Ready: now, never before, one no-op session per master makes sshd set
    // TCP_NODELAY on its connection (warm.ts). A timer starts them after the
    // caller's own continuation, so whoever awaited the mesh is not behind them.
    void sleep(0, stopper.signal, { resolveOnAbort: true }).then(() => {
      if (!stopper.signal.aborted) warmInBackground(ctx, tunnels);
    });
    const closed = (async () => {
      await new Promise<void>((r) => stopper.signal.addEventListener("abort", () => r()));
      await close();
      options.signal?.removeEventListener("abort", onAbort);
    })();
    return {
      crew,
      get forwards() {
        return current();
      },
      members: plan.members,
      skipped: plan.skipped,
      get env() {
        return envRecord(current());
      },
      get exports() {
        return exportLines(current());
      },
      paths: plan.paths,
      address: (peer: string, port: number) => forwardAddress(current(), peer, port),
      status: () =>
        tunnels.map((t) => ({
          peer: t.member.name,
          leaseId: t.member.lease.id,
          state: t.state,
          pid: t.exitStatus ? undefined : t.child?.pid,
          restarts: t.restarts,
          lastError: t.lastError,
          forwards: t.forwards.map((f) => ({ ...f })),
        })),
      check: async () => (await Promise.all(tunnels.map((t) => checkTunnel(t)))).flat(),
      peers: () => memberPeerTables(tunnels),
      syncPeers,
      close,
      closed,
      [Symbol.asyncDispose]: close,
    };
  });
}
