/**
 * Process identity on Linux: a pid plus its start time (`/proc/<pid>/stat`)
 * and exact argv (`/proc/<pid>/cmdline`). A recorded identity lets crabbox
 * stop a process it started earlier without ever killing an unrelated process
 * that got the same pid later.
 *
 * @module
 */

/** Who a process is: pid, start time and argv. */
export interface ProcessIdentity {
  /** Process id. */
  pid: number;
  /** Start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`). */
  startTime: string;
  /** argv, program first. */
  argv: string[];
}

/** The parts of `/proc/<pid>/stat` crabbox uses. */
export interface ProcStat {
  /** Process state letter (`R`, `S`, `Z`, …). */
  state: string;
  /** Start time in clock ticks since boot. */
  startTime: string;
}

/**
 * Parse `/proc/<pid>/stat`. The command name (field 2) may hold spaces and
 * parentheses, so fields are counted after the last `)`. Returns `undefined`
 * for text that is not a stat line.
 *
 * @example
 * ```ts
 * import { parseProcStat } from "./proc.ts";
 * const line = "42 (ssh) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0";
 * parseProcStat(line); // { state: "S", startTime: "123456" }
 * ```
 */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // Fields after the comm: index 0 is field 3 (state), so field 22 is index 19.
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const startTime = rest[19];
  if (!rest[0] || !startTime || !/^\d+$/.test(startTime)) return undefined;
  return { state: rest[0], startTime };
}

/**
 * Split `/proc/<pid>/cmdline` (NUL-separated, NUL-terminated) into argv.
 *
 * @example
 * ```ts
 * import { parseCmdline } from "./proc.ts";
 * parseCmdline("ssh\0-N\0--\0root@h\0"); // ["ssh", "-N", "--", "root@h"]
 * ```
 */
export function parseCmdline(text: string): string[] {
  const parts = text.split("\0");
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** Reads a `/proc` file; injected by tests. `undefined` when it does not exist. */
export type ProcReader = (path: string) => Promise<string | undefined>;

/** Reads `/proc` for real. */
export const readProc: ProcReader = async (path) => {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
};

/**
 * The identity of a live process; `undefined` when it does not exist, is a
 * zombie, or `/proc` cannot tell (not Linux).
 *
 * @example
 * ```ts
 * import { processIdentity } from "./proc.ts";
 * const me = await processIdentity(Deno.pid);
 * me?.argv[0]; // e.g. "deno"
 * ```
 */
export async function processIdentity(
  pid: number,
  read: ProcReader = readProc,
): Promise<ProcessIdentity | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const stat = await read(`/proc/${pid}/stat`);
  const parsed = stat === undefined ? undefined : parseProcStat(stat);
  if (!parsed || parsed.state === "Z" || parsed.state === "X") return undefined;
  const cmdline = await read(`/proc/${pid}/cmdline`);
  if (cmdline === undefined || cmdline === "") return undefined;
  return { pid, startTime: parsed.startTime, argv: parseCmdline(cmdline) };
}

/**
 * True when two identities are the same process: same pid, start time and argv.
 *
 * @example
 * ```ts
 * import { sameProcess } from "./proc.ts";
 * sameProcess({ pid: 1, startTime: "5", argv: ["ssh"] }, { pid: 1, startTime: "6", argv: ["ssh"] }); // false
 * ```
 */
export function sameProcess(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.startTime === b.startTime && a.argv.length === b.argv.length &&
    a.argv.every((x, i) => x === b.argv[i]);
}

/** Options of {@link killIfMatches}. */
export interface KillOptions {
  /** How long to wait for SIGTERM before SIGKILL (default 2000 ms). */
  graceMs?: number;
  /** `/proc` reader (tests). */
  read?: ProcReader;
  /** Signal sender (tests); default `Deno.kill`. */
  kill?: (pid: number, signal: Deno.Signal) => void;
}

/**
 * Stop a process only if it is still exactly `expected` (pid, start time and
 * argv). Sends SIGTERM, waits up to `graceMs` for it to go away, then SIGKILL
 * — re-checking the identity before each signal. Resolves `true` when the
 * process was ours and is gone, `false` when it was not running or is another
 * process now (nothing is killed then).
 *
 * @example
 * ```ts
 * import { killIfMatches, processIdentity } from "./proc.ts";
 * const child = new Deno.Command("sleep", { args: ["60"] }).spawn();
 * const id = await processIdentity(child.pid);
 * if (id) await killIfMatches(id); // true
 * ```
 */
export async function killIfMatches(
  expected: ProcessIdentity,
  options: KillOptions = {},
): Promise<boolean> {
  const read = options.read ?? readProc;
  const kill = options.kill ?? ((pid, sig) => Deno.kill(pid, sig));
  const matches = async () => {
    const now = await processIdentity(expected.pid, read);
    return now !== undefined && sameProcess(now, expected);
  };
  if (!(await matches())) return false;
  try {
    kill(expected.pid, "SIGTERM");
  } catch {
    return !(await matches());
  }
  const deadline = Date.now() + (options.graceMs ?? 2000);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    if (!(await matches())) return true;
  }
  if (await matches()) {
    try {
      kill(expected.pid, "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
  for (let i = 0; i < 50 && await matches(); i++) await new Promise((r) => setTimeout(r, 20));
  return !(await matches());
}

/** Kills registered children when the owning process dies; see {@link startOrphanGuard}. */
export interface OrphanGuard {
  /** Register a child pid to stop if this process dies first. */
  add(pid: number): void;
  /** Forget a pid (it was reaped). */
  remove(pid: number): void;
  /** Stop the guard (after the children were stopped normally). */
  close(): Promise<void>;
}

// Reads "+pid" / "-pid" lines; on EOF (the owner exited, even by SIGKILL) it
// sends SIGTERM to every registered pid whose argv still contains the marker.
const GUARD_SCRIPT = `marker=$1; pids=" "
while IFS= read -r line; do
  case "$line" in
    +*) pids="$pids\${line#+} " ;;
    -*) pids=$(printf '%s' "$pids" | sed "s/ \${line#-} / /") ;;
  esac
done
for p in $pids; do
  if tr '\\0' '\\n' < /proc/$p/cmdline 2>/dev/null | grep -qF -- "$marker"; then kill -TERM "$p" 2>/dev/null; fi
done
`;

/**
 * Start a watchdog (`sh`, in its own session) that stops the registered
 * children if this process dies without stopping them — even by SIGKILL,
 * since the watchdog notices its stdin pipe closing. A pid is signalled only
 * while its argv still contains `marker`, so a reused pid is never touched.
 *
 * @example
 * ```ts
 * import { startOrphanGuard } from "./proc.ts";
 * const guard = startOrphanGuard("/home/a/.crabbox/crew/pr-42/");
 * const child = new Deno.Command("sleep", { args: ["60", "/home/a/.crabbox/crew/pr-42/"] }).spawn();
 * guard.add(child.pid);
 * ```
 */
export function startOrphanGuard(marker: string): OrphanGuard {
  const child = new Deno.Command("sh", {
    args: ["-c", GUARD_SCRIPT, "crabbox-guard", marker],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  let chain = Promise.resolve();
  const send = (line: string) => {
    chain = chain.then(() => writer.write(enc.encode(line + "\n"))).catch(() => {});
  };
  let closed: Promise<void> | undefined;
  return {
    add: (pid) => send(`+${pid}`),
    remove: (pid) => send(`-${pid}`),
    close: () =>
      closed ??= (async () => {
        await chain;
        await writer.close().catch(() => {});
        await child.status;
      })(),
  };
}
