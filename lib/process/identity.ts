/**
 * Process identity on Linux: a pid plus its start time (`/proc/<pid>/stat`)
 * and exact argv (`/proc/<pid>/cmdline`). A recorded identity lets crabbox
 * stop a process it started earlier without ever killing an unrelated process
 * that got the same pid later.
 *
 * @module
 */

import { type ChildProcess, output, type ProcessRunner, spawn } from "./run.ts";

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
 * import { parseProcStat } from "./identity.ts";
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
 * import { parseCmdline } from "./identity.ts";
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
export const readProc: ProcReader = async (path: string): Promise<string | undefined> => {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
};

/**
 * Parse one line of `ps -o lstart=,command= -p PID` (the fallback where
 * `/proc` is absent, e.g. macOS): the fixed-width start time
 * (`Sun Nov 29 15:52:41 2026`) and the command line, split on spaces (ps
 * cannot tell spaces inside an argument; identities recorded and compared
 * through ps split the same way). `undefined` for anything else.
 *
 * @example
 * ```ts
 * import { parsePsLine } from "./identity.ts";
 * parsePsLine("Sun Nov  9 15:52:41 2026     /usr/bin/ssh -N -- root@h\n");
 * // { startTime: "Sun Nov  9 15:52:41 2026", argv: ["/usr/bin/ssh", "-N", "--", "root@h"] }
 * ```
 */
