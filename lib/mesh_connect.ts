/**
 * `connectCrew()` and friends: one supervised `ssh -N -L …` per crew member,
 * which is also the member's ControlMaster; readiness means every forward
 * works end to end; members that die are restarted with backoff while the
 * others stay up. Also the detached (`--export`) daemon set, its identity-
 * checked teardown, live forwards and the ControlMaster lookup for `run`.
 *
 * @module
 */

import type { Lease } from "./claims.ts";
import { type CrabboxOptions, resolveRuntime, type Runtime } from "./context.ts";
import { CrabboxError } from "./errors.ts";
import { listLeases } from "./lease.ts";
import {
  allocateForwards,
  forwardAddress,
  isLoopbackPortFree,
  memberSshArgs,
  MESH_PORT_RANGE,
  type MeshMember,
  nextFreePort,
  selectMembers,
  type SkippedMember,
} from "./mesh.ts";
import {
  daemonForwards,
  type DaemonProcess,
  type DaemonState,
  envRecord,
  exportLines,
  type MeshForward,
  type MeshPaths,
  meshPaths,
  parseDaemonState,
  parseHostsFile,
  renderDaemonState,
  renderEnvFile,
  renderHostsFile,
} from "./mesh_files.ts";
import { normalizeCrewName } from "./names.ts";
import { type Anchor, killIfMatches, processIdentity, startAnchor } from "./proc.ts";
import {
  type ControlMode,
  controlPathFor,
  sshDestination,
  sshOptionArgs,
  sshProgram,
} from "./ssh.ts";
import {
  dirOf,
  ensurePrivateDir,
  type EnvReader,
  joinPath,
  removeFile,
  withLock,
  writeFileAtomic,
} from "./state.ts";
import { type Feature, providerEntry, type SshTarget } from "../providers/types.ts";
import { memberTransport, providerPlanes, sshEndpoint, type Transport } from "./transport.ts";

/** Lifecycle of one member's tunnel. */
export type MemberState = "starting" | "up" | "down" | "backoff" | "stopped";

/** A state change of one member's tunnel. */
export interface MeshEvent {
  /** Crew name. */
  crew: string;
  /** Peer name. */
  peer: string;
  /** Lease id. */
  leaseId: string;
  /** New state. */
  state: MemberState;
  /** Previous state. */
  previous: MemberState;
  /** Restarts of this member so far. */
  restarts: number;
  /** Why (for `down`, `backoff`, and an `up` whose forwards are unverified). */
  reason?: string;
  /** Delay before the next attempt (state `backoff`). */
  retryInMs?: number;
  /** ssh pid (states `starting`, `up`). */
  pid?: number;
}

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

/** Options of {@link connectCrew} and the other mesh functions. */
export interface ConnectOptions extends CrabboxOptions {
  /** Only members of this provider. */
  provider?: string;
  /** Use these leases instead of `listLeases({crew, provider})`. */
  members?: Lease[];
  /** Called on every member state change. */
  onEvent?: (event: MeshEvent) => void;
  /** How long the first connect may take before failing (default 60 000 ms). */
  readyTimeoutMs?: number;
  /** Restart backoff: first delay (default 500 ms) and cap (default 30 000 ms). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Local port range (default 51820..52819). */
  portRange?: { first: number; last: number };
  /** "Is this local port free" probe (default: bind 127.0.0.1:<port>). */
  isPortFree?: (port: number) => boolean;
  /** ssh ServerAliveInterval seconds (default 5). */
  aliveInterval?: number;
  /** ssh ServerAliveCountMax (default 3). */
  aliveCountMax?: number;
}

/** A planned (not started) mesh. */
export interface MeshPlan {
  /** Crew name. */
  crew: string;
  /** File paths. */
  paths: MeshPaths;
  /** Members in name order (some may have no ports). */
  members: MeshMember[];
  /** Leases left out, with the reason. */
  skipped: SkippedMember[];
  /** The forward table. */
  forwards: MeshForward[];
  /** `export …` lines. */
  exports: string[];
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
  /** Stop every ssh process (idempotent); resolves when all are gone. */
  close(): Promise<void>;
  /** Resolves once `close()` finished. */
  readonly closed: Promise<void>;
}

