/**
 * Readiness probing of an SSH-mesh tunnel: a TCP probe through a local
 * forward, the parts of ssh's `-E` log that decide what a probe saw, and the
 * `ssh -O check` question "does this ControlMaster answer".
 *
 * @module
 */

const OPEN_FAILED = /channel \d+: open failed: (.*)$/;

/** ssh's log line when a `-L` listener's local port is taken; group 1 is the port. */
export const ADDR_IN_USE = /bind \[?127\.0\.0\.1\]?:(\d+): Address already in use/;

/** ssh log lines of failures that retrying will not fix. */
export const PERMANENT =
  /Permission denied|Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No route to host|Could not resolve hostname/;

/** The reasons of every "channel N: open failed" line of an ssh log, in order. */
export function openFailures(log: string): string[] {
  return log.split(/\r?\n/)
    .map((l) => OPEN_FAILED.exec(l)?.[1]).filter((x): x is string => x !== undefined);
}

/** The text of a log file from byte `from` on (`""` when it cannot be read). */
export async function readLog(path: string, from = 0): Promise<string> {
  try {
    const bytes = await Deno.readFile(path);
    return new TextDecoder().decode(bytes.subarray(from));
  } catch {
    return "";
  }
}

/** The size of a log file in bytes (0 when it cannot be read). */
export async function logSize(path: string): Promise<number> {
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

/**
 * Connect to 127.0.0.1:port, giving up after `withinMs`: `refused` when
 * nothing listens, `stalled` when the connect does not complete in time — a
 * listener that does not accept (e.g. a stuck ssh) whose accept queue is
 * full makes the kernel drop new SYNs, and a connect without a bound would
 * wait out every SYN retry (about two minutes) before it fails.
 */
export async function connectLocal(
  port: number,
  withinMs: number,
): Promise<Deno.TcpConn | "refused" | "stalled"> {
  const connecting = new AbortController();
  const timer = setTimeout(() => connecting.abort(), withinMs);
  try {
    return await Deno.connect({ hostname: "127.0.0.1", port, signal: connecting.signal });
  } catch {
    return connecting.signal.aborted ? "stalled" : "refused";
  } finally {
    clearTimeout(timer);
  }
}

/** What a probe through a forward saw (see {@link probeForward}). */
export type ProbeResult = "refused" | "stalled" | "data" | "closed" | "open";

/**
 * Connect through a forward and classify what happens within `settleMs`
 * (connect and first read together): bytes arrive (`data`: the channel is
 * open), the connection is closed (`closed`: a service that hung up, or ssh
 * after an open failure — the ssh log decides), it stays open (`open`),
 * nothing listens (`refused`), or the connect does not complete (`stalled`,
 * see {@link connectLocal}).
 */
export async function probeForward(port: number, settleMs: number): Promise<ProbeResult> {
  const start = Date.now();
  const conn = await connectLocal(port, settleMs);
  if (typeof conn === "string") return conn;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const buf = new Uint8Array(256);
    const left = Math.max(0, settleMs - (Date.now() - start));
    return await Promise.race([
      conn.read(buf).then(
        (n) => (n === null ? "closed" : "data") as ProbeResult,
        () => "closed" as ProbeResult,
      ),
      new Promise<ProbeResult>((r) => (timer = setTimeout(() => r("open"), left))),
    ]);
  } finally {
    clearTimeout(timer);
    try {
      conn.close(); // also rejects the read still pending when the window closed
    } catch { /* already closed */ }
  }
}
