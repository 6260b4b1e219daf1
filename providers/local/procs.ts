/**
 * The processes of a local box: start (detached), identify, wait for a
 * listening socket, kill.
 *
 * @module
 */

import { procAlive, procComm, procStartTime } from "../../lib/process/identity.ts";
import { output, spawnDetached } from "../../lib/process/run.ts";
import { sleep } from "../../lib/core/async.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { LISTEN_TIMEOUT_MS, type ProcRef } from "./box.ts";

/**
 * Start `argv` as a daemon: `setsid -f` forks it into a session of its own
 * (Ctrl-C or a closed terminal never reach it), stdin from /dev/null, stdout
 * and stderr appended to `logFile`. The CLI keeps no handle on it (the
 * intermediate `setsid` exits at once), so the CLI can exit while the box
 * lives on. The returned ref is dead (empty start time) when the process
 * exited immediately.
 */
export async function startDetached(argv: readonly string[], logFile: string): Promise<ProcRef> {
  let pid: number;
  try {
    pid = await spawnDetached(argv, logFile);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw e;
    throw new CrabboxError(
      "provider",
      "local_spawn_failed",
      `could not start ${argv[0]}: ${(e as Error).message}`,
    );
  }
  return { pid, startTime: procStartTime(pid) ?? "" };
}

/** Run a short command; throws a provider error with its stderr on failure. */
export async function run(cmd: string, args: string[], what: string): Promise<string> {
  const out = await output(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" });
  const dec = new TextDecoder();
  if (!out.success) {
    throw new CrabboxError(
      "provider",
      "local_command_failed",
      `${what} failed (${cmd} ${args.join(" ")}): ${dec.decode(out.stderr).trim()}`,
    );
  }
  return dec.decode(out.stdout);
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}

function hexIp(ip: string): string {
  return ip.split(".").reverse().map((o) => Number(o).toString(16).toUpperCase().padStart(2, "0"))
    .join("");
}

/** True when `/proc/<pid>/net/tcp` (the pid's network namespace) has a listener on ip:port. */
function listening(pid: number, ip: string, port: number): boolean {
  let table: string;
  try {
    table = Deno.readTextFileSync(`/proc/${pid}/net/tcp`);
  } catch {
    return false;
  }
  const local = `${hexIp(ip)}:${hexPort(port)}`;
  return table.split("\n").some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === local && f[3] === "0A";
  });
}

/** The last `lines` lines of a file (`""` when it cannot be read). */
export async function tailFile(path: string, lines = 5): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim().split("\n").slice(-lines).join(" | ");
  } catch {
    return "";
  }
}

/** Wait until `ref` listens on ip:port in its namespace; false when it died or timed out. */
export async function waitListening(
  ref: ProcRef,
  ip: string,
  port: number,
  comm: string,
): Promise<boolean> {
  const deadline = Date.now() + LISTEN_TIMEOUT_MS;
  let delay = 5;
  while (Date.now() < deadline) {
    if (!procAlive(ref)) return false;
    if (procComm(ref.pid) === comm && listening(ref.pid, ip, port)) return true;
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
  return false;
}

/** Send SIGKILL; a process that is already gone is fine. */
export function killPid(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // gone already
  }
}

/** Kill a recorded process (and, for session leaders, its process group) if it still matches. */
export function killRef(ref: ProcRef | undefined, group: boolean): void {
  if (!ref || !procAlive(ref)) return;
  if (group) killPid(-ref.pid);
  killPid(ref.pid);
}

/** Wait until none of `pids` is alive, at most `timeoutMs`. */
export async function waitGone(pids: readonly number[], timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some((p) => procStartTime(p) !== undefined) && Date.now() < deadline) {
    await sleep(10);
  }
}