const OPEN_FAILED = /channel \d+: open failed: (.*)$/;
const ADDR_IN_USE = /bind \[?127\.0\.0\.1\]?:(\d+): Address already in use/;
const PERMANENT =
  /Permission denied|Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No route to host|Could not resolve hostname/;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

function hasSshFeature(options: CrabboxOptions): (provider: string) => boolean {
  return (name) => {
    const injected = options.providers;
    if (injected && Object.hasOwn(injected, name)) return injected[name].features.has("ssh");
    try {
      return providerEntry(name).features.has("ssh");
    } catch {
      return false;
    }
  };
}

/** ControlMaster socket path of a crew member: `<home>/crew/<crew>/cm/<lease>` (or a short /tmp path). */
export function memberControlPath(home: string, crew: string, leaseId: string): Promise<string> {
  return controlPathFor(meshPaths(home, crew).dir, leaseId);
}

/**
 * Plan a crew's mesh without starting anything: members, skipped leases, and
 * the forward table with free local ports.
 *
 * @example
 * ```ts
 * import { planCrew } from "./mesh_connect.ts";
 * const plan = await planCrew("pr-42");
 * for (const f of plan.forwards) console.log(f.peer, f.remotePort, f.localPort);
 * ```
 */
export async function planCrew(name: string, options: ConnectOptions = {}): Promise<MeshPlan> {
  const rt = await resolveRuntime(options);
  const crew = normalizeCrewName(name);
  const leases = options.members ??
    await listLeases({ crew, provider: options.provider }, options);
  const inCrew = leases.filter((l) =>
    (l.crew === undefined || l.crew === crew) &&
    (options.provider === undefined || l.provider === options.provider)
  );
  if (inCrew.length === 0) {
    throw new CrabboxError("notFound", "no_crew", `crew "${crew}" has no active leases`, {
      hint: `lease members with: crabbox warmup --crew ${crew} --slug NAME --expose PORT`,
    });
  }
  const { members, skipped } = selectMembers(inCrew, hasSshFeature(options));
  const forwards = allocateForwards(
    members,
    options.isPortFree ?? isLoopbackPortFree,
    options.portRange ?? MESH_PORT_RANGE,
  );
  return {
    crew,
    paths: meshPaths(rt.home, crew),
    members,
    skipped,
    forwards,
    exports: exportLines(forwards),
  };
}

/** Write the hosts and env files of a forward table (atomic, 0600). */
export async function writeMeshFiles(
  paths: MeshPaths,
  crew: string,
  forwards: readonly MeshForward[],
): Promise<void> {
  await Promise.all([
    writeFileAtomic(paths.hosts, renderHostsFile(crew, forwards)),
    writeFileAtomic(paths.env, renderEnvFile(crew, forwards)),
  ]);
}

// ---------------------------------------------------------------------------
// One member's tunnel

interface Tunnel {
  crew: string;
  member: MeshMember;
  forwards: MeshForward[];
  controlPath: string;
  logFile: string;
  knownHostsFile: string;
  state: MemberState;
  restarts: number;
  lastError?: string;
  child?: Running;
  exited?: Promise<{ code: number }>;
  exitStatus?: { code: number };
  argv?: string[];
  stopping: boolean;
}

