/**
 * The warm-up session of a member's master. OpenSSH's sshd sets
 * `TCP_NODELAY` on a connection only once a session has run on it; a crew
 * member's master is a bare `ssh -N`, so until then every new channel through
 * its forwards pays sshd's Nagle: the channel-open confirmation and the
 * service's first bytes go out as two small writes, and the second waits for
 * the client's delayed ACK (~40 ms on about half the channels). One no-op
 * session through the master once the member is ready — `exit 0` through
 * the login shell, which every box has — turns it on for the rest of that
 * connection, direct or proxied alike.
 *
 * @module
 */

import { runBounded } from "../core/async.ts";
import { runSsh, sshCommandArgs } from "../ssh/args.ts";
import type { Ctx, Tunnel } from "./tunnel.ts";

/** How long one warm-up session may run before it is stopped (ms). */
export const WARM_TIMEOUT_MS = 15_000;

/** How many warm-up sessions of one mesh run at once (a large crew does not start all at once). */
export const WARM_CONCURRENCY = 8;

/** The remote command: understood by every login shell, needs no program on the box. */
const WARM_COMMAND = { shell: "exit 0" } as const;

/**
 * argv (without the program) of a tunnel's warm-up session: `exit 0` as a
 * session through the tunnel's live ControlMaster (`ControlMaster=no`).
 *
 * @example
 * ```ts
 * import { warmArgs } from "./warm.ts";
 * import type { Tunnel } from "./tunnel.ts";
 * declare const t: Tunnel;
 * warmArgs(t); // [..., "-o", "ControlPath=<its master>", "--", "root@127.77.0.2", "exit 0"]
 * ```
 */
export function warmArgs(t: Tunnel): string[] {
  return sshCommandArgs(t.member.lease.ssh!, WARM_COMMAND, {
    knownHostsFile: t.knownHostsFile,
    control: { master: "no", path: t.controlPath },
  });
}

/**
 * Run a tunnel's warm-up session once, bounded by `timeoutMs`. Never
 * rejects: a failure is at most one `options.log` line (none when the
 * tunnel is stopping or its ssh is gone — the supervisor reports that), a
 * success one `onTiming` `warm` entry. Skipped when the tunnel is not up.
 */
export async function warmTunnel(ctx: Ctx, t: Tunnel, timeoutMs = WARM_TIMEOUT_MS): Promise<void> {
  const child = t.child;
  if (t.stopping || t.state !== "up" || !child || t.exitStatus) return;
  const started = performance.now();
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), timeoutMs);
  let failure: string | undefined;
  try {
    const r = await runSsh(warmArgs(t), {
      env: ctx.env,
      process: ctx.rt.process,
      signal: stop.signal,
    });
    if (r.code !== 0) {
      failure = stop.signal.aborted
        ? `no answer within ${Math.round(timeoutMs / 1000)} s`
        : r.stderr.trim().split("\n").at(-1) || `ssh exited with status ${r.code}`;
    }
  } catch (e) {
    failure = (e as Error).message;
  } finally {
    clearTimeout(timer);
  }
  if (failure === undefined) {
    try {
      ctx.options.onTiming?.({
        phase: "warm",
        ms: performance.now() - started,
        peer: t.member.name,
      });
    } catch { /* an observer's bug must not break the mesh */ }
    return;
  }
  if (t.stopping || t.child !== child || t.exitStatus) return;
  ctx.options.log?.(
    `crew "${t.crew}": ${t.member.name}: warm-up session through its master failed (${failure}); new connections through its forwards may wait ~40 ms`,
  );
}

/**
 * Start the warm-up sessions of `tunnels` in the background, at most
 * {@link WARM_CONCURRENCY} at once; `ctx.warming` holds them until they end
 * (see {@link warmingDone}).
 */
export function warmInBackground(ctx: Ctx, tunnels: readonly Tunnel[]): void {
  const run = runBounded(tunnels, WARM_CONCURRENCY, (t) => warmTunnel(ctx, t)).then(() => {});
  ctx.warming.add(run);
  void run.finally(() => ctx.warming.delete(run));
}

/** Resolves once every warm-up session started through `ctx` has ended. */
export async function warmingDone(ctx: Ctx): Promise<void> {
  while (ctx.warming.size > 0) await Promise.all(ctx.warming);
}
