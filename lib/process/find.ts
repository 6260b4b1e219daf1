/**
 * Finding this user's processes by their exact argv (through `/proc`, else
 * `ps`), and telling whether this system can tell process identity at all.
 * `crew connect --export` records the argv it is about to start (with its
 * unique ControlPath) before spawning, so a start killed between spawn and
 * record still leaves a process that can be found and identity-checked.
 *
 * @module
 */

import { output } from "./run.ts";
import {
  parsePsLine,
  type ProcessIdentity,
  processIdentity,
  type ProcReader,
  readProc,
} from "./identity.ts";

/** Where process identity comes from: `/proc` (Linux), `ps` (macOS, BSD), or nowhere. */
export type IdentityBackend = "proc" | "ps" | "none";

/** Tells whether `ps -o lstart=,command=` works here; injected by tests. */
export type PsProbe = () => Promise<boolean>;

let psWorksCache: boolean | undefined;

/** Whether `ps -o lstart=,command= -p <own pid>` runs and names this process. */
export const psWorks: PsProbe = async () => {
  if (psWorksCache !== undefined) return psWorksCache;
  try {
    const out = await output("ps", {
      args: ["-o", "lstart=,command=", "-p", String(Deno.pid)],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    });
    psWorksCache = out.success && parsePsLine(new TextDecoder().decode(out.stdout)) !== undefined;
  } catch {
    psWorksCache = false;
  }
  return psWorksCache;
};

/**
 * Which source of process identity this system has.
 *
 * @example
 * ```ts
 * import { identityBackend } from "./find.ts";
 * await identityBackend(async () => undefined, async () => false); // "none"
 * ```
 */
export async function identityBackend(
  read: ProcReader = readProc,
  ps: PsProbe = psWorks,
): Promise<IdentityBackend> {
  if ((await read("/proc/self/stat")) !== undefined) return "proc";
  return (await ps()) ? "ps" : "none";
}

/** Lists this user's processes as `pid` + ps line; injected by tests. */
export type PsLister = () => Promise<{ pid: number; line: string }[]>;

/** `ps -U <uid> -o pid=,lstart=,command=` for real. */
export const listPs: PsLister = async () => {
  const uid = Deno.uid();
  if (uid === null) return [];
  const out = await output("ps", {
    args: ["-U", String(uid), "-o", "pid=,lstart=,command="],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  });
  if (!out.success) return [];
  const rows: { pid: number; line: string }[] = [];
  for (const raw of new TextDecoder().decode(out.stdout).split("\n")) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(raw);
    if (m) rows.push({ pid: Number(m[1]), line: m[2] });
  }
  return rows;
};

/** Lists the pids in `/proc` owned by this uid; injected by tests. */
export type ProcLister = () => Promise<number[]>;

/** This uid's pids from `/proc` for real. */
export const listProc: ProcLister = async () => {
  const uid = Deno.uid();
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if ((await Deno.stat(`/proc/${e.name}`)).uid === uid) pids.push(Number(e.name));
    } catch { /* gone meanwhile */ }
  }
  return pids;
};

/** Injected sources of {@link findProcesses}. */
export interface FindSources {
  /** `/proc` file reader. */
  read?: ProcReader;
  /** Lists this uid's pids in `/proc`. */
  listProc?: ProcLister;
  /** Lists this uid's processes through `ps`. */
  listPs?: PsLister;
  /** Whether `ps` works. */
  ps?: PsProbe;
}

/**
 * This user's live processes (not this one) with their identity; through
 * `ps` the argv is the command line split on spaces (see
 * {@link processIdentity}). Resolves `undefined` when this system has
 * neither `/proc` nor `ps`.
 *
 * @example
 * ```ts
 * import { ownProcesses } from "./find.ts";
 * const mine = await ownProcesses();
 * ```
 */
export async function ownProcesses(
  sources: FindSources = {},
): Promise<ProcessIdentity[] | undefined> {
  const read = sources.read ?? readProc;
  const backend = await identityBackend(read, sources.ps ?? psWorks);
  if (backend === "none") return undefined;
  const out: ProcessIdentity[] = [];
  if (backend === "proc") {
    for (const pid of await (sources.listProc ?? listProc)()) {
      if (pid === Deno.pid) continue;
      const id = await processIdentity(pid, read);
      if (id) out.push(id);
    }
    return out;
  }
  for (const { pid, line } of await (sources.listPs ?? listPs)()) {
    const parsed = parsePsLine(line);
    if (pid !== Deno.pid && parsed) out.push({ pid, ...parsed });
  }
  return out;
}

const base = (program: string) => program.slice(program.lastIndexOf("/") + 1);

/**
 * Whether a process runs exactly the command `argv`: the same command line
 * (compared split on spaces, the form `ps` can give) with the program
 * compared by its base name, since a spawn resolves `ssh` to `/usr/bin/ssh`.
 *
 * @example
 * ```ts
 * import { runsCommand } from "./find.ts";
 * runsCommand({ pid: 7, startTime: "1", argv: ["/usr/bin/ssh", "-N", "h"] }, ["ssh", "-N", "h"]); // true
 * ```
 */
export function runsCommand(p: ProcessIdentity, argv: readonly string[]): boolean {
  const a = p.argv.join(" ").split(/ +/);
  const b = argv.join(" ").split(/ +/);
  return a.length === b.length && a.length > 0 && base(a[0]) === base(b[0]) &&
    a.every((x, i) => i === 0 || x === b[i]);
}

/**
 * This user's live processes running exactly `argv` (see {@link runsCommand});
 * `undefined` when this system has neither `/proc` nor `ps`.
 *
 * @example
 * ```ts
 * import { findProcesses } from "./find.ts";
 * const found = await findProcesses(["ssh", "-N", "-o", "ControlPath=/tmp/cbx-cm-0/x", "--", "root@h"]);
 * ```
 */
export async function findProcesses(
  argv: readonly string[],
  sources: FindSources = {},
): Promise<ProcessIdentity[] | undefined> {
  return (await ownProcesses(sources))?.filter((p) => runsCommand(p, argv));
}