interface Ctx {
  rt: Runtime;
  env: EnvReader;
  options: ConnectOptions;
  isFree: (port: number) => boolean;
  range: { first: number; last: number };
  taken: Set<number>;
  emit: (t: Tunnel, state: MemberState, extra?: Partial<MeshEvent>) => void;
  /** Foreground only: starts our ssh processes and stops them if this process dies. */
  anchor?: Anchor;
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

async function sshAnswers(env: EnvReader, controlPath: string, dest: string): Promise<boolean> {
  const out = await new Deno.Command(sshProgram(env), {
    args: ["-F", "none", "-o", `ControlPath=${controlPath}`, "-O", "check", "--", dest],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
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
  await ensurePrivateDir(dirOf(t.controlPath));
  await clearStaleControl(ctx.env, t);
  await ensurePrivateDir(dirOf(t.logFile));
  await Deno.writeTextFile(t.logFile, "", { mode: 0o600 });
}

/** A running ssh: from the anchor (foreground) or a detached Deno child (daemons). */
interface Running {
  pid: number;
  status: Promise<{ code: number }>;
  kill(signal: Deno.Signal): void;
  unref?(): void;
}

/** Spawn the tunnel's ssh. */
async function launchTunnel(ctx: Ctx, t: Tunnel): Promise<void> {
  const args = tunnelArgs(ctx, t);
  const program = sshProgram(ctx.env);
  t.argv = [program, ...args];
  t.exitStatus = undefined;
  let proc: Running;
  if (ctx.anchor) {
    proc = await ctx.anchor.spawn(t.argv);
  } else {
    const c = new Deno.Command(program, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true, // own session: survives us, never gets a terminal's signals
    }).spawn();
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
  ctx.emit(t, "starting", { pid: proc.pid });
}

async function spawnTunnel(ctx: Ctx, t: Tunnel): Promise<void> {
  await prepareTunnel(ctx, t);
  await launchTunnel(ctx, t);
}

/** Prepare every tunnel, then spawn them all in one go. */
async function launchAll(ctx: Ctx, tunnels: readonly Tunnel[]): Promise<void> {
  await Promise.all(tunnels.map((t) => prepareTunnel(ctx, t)));
  await Promise.all(tunnels.map((t) => launchTunnel(ctx, t)));
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await Deno.lstat(path)).isSocket === true;
  } catch {
    return false;
  }
}

async function readLog(path: string, from = 0): Promise<string> {
  try {
    const bytes = await Deno.readFile(path);
    return new TextDecoder().decode(bytes.subarray(from));
  } catch {
    return "";
  }
}

async function logSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

/** The most useful line of an ssh log for an error message. */
export function lastLogReason(log: string): string | undefined {
  const lines = log.split(/\r?\n/).map((l) => l.trim()).filter((l) =>
    l !== "" && !l.startsWith("Warning: Permanently added")
  );
  return lines.at(-1);
}

/** What a probe through a forward saw (see {@link probeForward}). */
export type ProbeResult = "refused" | "data" | "closed" | "open";

/**
 * Connect through a forward and classify what happens within `settleMs`:
 * bytes arrive (`data`: the channel is open), the connection is closed
 * (`closed`: a service that hung up, or ssh after an open failure — the ssh
 * log decides), it stays open (`open`), or nothing listens (`refused`).
 */
export async function probeForward(port: number, settleMs: number): Promise<ProbeResult> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return "refused";
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const buf = new Uint8Array(256);
    return await Promise.race([
      conn.read(buf).then(
        (n) => (n === null ? "closed" : "data") as ProbeResult,
        () => "closed" as ProbeResult,
      ),
      new Promise<ProbeResult>((r) => (timer = setTimeout(() => r("open"), settleMs))),
    ]);
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

/** Thrown when ssh runs but a forward's far end never accepted. */
class ForwardUnverified extends CrabboxError {}

/**
 * Wait until every forward of `t` works end to end (see the module doc of
 * {@link connectCrew}). With `realloc`, an "Address already in use" exit moves
 * that forward to the next free port and respawns.
 */
async function awaitReady(ctx: Ctx, t: Tunnel, deadline: number, realloc: boolean): Promise<void> {
  const spawnedAt = Date.now();
  let settle = 0;
  let verified = new Set<number>();
  let reallocs = 0;
  let delay = 2;
  let lastOpenFailure: string | undefined;
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
      throw new CrabboxError("ssh", "ssh_timeout", `ssh to ${t.member.name} did not come up`, {
        details: { permanent: false },
      });
    }
    if (!(await isSocket(t.controlPath))) {
      // ssh creates its ControlMaster socket only after binding every -L
      // listener (ExitOnForwardFailure makes a bind failure fatal before
      // that), so until it exists a probe could reach someone else's socket.
      await Promise.race([sleep(delay), t.exited]);
      delay = Math.min(delay * 2, 10);
      continue;
    }
    const pending = t.forwards.filter((f) => !verified.has(f.localPort));
    if (pending.length === 0) return;
    const offset = await logSize(t.logFile);
    const s = settle || 100;
    const results = await Promise.all(pending.map((f) => probeForward(f.localPort, s)));
    if (results.some((r) => r === "refused")) {
      // Not expected once the socket exists; retry until ssh exits or the deadline.
      await Promise.race([sleep(50), t.exited]);
      continue;
    }
    if (settle === 0) {
      // Handshake time ~ several round trips: a safe window for an open failure to come back.
      settle = Math.min(2000, Math.max(100, Math.round((Date.now() - spawnedAt) / 2)));
    }
    const failures = (await readLog(t.logFile, offset)).split(/\r?\n/)
      .map((l) => OPEN_FAILED.exec(l)?.[1]).filter((x): x is string => x !== undefined);
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
  const failures = (await readLog(t.logFile, offset)).split(/\r?\n/)
    .map((l) => OPEN_FAILED.exec(l)?.[1]).filter((x): x is string => x !== undefined);
  return t.forwards.map((f, i) => {
    const r = results[i];
    if (r === "data") return { ...f, ok: true };
    if (r === "refused") return { ...f, ok: false, reason: "nothing listens on the local port" };
    if (failures.length === 0) return { ...f, ok: true };
    return { ...f, ok: false, reason: `open failed: ${failures.at(-1)}` };
  });
}

