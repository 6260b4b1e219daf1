/**
 * The shared vocabulary of the SSH mesh ({@link ConnectOptions}, member
 * states and events) and {@link planCrew}: which members a crew's mesh has
 * and which local port each forward gets, before anything starts; plus
 * writing the hosts and env files of a forward table.
 *
 * @module
 */

import type { Lease } from "../lease/leases.ts";
import { type CrabboxOptions, providerFeaturesOrNone, resolveRuntime } from "../runtime.ts";
import type { IdentityBackend } from "../process/find.ts";
import { CrabboxError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";
import { compareText } from "../core/order.ts";
import { type MeshPaths, meshPaths } from "../core/home.ts";
import { normalizeCrewName } from "../core/names.ts";
import { listClaims } from "../lease/claims.ts";
import { listLeases } from "../lease/leases.ts";
import { type NetworkMode, routeLease } from "../lease/network.ts";
import { sshTargetExpired, withFreshSsh } from "../lease/refresh.ts";
import {
  allocateForwards,
  isLoopbackPortFree,
  MESH_PORT_RANGE,
  type MeshMember,
  type MeshMembers,
  selectMembers,
  type SkippedMember,
} from "./forwards.ts";
import { exportLines, type MeshForward, renderEnvFile, renderHostsFile } from "./files.ts";

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

/** A phase of `connectCrew` (see {@link ConnectTiming}). */
export type ConnectPhase = "plan" | "spawn" | "confirm" | "sockets" | "probes" | "files" | "warm";

/**
 * How long one phase of a connect took: `plan` (leases, ports, host keys,
 * checks), `spawn` (log files and starting every ssh), `confirm` (waiting,
 * while the ssh processes start, for the providers to confirm the members
 * that this machine's claims named; see `connectCrew`), per member `sockets`
 * (spawn until its ControlMaster socket exists) and `probes` (socket until
 * every forward is verified), and `files` (hosts and env files). After
 * ready, per member, `warm`: its warm-up session through the master (see
 * `warm.ts`) ended, with how long it ran.
 */
export interface ConnectTiming {
  /** The phase. */
  phase: ConnectPhase;
  /** Its duration in milliseconds. */
  ms: number;
  /** The member, for `sockets`, `probes` and `warm`. */
  peer?: string;
}

/** Options of {@link connectCrew} and the other mesh functions. */
export interface ConnectOptions extends CrabboxOptions {
  /** Where process identity comes from (tests inject "none"); default: detect `/proc`, else `ps`. */
  identityBackend?: () => Promise<IdentityBackend>;
  /** Only members of this provider. */
  provider?: string;
  /** Use these leases instead of `listLeases({crew, provider})`. */
  members?: Lease[];
  /** Called on every member state change. */
  onEvent?: (event: MeshEvent) => void;
  /** Called with the duration of each connect phase (benchmarks, tracing). */
  onTiming?: (timing: ConnectTiming) => void;
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
  /**
   * The ssh-peer plane: every member also reaches every other member's
   * exposed ports as `<peer>.cbx:<port>` through `-R` forwards on its
   * master (see `peer_sync.ts`).
   */
  peers?: boolean;
  /** With `peers`: how often a foreground connect looks for members joining or leaving (default 5000 ms; 0: never). */
  peerPollMs?: number;
  /** How to reach tailnet members (default: config `network`, else `auto`). */
  network?: NetworkMode;
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
/** Whether a provider (an injected one first, else the registry's) supports ssh. */
export function hasSshFeature(options: CrabboxOptions): (provider: string) => boolean {
  return (name) => providerFeaturesOrNone(options, name).has("ssh");
}

/**
 * The leases of a crew a mesh command works on: `options.members` or the
 * active leases (not those being created, failed or unreachable), narrowed to the crew (leases without a crew pass) and to
 * `options.provider`.
 */
export async function crewLeases(crew: string, options: ConnectOptions): Promise<Lease[]> {
  const leases = options.members ??
    (await listLeases({ crew, provider: options.provider }, options)).filter((l) =>
      l.state === "active"
    );
  const inCrew = leases.filter((l) =>
    (l.crew === undefined || l.crew === crew) &&
    (options.provider === undefined || l.provider === options.provider)
  );
  const rt = await resolveRuntime(options);
  const mode = options.network ?? rt.config.network ?? "auto";
  return await Promise.all(inCrew.map((l) => routeLease(l, mode, rt.process)));
}

/**
 * Plan a crew's mesh without starting anything: members, skipped leases, and
 * the forward table with free local ports.
 *
 * @example
 * ```ts
 * import { planCrew } from "@crabbox/crabbox";
 * const plan = await planCrew("pr-42");
 * for (const f of plan.forwards) console.log(f.peer, f.remotePort, f.localPort);
 * ```
 */
export async function planCrew(name: string, options: ConnectOptions = {}): Promise<MeshPlan> {
  const rt = await resolveRuntime(options);
  const crew = normalizeCrewName(name);
  return planMembers(rt.home, crew, await crewMembers(crew, options), options);
}

/**
 * A crew's members and skipped leases, as the providers see them now (see
 * {@link crewLeases}); throws not-found when the crew has no active lease.
 */
export async function crewMembers(crew: string, options: ConnectOptions): Promise<MeshMembers> {
  const rt = await resolveRuntime(options);
  const inCrew = await Promise.all(
    (await crewLeases(crew, options)).map((l) => withFreshSsh(l, rt)),
  );
  if (inCrew.length === 0) {
    throw new CrabboxError("notFound", "no_crew", `crew "${crew}" has no active leases`, {
      hint: `lease members with: crabbox warmup --crew ${crew} --slug NAME --expose PORT`,
    });
  }
  return membersOf(inCrew, options);
}

function membersOf(leases: readonly Lease[], options: ConnectOptions): MeshMembers {
  return selectMembers(
    leases,
    hasSshFeature(options),
    (p) => !providerFeaturesOrNone(options, p).has("no-port-forward"),
  );
}

/**
 * A plan for members already chosen: a free local port for each of their
 * exposed ports (see {@link planCrew}).
 */
export function planMembers(
  home: string,
  crew: string,
  { members, skipped }: MeshMembers,
  options: ConnectOptions,
): MeshPlan {
  const forwards = allocateForwards(
    members,
    options.isPortFree ?? isLoopbackPortFree,
    options.portRange ?? MESH_PORT_RANGE,
  );
  return {
    crew,
    paths: meshPaths(home, crew),
    members,
    skipped,
    forwards,
    exports: exportLines(forwards),
  };
}

/**
 * The plan this machine's claims give, without asking any provider, so a
 * connect can start its ssh processes while the providers confirm the crew
 * ({@link crewMembers}, then {@link sameMembers}). `undefined` when the
 * claims cannot be trusted to start anything: `options.members` given, no
 * active claim of the crew, or a claimed SSH target that has expired (its
 * renewal needs the provider).
 */
export async function claimedPlan(
  crew: string,
  options: ConnectOptions,
  nowMs = Date.now(),
): Promise<MeshPlan | undefined> {
  if (options.members) return undefined;
  const rt = await resolveRuntime(options);
  const claimed = (await listClaims(rt.home)).filter((l) =>
    l.state === "active" && l.crew === crew &&
    (options.provider === undefined || l.provider === options.provider)
  );
  if (claimed.length === 0 || claimed.some((l) => sshTargetExpired(l.ssh, nowMs))) return undefined;
  const mode = options.network ?? rt.config.network ?? "auto";
  const routed = await Promise.all(claimed.map((l) => routeLease(l, mode, rt.process)));
  return planMembers(rt.home, crew, membersOf(routed, options), options);
}

/**
 * Ask the providers about a plan made from claims ({@link claimedPlan}), once
 * its ssh processes started: their members, and whether they are the
 * claimed ones ({@link sameMembers}). When not, a `log` line says so; the
 * caller stops what it started and starts theirs.
 */
export async function confirmClaims(
  plan: MeshPlan,
  options: ConnectOptions,
): Promise<{ same: boolean; members: MeshMembers }> {
  const members = await crewMembers(plan.crew, options);
  const same = sameMembers(plan.members, members.members);
  if (!same) {
    options.log?.(
      `crew "${plan.crew}": the providers list other members than this machine's claims; connecting to theirs`,
    );
  }
  return { same, members };
}

/**
 * Whether two member lists would run the same tunnels: the same names,
 * leases, exposed ports and SSH targets, in the same order (local ports
 * are not compared: they are chosen afterwards).
 *
 * @example
 * ```ts
 * import { sameMembers } from "./plan.ts";
 * sameMembers([], []); // true
 * ```
 */
export function sameMembers(a: readonly MeshMember[], b: readonly MeshMember[]): boolean {
  const key = (m: MeshMember) =>
    JSON.stringify([m.name, m.lease.id, m.lease.provider, m.ports, sorted(m.lease.ssh)]);
  return a.length === b.length && a.every((m, i) => key(m) === key(b[i]));
}

/** A JSON value with every object's keys in order (a claim and a provider may order them differently). */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value === null || typeof value !== "object") return value ?? null;
  const record = value as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(record).filter((k) => record[k] !== undefined).sort(compareText)
      .map((k) => [k, sorted(record[k])]),
  );
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

/** Sort a forward table in place by peer, then remote port; returns it. */
export function sortForwards(forwards: MeshForward[]): MeshForward[] {
  return forwards.sort((a, b) => compareText(a.peer, b.peer) || a.remotePort - b.remotePort);
}
