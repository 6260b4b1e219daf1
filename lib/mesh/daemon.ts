/**
 * The detached SSH-mesh daemons of `crew connect --export`: one ssh per
 * member that outlives this process, recorded (pid, start time, argv) in
 * `daemon.json`, and their identity-checked teardown (`crew disconnect`).
 *
 * @module
 */

import { type CrabboxOptions, resolveRuntime, type Runtime } from "../runtime.ts";
import { memberPeerTables, newPeerPlane, syncAllPeers } from "./peer_sync.ts";
import { runBoxScript } from "./peer_box.ts";
import { sleep } from "../core/async.ts";
import { CrabboxError } from "../core/errors.ts";
import { joinPath, removeFile, withLock, writeFileAtomic, writeJsonAtomic } from "../core/fs.ts";
import { type MeshPaths, meshPaths } from "../core/home.ts";
import { normalizeCrewName } from "../core/names.ts";
import type { SkippedMember } from "./forwards.ts";
import {
  type DaemonIntent,
  type DaemonProcess,
  type DaemonState,
  exportLines,
  type MeshForward,
  renderDaemonState,
} from "./files.ts";
import {
  claimedPlan,
  confirmClaims,
  type ConnectOptions,
  planCrew,
  planMembers,
  sortForwards,
  writeMeshFiles,
} from "./plan.ts";
import {
  firstConnect,
  launchAll,
  makeCtx,
  makeTunnels,
  replanTunnels,
  stopTunnels,
  type Tunnel,
} from "./tunnel.ts";
import type { IdentityBackend } from "../process/find.ts";
import {
  identityUnsupported,
  readDaemonState,
  requireProcessIdentity,
  startingProcesses,
} from "./daemon_state.ts";
import { warmInBackground, warmingDone } from "./warm.ts";
import {
  killIfMatches,
  type ProcessIdentity,
  processIdentity,
  sameProcess,
} from "../process/identity.ts";

/**
 * Test hook: `CRABBOX_TEST_RECORD_DELAY_MS` holds each `--export` ssh this
 * long between its spawn and its record in daemon.json, so a test can kill
 * the CLI inside that window.
 */
const RECORD_DELAY_ENV = "CRABBOX_TEST_RECORD_DELAY_MS";

/** The daemon.json entry of a running tunnel. */
function daemonProcess(t: Tunnel, id: ProcessIdentity): DaemonProcess {
  return {
    leaseId: t.member.lease.id,
    peer: t.member.name,
    pid: id.pid,
    startTime: id.startTime,
    argv: id.argv,
    controlPath: t.controlPath,
    logFile: t.logFile,
    forwards: t.forwards.map((f) => ({ localPort: f.localPort, remotePort: f.remotePort })),
  };
}

/** Result of {@link startCrewDaemons}. */
export interface DaemonResult {
  /** Crew name. */
  crew: string;
  /** The forward table. */
  forwards: MeshForward[];
  /** `export …` lines. */
  exports: string[];
  /** File paths (hosts, env, daemon.json). */
  paths: MeshPaths;
  /** The recorded daemon state. */
  state: DaemonState;
  /** Leases left out, with the reason. */
  skipped: SkippedMember[];
  /** How many earlier daemons were stopped first. */
  replaced: number;
}

/**
 * `crew connect --export`: stop an earlier daemon set of the crew, start one
 * detached ssh per member (own session, survives this process), wait until
 * every forward works end to end, then record pid, start time, exact argv and
 * forwards in `daemon.json` and write hosts/env. Meanwhile each master runs
 * its warm-up session (`warm.ts`, bounded); it has ended when this resolves.
 * As in `connectCrew`, the ssh processes start from this machine's claims
 * while the providers confirm the members; when they list others, those
 * processes are stopped and dropped from `daemon.json`, and theirs started.
 *
 * @example
 * ```ts
 * import { startCrewDaemons } from "@crabbox/crabbox";
 * const { exports } = await startCrewDaemons("pr-42");
 * console.log(exports.join("\n"));
 * ```
 */