async function stopChild(t: Tunnel, graceMs = 2000): Promise<void> {
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

function backoffDelay(options: ConnectOptions, attempt: number): number {
  const initial = options.backoff?.initialMs ?? 500;
  const max = options.backoff?.maxMs ?? 30_000;
  return Math.min(max, initial * 2 ** Math.max(0, attempt - 1));
}

/** First connect of a member: spawn, retry transient ssh failures until the deadline. */
async function firstConnect(ctx: Ctx, t: Tunnel, deadline: number): Promise<void> {
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
      await sleep(wait, ctx.options.signal);
    }
  }
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
      await sleep(wait, stop);
      if (t.stopping) break;
      try {
        await spawnTunnel(ctx, t);
        await awaitReady(ctx, t, Date.now() + 30_000, false);
        attempt = 0;
        ctx.emit(t, "up", { pid: t.child?.pid });
        break;
      } catch (e) {
        if (t.stopping) break;
        if (e instanceof ForwardUnverified && !t.exitStatus) {
          // ssh is up and holds the ports; the member's service is not answering yet.
          attempt = 0;
          ctx.emit(t, "up", { pid: t.child?.pid, reason: `forwards not verified: ${e.message}` });
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

const liveMeshes = new Map<string, { tunnels: Tunnel[]; ctx: Ctx }>();

function makeCtx(rt: Runtime, options: ConnectOptions, crew: string, taken: Set<number>): Ctx {
  return {
    rt,
    env: rt.env,
    options,
    isFree: options.isPortFree ?? isLoopbackPortFree,
    range: options.portRange ?? MESH_PORT_RANGE,
    taken,
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

async function makeTunnels(rt: Runtime, plan: MeshPlan): Promise<Tunnel[]> {
  const out: Tunnel[] = [];
  await pinCrewHostKeys(
    plan.members.filter((m) => m.ports.length > 0).map((m) => m.lease.ssh!),
    plan.paths.knownHosts,
  );
  for (const m of plan.members) {
    const forwards = plan.forwards.filter((f) => f.leaseId === m.lease.id);
    if (forwards.length === 0) continue;
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

/**
 * Like `prepareKnownHosts` for a whole crew at once: pin every known host key
 * in one locked read-modify-write (one fsync instead of one per member).
 */
async function pinCrewHostKeys(targets: readonly SshTarget[], file: string): Promise<void> {
  await ensurePrivateDir(dirOf(file));
  await withLock(`${file}.lock`, async () => {
    let current = "";
    try {
      current = await Deno.readTextFile(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const pinned = new Map<string, string>();
    for (const t of targets) {
      if (t.hostKey) pinned.set(t.port === 22 ? t.host : `[${t.host}]:${t.port}`, t.hostKey);
    }
    const kept = current.split("\n").filter((l) => l !== "" && !pinned.has(l.split(" ")[0]));
    const next = [...kept, ...[...pinned].map(([id, key]) => `${id} ${key}`)].join("\n") +
      (kept.length + pinned.size > 0 ? "\n" : "");
    if (next !== current || current === "") await writeFileAtomic(file, next);
  });
}

function sortForwards(forwards: MeshForward[]): MeshForward[] {
  return forwards.sort((a, b) =>
    a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : a.remotePort - b.remotePort
  );
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
 * A member whose ssh dies is restarted with exponential backoff (500 ms
 * doubling, capped at 30 s) on the same local ports; the others stay up.
 *
 * @example
 * ```ts
 * import { connectCrew } from "./mesh_connect.ts";
 * await using mesh = await connectCrew("pr-42", { onEvent: (e) => console.error(e.peer, e.state) });
 * const res = await fetch(`http://${mesh.address("api", 8080)}/health`);
 * ```
 */
export async function connectCrew(name: string, options: ConnectOptions = {}): Promise<CrewMesh> {
  const rt = await resolveRuntime(options);
  const plan = await planCrew(name, options);
  const crew = plan.crew;
  const key = `${rt.home}\0${crew}`;
  if (liveMeshes.has(key)) {
    throw new CrabboxError("state", "already_connected", `crew "${crew}" is already connected`);
  }
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
  const tunnels = await makeTunnels(rt, plan);
  if (tunnels.length > 0) ctx.anchor = startAnchor();
  const stopper = new AbortController();
  liveMeshes.set(key, { tunnels, ctx });
  let supervisors: Promise<void>[] = [];
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      stopper.abort();
      for (const t of tunnels) t.stopping = true;
      await Promise.all(tunnels.map((t) => stopChild(t)));
      await Promise.all(supervisors);
      for (const t of tunnels) if (t.state !== "stopped") ctx.emit(t, "stopped");
      await ctx.anchor?.close();
      liveMeshes.delete(key);
    })();
  const onAbort = () => void close();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    options.signal?.throwIfAborted();
    const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
    await launchAll(ctx, tunnels);
    const results = await Promise.allSettled(tunnels.map((t) => firstConnect(ctx, t, deadline)));
    const failed = results.find((r) => r.status === "rejected") as
      | PromiseRejectedResult
      | undefined;
    if (options.signal?.aborted) {
      throw new CrabboxError("interrupted", "interrupted", `connect to crew "${crew}" interrupted`);
    }
    if (failed) throw failed.reason;
  } catch (e) {
    await close();
    options.signal?.removeEventListener("abort", onAbort);
    throw e;
  }
  supervisors = tunnels.map((t) => supervise(ctx, t, stopper.signal));
  const forwards = sortForwards(tunnels.flatMap((t) => t.forwards).concat());
  await writeMeshFiles(plan.paths, crew, forwards);
  const closed = (async () => {
    await new Promise<void>((r) => stopper.signal.addEventListener("abort", () => r()));
    await close();
    options.signal?.removeEventListener("abort", onAbort);
  })();
  const current = () => sortForwards(tunnels.flatMap((t) => t.forwards).map((f) => ({ ...f })));
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
    close,
    closed,
    [Symbol.asyncDispose]: close,
  };
}

// ---------------------------------------------------------------------------
// Detached daemons (`crew connect --export`) and `crew disconnect`

async function readDaemonState(paths: MeshPaths): Promise<DaemonState | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(paths.daemon);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return parseDaemonState(text, paths.daemon);
}

async function liveDaemonCount(paths: MeshPaths): Promise<number> {
  const state = await readDaemonState(paths).catch(() => undefined);
  if (!state) return 0;
  let n = 0;
  for (const p of state.processes) {
    const now = await processIdentity(p.pid);
    if (now && now.startTime === p.startTime && now.argv.join("\0") === p.argv.join("\0")) n++;
  }
  return n;
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
 * forwards in `daemon.json` and write hosts/env.
 *
 * @example
 * ```ts
 * import { startCrewDaemons } from "./mesh_connect.ts";
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
  return await withLock(joinPath(paths.dir, ".mesh.lock"), async () => {
    const replaced = (await stopDaemons(paths)).stopped;
    const plan = await planCrew(crew, options);
    const taken = new Set(plan.forwards.map((f) => f.localPort));
    const ctx = makeCtx(rt, options, crew, taken);
    const tunnels = await makeTunnels(rt, plan);
    const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
    try {
      await launchAll(ctx, tunnels);
    } catch (e) {
      await Promise.all(tunnels.map((t) => stopChild(t)));
      throw e;
    }
    const results = await Promise.allSettled(tunnels.map((t) => firstConnect(ctx, t, deadline)));
    const failed = results.find((r) => r.status === "rejected") as
      | PromiseRejectedResult
      | undefined;
    if (failed || options.signal?.aborted) {
      for (const t of tunnels) t.stopping = true;
      await Promise.all(tunnels.map((t) => stopChild(t)));
      throw failed?.reason ??
        new CrabboxError("interrupted", "interrupted", `connect to crew "${crew}" interrupted`);
    }
    const processes: DaemonProcess[] = [];
    for (const t of tunnels) {
      const id = await processIdentity(t.child!.pid);
      if (!id) {
        for (const x of tunnels) await stopChild(x);
        throw new CrabboxError("ssh", "ssh_exited", `ssh for ${t.member.name} exited right away`);
      }
      processes.push({
        leaseId: t.member.lease.id,
        peer: t.member.name,
        pid: id.pid,
        startTime: id.startTime,
        argv: id.argv,
        controlPath: t.controlPath,
        logFile: t.logFile,
        forwards: t.forwards.map((f) => ({ localPort: f.localPort, remotePort: f.remotePort })),
      });
      t.child!.unref?.();
    }
    const state: DaemonState = {
      version: 1,
      crew,
      startedAt: new Date().toISOString(),
      processes,
    };
    await writeFileAtomic(paths.daemon, renderDaemonState(state));
    const forwards = sortForwards(tunnels.flatMap((t) => t.forwards));
    await writeMeshFiles(paths, crew, forwards);
    return {
      crew,
      forwards,
      exports: exportLines(forwards),
      paths,
      state,
      skipped: plan.skipped,
      replaced,
    };
  });
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

async function stopDaemons(paths: MeshPaths): Promise<{ recorded: number; stopped: number }> {
  const state = await readDaemonState(paths);
  if (!state) return { recorded: 0, stopped: 0 };
  const results = await Promise.all(state.processes.map(async (p) => {
    const ok = await killIfMatches({ pid: p.pid, startTime: p.startTime, argv: p.argv });
    if (ok) await removeFile(p.controlPath).catch(() => {});
    return ok;
  }));
  await removeFile(paths.daemon);
  return { recorded: state.processes.length, stopped: results.filter(Boolean).length };
}

/**
 * Stop a crew's `--export` daemons: only processes whose pid, start time and
 * argv still match `daemon.json` are signalled (a reused pid is never
 * killed); the state file is removed.
 *
 * @example
 * ```ts
 * import { disconnectCrew } from "./mesh_connect.ts";
 * const { stopped, hadState } = await disconnectCrew("pr-42");
 * ```
 */
export async function disconnectCrew(
  name: string,
  options: CrabboxOptions = {},
): Promise<DisconnectResult> {
  const rt = await resolveRuntime(options);
  const crew = normalizeCrewName(name);
  const paths = meshPaths(rt.home, crew);
  try {
    await Deno.stat(paths.daemon);
  } catch {
    return { crew, hadState: false, recorded: 0, stopped: 0 };
  }
  const r = await withLock(joinPath(paths.dir, ".mesh.lock"), () => stopDaemons(paths));
  return { crew, hadState: true, ...r };
}

// ---------------------------------------------------------------------------
// Reusing the master (`run`/`ssh --id`) and live forwards (`exposePort`)

/**
 * The ControlMaster mode `crabbox run/ssh --id` should use for a lease: the
 * crew mesh's master (`ControlMaster=no` + its path) when the socket exists
 * and `ssh -O check` succeeds, else `{ master: "none" }` (a fresh connection).
 *
 * @example
 * ```ts
 * import { controlForLease } from "./mesh_connect.ts";
 * import { sshCommandArgs } from "./ssh.ts";
 * import type { Lease } from "./claims.ts";
 * declare const lease: Lease;
 * const control = await controlForLease("/home/a/.crabbox", lease);
 * sshCommandArgs(lease.ssh!, ["true"], { knownHostsFile: "/home/a/.crabbox/crew/x/known_hosts", control });
 * ```
 */
export async function controlForLease(
  home: string,
  lease: Lease,
  options: { env?: EnvReader } = {},
): Promise<ControlMode> {
  if (!lease.crew || !lease.ssh) return { master: "none" };
  const path = await memberControlPath(home, lease.crew, lease.id);
  if (!(await isSocket(path))) return { master: "none" };
  const env = options.env ?? ((k: string) => Deno.env.get(k));
  return await sshAnswers(env, path, sshDestination(lease.ssh))
    ? { master: "no", path }
    : { master: "none" };
}

/**
 * Add a forward for a newly exposed port on a connected member, on its live
 * master (`ssh -O forward -L …`) without restarting the tunnel; updates
 * daemon.json (when the member is a daemon), the in-process mesh (so restarts
 * keep it) and the hosts/env files. Resolves `undefined` when the member is
 * not connected.
 *
 * @example
 * ```ts
 * import { addLiveForward } from "./mesh_connect.ts";
 * import type { Lease } from "./claims.ts";
 * declare const api: Lease;
 * const f = await addLiveForward("/home/a/.crabbox", api, 9090);
 * if (f) console.log(`127.0.0.1:${f.localPort}`);
 * ```
 */
export async function addLiveForward(
  home: string,
  lease: Lease,
  port: number,
  options: ConnectOptions = {},
): Promise<MeshForward | undefined> {
  if (!lease.crew || !lease.ssh) return undefined;
  const crew = lease.crew;
  const env = options.env ?? ((k: string) => Deno.env.get(k));
  const control = await controlForLease(home, lease, { env });
  if (control.master !== "no") return undefined;
  const paths = meshPaths(home, crew);
  return await withLock(joinPath(paths.dir, ".forward.lock"), async () => {
    const state = await readDaemonState(paths).catch(() => undefined);
    const live = liveMeshes.get(`${home}\0${crew}`);
    const tunnel = live?.tunnels.find((t) => t.member.lease.id === lease.id);
    const proc = state?.processes.find((p) => p.leaseId === lease.id);
    let hostsText = "";
    try {
      hostsText = await Deno.readTextFile(paths.hosts);
    } catch { /* none yet */ }
    const entries = parseHostsFile(hostsText);
    const peer = tunnel?.member.name ?? proc?.peer ?? lease.slug;
    const existing = entries.find((e) => e.peer === peer && e.remotePort === port);
    if (existing) return { ...existing, leaseId: lease.id };
    const used = new Set([
      ...entries.map((e) => e.localPort),
      ...(state?.processes.flatMap((p) => p.forwards.map((f) => f.localPort)) ?? []),
      ...(live?.ctx.taken ?? []),
    ]);
    const isFree = options.isPortFree ?? isLoopbackPortFree;
    const range = options.portRange ?? MESH_PORT_RANGE;
    let lastErr = "";
    for (let i = 0; i < 20; i++) {
      const localPort = nextFreePort(isFree, used, range);
      used.add(localPort);
      const args = [
        ...sshOptionArgs(lease.ssh!, { knownHostsFile: paths.knownHosts, control }),
        "-O",
        "forward",
        "-L",
        `127.0.0.1:${localPort}:127.0.0.1:${port}`,
        "--",
        sshDestination(lease.ssh!),
      ];
      const out = await new Deno.Command(sshProgram(env), {
        args,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) {
        lastErr = new TextDecoder().decode(out.stderr).trim();
        continue;
      }
      const fwd: MeshForward = { peer, leaseId: lease.id, remotePort: port, localPort };
      if (tunnel) {
        tunnel.forwards.push(fwd);
        tunnel.forwards.sort((a, b) => a.remotePort - b.remotePort);
        live!.ctx.taken.add(localPort);
      }
      if (state && proc) {
        proc.forwards.push({ localPort, remotePort: port });
        await writeFileAtomic(paths.daemon, renderDaemonState(state));
      }
      const all = sortForwards([
        ...entries.map((e) => ({
          ...e,
          leaseId: state?.processes.find((p) => p.peer === e.peer)?.leaseId ??
            live?.tunnels.find((t) => t.member.name === e.peer)?.member.lease.id ?? "",
        })),
        fwd,
      ]);
      await writeMeshFiles(paths, crew, all);
      return fwd;
    }
    throw new CrabboxError(
      "ssh",
      "live_forward_failed",
      `could not add a forward for ${peer}:${port} on the live master: ${lastErr}`,
    );
  });
}

// ---------------------------------------------------------------------------
// `crew peers`

/** One member as `crew peers` shows it. */
export interface PeerInfo {
  /** Peer name (disambiguated slug; the slug for leases outside the mesh). */
  peer: string;
  /** Slug. */
  slug: string;
  /** Lease id. */
  leaseId: string;
  /** Provider name. */
  provider: string;
  /** Primary transport. */
  transport: Transport;
  /** `ssh://host:port` (IPv6 bracketed), the tailnet address, or `""`. */
  endpoint: string;
  /** Exposed ports. */
  expose: number[];
  /** Planes the provider supports (`ssh`, `tailnet`). */
  planes: string[];
}

/**
 * Every member of a crew with provider, transport, endpoint, exposed ports
 * and the planes its provider supports, in peer-name order.
 *
 * @example
 * ```ts
 * import { crewPeers } from "./mesh_connect.ts";
 * for (const p of await crewPeers("pr-42")) console.log(p.peer, p.transport, p.endpoint);
 * ```
 */
export async function crewPeers(name: string, options: ConnectOptions = {}): Promise<PeerInfo[]> {
  const crew = normalizeCrewName(name);
  const leases = (options.members ??
    await listLeases({ crew, provider: options.provider }, options)).filter((l) =>
      (l.crew === undefined || l.crew === crew) &&
      (options.provider === undefined || l.provider === options.provider)
    );
  const features = (p: string): ReadonlySet<Feature> => {
    const injected = options.providers;
    if (injected && Object.hasOwn(injected, p)) return injected[p].features;
    try {
      return providerEntry(p).features;
    } catch {
      return new Set();
    }
  };
  const { members } = selectMembers(leases, hasSshFeature(options));
  const names = new Map(members.map((m) => [m.lease.id, m.name]));
  return leases.map((l) => {
    const f = features(l.provider);
    const transport = memberTransport(l, f);
    const endpoint = transport === "tailnet"
      ? (l.tailnet?.ipv4 ?? l.tailnet?.fqdn ?? "")
      : transport === "ssh"
      ? sshEndpoint(l) ?? ""
      : "";
    return {
      peer: names.get(l.id) ?? l.slug,
      slug: l.slug,
      leaseId: l.id,
      provider: l.provider,
      transport,
      endpoint,
      expose: [...l.expose],
      planes: providerPlanes(f),
    };
  }).sort((a, b) => a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0);
}

/**
 * The forward table of a foreground `crew connect` running elsewhere: the
 * hosts file it wrote, when every member with ports has a live master.
 */
async function liveForegroundForwards(
  rt: Runtime,
  plan: MeshPlan,
  options: ConnectOptions,
): Promise<MeshForward[] | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(plan.paths.hosts);
  } catch {
    return undefined;
  }
  const withPorts = plan.members.filter((m) => m.ports.length > 0);
  if (withPorts.length === 0) return undefined;
  for (const m of withPorts) {
    const control = await controlForLease(rt.home, m.lease, { env: options.env ?? rt.env });
    if (control.master !== "no") return undefined;
  }
  const ids = new Map(plan.members.map((m) => [m.name, m.lease.id]));
  return sortForwards(parseHostsFile(text).map((e) => ({ ...e, leaseId: ids.get(e.peer) ?? "" })));
}

/** What `crew connect --json` prints. */
export interface CrewDescription {
  /** Where the hosts file is (or would be) written. */
  hostsPath: string;
  /** Where the env file is (or would be) written. */
  envPath: string;
  /** `export …` lines. */
  exports: string[];
  /** The forward table. */
  forwards: { peer: string; remotePort: number; localPort: number; leaseId: string }[];
}

/**
 * The forward table of a crew without starting or changing anything: the
 * live table when `--export` daemons run (from `daemon.json`), else a fresh
 * plan. Writes no file and touches no box.
 *
 * @example
 * ```ts
 * import { describeCrew } from "./mesh_connect.ts";
 * console.log(JSON.stringify(await describeCrew("pr-42")));
 * ```
 */
export async function describeCrew(
  name: string,
  options: ConnectOptions = {},
): Promise<CrewDescription> {
  const rt = await resolveRuntime(options);
  const paths = meshPaths(rt.home, normalizeCrewName(name));
  let forwards: MeshForward[];
  const state = await readDaemonState(paths).catch(() => undefined);
  if (state && await liveDaemonCount(paths) > 0) {
    forwards = sortForwards(daemonForwards(state));
  } else {
    const plan = await planCrew(name, options);
    forwards = (await liveForegroundForwards(rt, plan, options)) ?? plan.forwards;
  }
  return {
    hostsPath: paths.hosts,
    envPath: paths.env,
    exports: exportLines(forwards),
    forwards: forwards.map((f) => ({
      peer: f.peer,
      remotePort: f.remotePort,
      localPort: f.localPort,
      leaseId: f.leaseId,
    })),
  };
}