export function parsePsLine(text: string): { startTime: string; argv: string[] } | undefined {
  const m = /^\s*([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\s+(\S.*?)\s*$/.exec(
    text.split("\n").find((l) => l.trim() !== "") ?? "",
  );
  if (!m) return undefined;
  return { startTime: m[1], argv: m[2].split(/ +/) };
}

/** Whether this system has a `/proc` with per-process files (Linux). */
function hasProc(): boolean {
  try {
    Deno.statSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
}

/** Runs `ps -o lstart=,command= -p PID`; `undefined` when the process does not exist. */
export type PsReader = (pid: number) => Promise<string | undefined>;

/** Reads `ps` for real (`undefined` when ps fails or the pid is gone). */
export const readPs: PsReader = async (pid: number) => {
  try {
    const out = await output("ps", {
      args: ["-o", "lstart=,command=", "-p", String(pid)],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    });
    const text = new TextDecoder().decode(out.stdout);
    return out.success && text.trim() !== "" ? text : undefined;
  } catch {
    return undefined;
  }
};

/** `ps` start time of a pid, synchronously (for {@link procStartTime} without `/proc`). */
function psStartTimeSync(pid: number): string | undefined {
  try {
    const out = new Deno.Command("ps", {
      args: ["-o", "lstart=,command=", "-p", String(pid)],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    return out.success ? parsePsLine(new TextDecoder().decode(out.stdout))?.startTime : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The identity of a live process; `undefined` when it does not exist, is a
 * zombie, or `/proc` cannot tell (not Linux).
 *
 * @example
 * ```ts
 * import { processIdentity } from "./identity.ts";
 * const me = await processIdentity(Deno.pid);
 * me?.argv[0]; // e.g. "deno"
 * ```
 */
export async function processIdentity(
  pid: number,
  read: ProcReader = readProc,
  ps: PsReader = readPs,
): Promise<ProcessIdentity | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const stat = await read(`/proc/${pid}/stat`);
  if (stat === undefined && (await read("/proc/self/stat")) === undefined) {
    // No /proc (macOS, BSD): ask ps for the start time and command line.
    const line = await ps(pid);
    const parsed = line === undefined ? undefined : parsePsLine(line);
    return parsed && { pid, ...parsed };
  }
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
 * import { sameProcess } from "./identity.ts";
 * sameProcess({ pid: 1, startTime: "5", argv: ["ssh"] }, { pid: 1, startTime: "6", argv: ["ssh"] }); // false
 * ```
 */
export function sameProcess(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.startTime === b.startTime && a.argv.length === b.argv.length &&
    a.argv.every((x, i) => x === b.argv[i]);
}

/** Start time of a live (non-zombie) process, or `undefined` when it is gone. */
export function procStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return hasProc() ? undefined : psStartTimeSync(pid);
  }
  const parsed = parseProcStat(stat);
  return parsed && parsed.state !== "Z" && parsed.state !== "X" ? parsed.startTime : undefined;
}

/** True when the recorded process still runs (same pid and start time). */
export function procAlive(ref: { pid: number; startTime: string } | undefined): boolean {
  return ref !== undefined && procStartTime(ref.pid) === ref.startTime;
}

/** The command name of a process (`/proc/<pid>/comm`); `undefined` when it is gone. */
export function procComm(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return undefined;
  }
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
 * import { killIfMatches, processIdentity } from "./identity.ts";
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

/** A process started through an {@link Anchor}. */
export interface AnchoredProcess {
  /** Process id (the program itself: the anchor runs it without a wrapper). */
  readonly pid: number;
  /** Resolves with the exit status (`code` 128+n when killed by signal n). */
  readonly status: Promise<{ code: number }>;
  /** Send a signal (a no-op once the process has exited). */
  kill(signal: Deno.Signal): void;
}

/** Starts processes that die with their owner; see {@link startAnchor}. */
export interface Anchor {
  /** Start `argv` (program first, stdio to /dev/null); resolves once it runs. */
  spawn(argv: readonly string[]): Promise<AnchoredProcess>;
  /** Stop the anchor: every process still running gets SIGTERM; resolves when it is gone. */
  close(): Promise<void>;
}

/**
 * Quote one argument for `sh` (single quotes; `'` becomes `'\''`).
 *
 * @example
 * ```ts
 * import { shellQuote } from "./identity.ts";
 * shellQuote("it's"); // "'it'\\''s'"
 * ```
 */
export function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

// One monitor subshell per child reports "pid ID PID" and "exit ID PID RC".
// Each child runs in its own session (setsid, where there is one): Linux
// schedules every session as its own group (autogroup), and 100 ssh
// handshakes sharing one group's CPU against 100 sshd sessions made a large
// connect twice as slow. The child is not a process group leader, so setsid
// execs it in place (same pid). On stdin EOF (the owner exited or closed us,
// even after SIGKILL) the anchor signals its own process group — the
// monitors, nothing else — and each monitor passes SIGTERM on to its own
// child, which it has not reaped yet, so the pid cannot be someone else's.
const ANCHOR_SCRIPT = `trap ':' TERM
own=; command -v setsid >/dev/null 2>&1 && own=setsid
while IFS= read -r line; do
  case "$line" in
    "run "*)
      rest=\${line#run }; id=\${rest%% *}; args=\${rest#* }
      (
        t=0
        trap 't=1' TERM
        eval "set -- $args"
        $own "$@" </dev/null >/dev/null 2>&1 &
        p=$!
        trap 'kill -TERM "$p" 2>/dev/null; t=1' TERM
        if [ "$t" = 1 ]; then kill -TERM "$p" 2>/dev/null; t=0; fi
        echo "pid $id $p"
        while :; do
          wait "$p"; rc=$?
          [ "$t" = 1 ] || break
          t=0
        done
        echo "exit $id $p $rc"
      ) &
      ;;
  esac
done
kill -TERM 0 2>/dev/null
wait
`;

/**
 * Spawn `argv` with piped stdin/stdout in a session of its own, so terminal
 * signals never reach it or its children: through `setsid`, which this
 * process starts with `posix_spawn` (~0.4 ms), and else — no `setsid`
 * program, as on macOS — with `detached`, which forks this large process
 * first (~2.7 ms with a 60 MiB heap, measured).
 */
function spawnInOwnSession(argv: string[], runner?: ProcessRunner): ChildProcess {
  const stdio = { stdin: "piped", stdout: "piped", stderr: "null" } as const;
  try {
    // Our child is no process group leader, so setsid(1) calls setsid() and
    // execs: the pid we get is the anchor's own.
    return spawn("setsid", { args: argv, ...stdio }, runner);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    return spawn(argv[0], { args: argv.slice(1), ...stdio, detached: true }, runner);
  }
}

/**
 * Start an anchor: a small `sh` in its own session that starts processes for
 * this one and stops them all when this process goes away without stopping
 * them — even when it is killed with SIGKILL, because the anchor notices its
 * stdin pipe closing. It signals only its own process group (its monitor
 * subshells), and each monitor signals its own unreaped child, so a reused
 * pid is never hit. Every child runs in a session of its own (`setsid`, where
 * there is one), so the scheduler treats it like any daemon, not as one
 * share split among all of them. Spawning through it is also cheap: the
 * large Deno process forks once, the small shell forks per child.
 *
 * @example
 * ```ts
 * import { startAnchor } from "./identity.ts";
 * const anchor = startAnchor();
 * const p = await anchor.spawn(["sleep", "60"]);
 * p.kill("SIGTERM");
 * await p.status;
 * await anchor.close();
 * ```
 */
export function startAnchor(runner?: ProcessRunner): Anchor {
  const child = spawnInOwnSession(["sh", "-c", ANCHOR_SCRIPT, "crabbox-anchor"], runner);
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  let chain = Promise.resolve();
  const send = (line: string) =>
    chain = chain.then(() => writer.write(enc.encode(line + "\n"))).catch(() => {});
  const started = new Map<number, (pid: number) => void>();
  const exits = new Map<number, (rc: number) => void>();
  const exited = new Set<number>();
  const reader = (async () => {
    // A TextDecoder, not a TextDecoderStream: the stream's first use costs
    // ~4 ms, and this runs right before a connect's first ssh starts.
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of child.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const [kind, id, pid, rc] = buf.slice(0, nl).split(" ");
        buf = buf.slice(nl + 1);
        if (kind === "pid") started.get(Number(id))?.(Number(pid));
        if (kind === "exit") {
          exited.add(Number(id));
          exits.get(Number(id))?.(Number(rc));
        }
      }
    }
    for (const [id, resolve] of exits) if (!exited.has(id)) resolve(255);
  })();
  let next = 0;
  let closing: Promise<void> | undefined;
  return {
    spawn(argv) {
      const id = next++;
      const status = new Promise<{ code: number }>((resolve) =>
        exits.set(id, (code) => resolve({ code }))
      );
      const pid = new Promise<number>((resolve) => started.set(id, resolve));
      send(`run ${id} ${argv.map(shellQuote).join(" ")}`);
      return pid.then((p) => ({
        pid: p,
        status,
        kill(signal: Deno.Signal) {
          if (exited.has(id)) return;
          try {
            Deno.kill(p, signal);
          } catch { /* gone */ }
        },
      }));
    },
    close: () =>
      closing ??= (async () => {
        await chain;
        await writer.close().catch(() => {});
        await child.status;
        await reader;
      })(),
  };
}