export async function startCrewDaemons(
  name: string,
  options: ConnectOptions = {},
): Promise<DaemonResult> {
  const rt = await resolveRuntime(options);
  const crew = normalizeCrewName(name);
  const paths = meshPaths(rt.home, crew);
  await requireProcessIdentity("crew connect --export", options.identityBackend);
  return await withLock(joinPath(paths.dir, ".mesh.lock"), async () => {
    const replaced = (await stopDaemons(rt, paths)).stopped;
    // As in connectCrew: ssh starts from the claims while the providers confirm them.
    const claimed = await claimedPlan(crew, options).catch(() => undefined);
    let plan = claimed ?? await planCrew(crew, options);
    const taken = new Set(plan.forwards.map((f) => f.localPort));
    const ctx = makeCtx(rt, options, crew, taken);
    const startedAt = new Date().toISOString();
    // Each ssh's argv (with its unique ControlPath) is written to daemon.json
    // before it is spawned, and its pid and start time right after: a connect
    // killed at any point leaves nothing disconnect cannot find.
    const recorded = new Map<string, DaemonProcess>();
    const starting = new Map<string, DaemonIntent>();
    // Tunnels start concurrently: writes are serialized (an older snapshot
    // never lands after a newer one) and coalesced (one write covers every
    // change made before it started).
    let running: Promise<void> = Promise.resolve();
    let queued: Promise<void> | undefined;
    const save = (): Promise<void> => {
      if (queued) return queued;
      const write = running.then(() => {
        queued = undefined;
        return writeFileAtomic(
          paths.daemon,
          renderDaemonState({
            version: 1,
            crew,
            startedAt,
            processes: [...recorded.values()],
            ...(starting.size ? { starting: [...starting.values()] } : {}),
          }),
        );
      });
      queued = write;
      running = write.catch(() => {});
      return write;
    };
    ctx.beforeSpawn = async (t) => {
      starting.set(t.member.lease.id, {
        leaseId: t.member.lease.id,
        peer: t.member.name,
        argv: t.argv!,
        controlPath: t.controlPath,
      });
      await save();
    };
    const recordDelay = Number(rt.env(RECORD_DELAY_ENV) ?? 0);
    ctx.onSpawn = async (t) => {
      if (recordDelay > 0) await sleep(recordDelay, options.signal, { resolveOnAbort: true });
      const id = await processIdentity(t.child!.pid);
      if (!id) return;
      recorded.set(t.member.lease.id, daemonProcess(t, id));
      starting.delete(t.member.lease.id);
      await save();
    };
    let tunnels = await makeTunnels(rt, plan, options.peers === true);
    const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
    const abandon = async () => {
      await stopTunnels(tunnels);
      await warmingDone(ctx);
      await removeFile(paths.daemon);
    };
    // A teardown signal during the start stops every tunnel's wait; what was
    // started is stopped below before the interrupted error is thrown.
    const onAbort = () => {
      for (const t of tunnels) t.stopping = true;
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const interrupted = () =>
      new CrabboxError("interrupted", "interrupted", `connect to crew "${crew}" interrupted`);
    try {
      return await startTunnels();
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
    /** The providers confirm the claimed members, or theirs replace what started. */
    async function confirmOrRestart(): Promise<void> {
      const answer = await confirmClaims(plan, options);
      if (answer.same) {
        plan = { ...plan, skipped: answer.members.skipped };
        return;
      }
      await stopTunnels(tunnels);
      recorded.clear();
      starting.clear();
      await save();
      if (options.signal?.aborted) return;
      plan = planMembers(rt.home, crew, answer.members, options);
      tunnels = await replanTunnels(ctx, plan, options.peers === true);
      await launchAll(ctx, tunnels);
    }
    async function startTunnels(): Promise<DaemonResult> {
      if (options.signal?.aborted) throw interrupted();
      try {
        await launchAll(ctx, tunnels);
        if (claimed) await confirmOrRestart();
      } catch (e) {
        await abandon();
        throw e;
      }
      if (options.signal?.aborted) {
        await abandon();
        throw interrupted();
      }
      const results = await Promise.allSettled(tunnels.map((t) => firstConnect(ctx, t, deadline)));
      const failed = results.find((r) => r.status === "rejected") as
        | PromiseRejectedResult
        | undefined;
      if (failed || options.signal?.aborted) {
        await abandon();
        throw options.signal?.aborted ? interrupted() : failed!.reason;
      }
      // Ready: one no-op session per master makes sshd set TCP_NODELAY on its
      // connection (warm.ts); they run while the state is recorded below.
      warmInBackground(ctx, tunnels);
      const processes: DaemonProcess[] = [];
      for (const t of tunnels) {
        const id = await processIdentity(t.child!.pid);
        if (!id) {
          await abandon();
          throw new CrabboxError("ssh", "ssh_exited", `ssh for ${t.member.name} exited right away`);
        }
        processes.push(daemonProcess(t, id));
        t.child!.unref?.();
      }
      if (options.peers) {
        await syncAllPeers(ctx, tunnels, newPeerPlane());
        for (const [i, t] of tunnels.entries()) {
          if (t.peer?.written) processes[i].peerBlock = t.member.lease.ssh;
        }
        await writeJsonAtomic(paths.peers, { crew, members: memberPeerTables(tunnels) });
      }
      if (options.signal?.aborted) {
        await abandon();
        throw interrupted();
      }
      const state: DaemonState = { version: 1, crew, startedAt, processes };
      await writeFileAtomic(paths.daemon, renderDaemonState(state));
      const forwards = sortForwards(tunnels.flatMap((t) => t.forwards));
      await writeMeshFiles(paths, crew, forwards);
      await warmingDone(ctx); // bounded (WARM_TIMEOUT_MS); nothing of ours outlives the call
      return {
        crew,
        forwards,
        exports: exportLines(forwards),
        paths,
        state,
        skipped: plan.skipped,
        replaced,
      };
    }
  });
}

/** Options of {@link disconnectCrew}. */
export interface DisconnectOptions extends CrabboxOptions {
  /** Where process identity comes from (tests inject "none"); default: detect `/proc`, else `ps`. */
  identityBackend?: () => Promise<IdentityBackend>;
}

/** Result of {@link disconnectCrew}. */
export interface DisconnectResult {
  /** Crew name. */
  crew: string;
  /** Whether a `daemon.json` existed. */
  hadState: boolean;
  /** Processes recorded. */
  recorded: number;
  /** Processes stopped (pid, start time and argv matched). */
  stopped: number;
}

/** Remove the ssh-peer hosts block a daemon's member got (through its master, else fresh). */
async function removeDaemonBlock(rt: Runtime, paths: MeshPaths, p: DaemonProcess): Promise<void> {
  if (!p.peerBlock) return;
  const link = {
    target: p.peerBlock,
    knownHostsFile: paths.knownHosts,
    env: rt.env,
    process: rt.process,
  };
  const viaMaster = await runBoxScript({ ...link, controlPath: p.controlPath }, "remove", "", {
    timeoutS: 5,
  }).catch(() => undefined);
  if (viaMaster?.code === 0) return;
  const fresh = await runBoxScript(link, "remove", "", { timeoutS: 5 }).catch((e) => ({
    code: 255,
    stderr: (e as Error).message,
  }));
  if (fresh.code !== 0) {
    rt.log(`${p.peer}: could not remove the ssh-peer hosts block: ${fresh.stderr.trim()}`);
  }
}

/**
 * Stop what a `daemon.json` names: recorded processes whose identity still
 * matches, and for each ssh recorded as starting (its spawn may have
 * happened without its record) this user's processes with exactly that argv.
 */
async function stopDaemons(
  rt: Runtime,
  paths: MeshPaths,
): Promise<{ recorded: number; stopped: number }> {
  const state = await readDaemonState(paths);
  await removeFile(paths.peers).catch(() => {});
  if (!state) return { recorded: 0, stopped: 0 };
  await Promise.all(state.processes.map((p) => removeDaemonBlock(rt, paths, p)));
  const stop = async (expected: ProcessIdentity, controlPath: string) => {
    const ok = await killIfMatches(expected);
    // Killed, or dead already: either way its ControlMaster socket is stale.
    const now = await processIdentity(expected.pid);
    if (ok || !now || !sameProcess(now, expected)) await removeFile(controlPath).catch(() => {});
    return ok;
  };
  const results = await Promise.all(
    state.processes.map((p) =>
      stop({ pid: p.pid, startTime: p.startTime, argv: p.argv }, p.controlPath)
    ),
  );
  const starting = await startingProcesses(state);
  if (starting === undefined) throw identityUnsupported("crew disconnect");
  const found = await Promise.all(starting.map(async ({ intent, processes }) => {
    const stopped = await Promise.all(processes.map((p) => stop(p, intent.controlPath)));
    if (processes.length === 0) await removeFile(intent.controlPath).catch(() => {});
    return stopped.filter(Boolean).length;
  }));
  await removeFile(paths.daemon);
  return {
    recorded: state.processes.length + found.reduce((a, b) => a + b, 0),
    stopped: results.filter(Boolean).length + found.reduce((a, b) => a + b, 0),
  };
}

/**
 * Stop a crew's `--export` daemons: only processes whose pid, start time and
 * argv still match `daemon.json` are signalled (a reused pid is never
 * killed); the state file is removed.
 *
 * @example
 * ```ts
 * import { disconnectCrew } from "@crabbox/crabbox";
 * const { stopped, hadState } = await disconnectCrew("pr-42");
 * ```
 */
export async function disconnectCrew(
  name: string,
  options: DisconnectOptions = {},
): Promise<DisconnectResult> {
  const rt = await resolveRuntime(options);
  const crew = normalizeCrewName(name);
  const paths = meshPaths(rt.home, crew);
  try {
    await Deno.stat(paths.daemon);
  } catch {
    return { crew, hadState: false, recorded: 0, stopped: 0 };
  }
  await requireProcessIdentity("crew disconnect", options.identityBackend);
  const r = await withLock(joinPath(paths.dir, ".mesh.lock"), () => stopDaemons(rt, paths));
  return { crew, hadState: true, ...r };
}
