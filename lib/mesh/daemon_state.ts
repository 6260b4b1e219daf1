/**
 * What `daemon.json` says about a crew's `--export` daemons, read without
 * starting or stopping anything: the recorded state, how many of its
 * processes still run, and the check that this system can identify them.
 *
 * @module
 */

import { CrabboxError } from "../core/errors.ts";
import type { MeshPaths } from "../core/home.ts";
import { type DaemonIntent, type DaemonState, parseDaemonState } from "./files.ts";
import {
  type IdentityBackend,
  identityBackend,
  ownProcesses,
  runsCommand,
} from "../process/find.ts";
import { type ProcessIdentity, processIdentity, sameProcess } from "../process/identity.ts";

/**
 * The error for a system where process identity cannot be told (neither
 * `/proc` nor `ps`): `what` cannot be done safely there (exit 6).
 *
 * @example
 * ```ts
 * import { identityUnsupported } from "./daemon_state.ts";
 * identityUnsupported("crew disconnect").message;
 * // "crew disconnect is not supported on this OS: needs /proc or ps"
 * ```
 */
export function identityUnsupported(what: string): CrabboxError {
  return new CrabboxError(
    "prerequisite",
    "identity_unsupported",
    `${what} is not supported on this OS: needs /proc or ps`,
    { hint: "crabbox stops only processes it can identify (pid, start time, argv)" },
  );
}

/** Throw {@link identityUnsupported} when this system has neither `/proc` nor `ps`. */
export async function requireProcessIdentity(
  what: string,
  backend: () => Promise<IdentityBackend> = identityBackend,
): Promise<void> {
  if ((await backend()) === "none") throw identityUnsupported(what);
}

/** A crew's `daemon.json`, or `undefined` when there is none. */
export async function readDaemonState(paths: MeshPaths): Promise<DaemonState | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(paths.daemon);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return parseDaemonState(text, paths.daemon);
}

/** How many processes of `daemon.json` still run (pid, start time and argv match). */
export async function liveDaemonCount(paths: MeshPaths): Promise<number> {
  const state = await readDaemonState(paths).catch(() => undefined);
  if (!state) return 0;
  let n = 0;
  for (const p of state.processes) {
    const now = await processIdentity(p.pid);
    if (now && sameProcess(now, { pid: p.pid, startTime: p.startTime, argv: p.argv })) n++;
  }
  for (const s of (await startingProcesses(state)) ?? []) n += s.processes.length;
  return n;
}

/**
 * Each ssh that `state` records as starting (its spawn may have happened
 * without its record), with this user's processes that run exactly its
 * argv — one scan for all of them. `undefined` where neither `/proc` nor
 * `ps` exists.
 */
export async function startingProcesses(
  state: DaemonState,
): Promise<{ intent: DaemonIntent; processes: ProcessIdentity[] }[] | undefined> {
  const starting = state.starting ?? [];
  if (starting.length === 0) return [];
  const mine = await ownProcesses();
  if (mine === undefined) return undefined;
  return starting.map((intent) => ({
    intent,
    processes: mine.filter((p) => runsCommand(p, intent.argv)),
  }));
}
