/**
 * A released tailnet member leaves the tailnet: its device is deleted
 * through the Tailscale API when a key or OAuth client is configured, else
 * `tailscale logout` runs on the box over ssh before it is deleted. Bounded,
 * best effort, and reported: a failure never blocks the release.
 *
 * @module
 */

import type { Lease } from "./claims.ts";
import type { Runtime } from "../runtime.ts";
import { crewTag } from "../core/names.ts";
import { tailnetClientFromEnv } from "../tailnet/api.ts";
import { tailnetCredentialsFrom } from "../tailnet/config.ts";
import { deleteDevice, devicesWithTag, listDevices } from "../tailnet/devices.ts";
import { runOnLease } from "./exec.ts";

/** How long leaving the tailnet may take before the release goes on. */
export const LEAVE_TIMEOUT_MS = 20_000;

/** What leaving the tailnet did, as one line for the operator. */
export type LeaveReport = string;

function who(lease: Lease): string {
  return `${lease.crew ? `${lease.crew}/` : ""}${lease.slug}`;
}

async function viaApi(rt: Runtime, lease: Lease, signal: AbortSignal): Promise<LeaveReport> {
  const client = tailnetClientFromEnv(rt.env, { fetch: rt.fetch, signal });
  let ids: string[] = lease.tailnet?.nodeId ? [lease.tailnet.nodeId] : [];
  if (ids.length === 0 && lease.crew !== undefined) {
    const hostname = lease.tailnet?.hostname ?? `crabbox-${lease.slug}`;
    const tag = crewTag(lease.owner, lease.crew);
    ids = devicesWithTag(await listDevices(client), tag, hostname).map((d) => d.nodeId || d.id);
  }
  if (ids.length === 0) return `tailnet: ${who(lease)}: no device found to remove`;
  const done: string[] = [];
  for (const id of ids) done.push(`${id} ${await deleteDevice(client, id)}`);
  return `tailnet: ${who(lease)}: device ${done.join(", ")}`;
}

async function viaLogout(rt: Runtime, lease: Lease, signal: AbortSignal): Promise<LeaveReport> {
  if (!lease.ssh) return `tailnet: ${who(lease)}: no API credentials and no ssh: device left`;
  const r = await runOnLease(lease, ["tailscale", "logout"], {
    home: rt.home,
    env: rt.env,
    process: rt.process,
    signal,
  });
  return r.code === 0
    ? `tailnet: ${who(lease)}: logged out (tailscale logout over ssh)`
    : `tailnet: ${who(lease)}: tailscale logout failed (exit ${r.code}): ${
      r.stderr.trim().split("\n").pop() ?? ""
    }`;
}

/**
 * Take a released member off the tailnet (see the module doc). Resolves the
 * report line (also logged); never throws.
 *
 * @example
 * ```ts
 * import { leaveTailnet } from "./tailnet_leave.ts";
 * // const line = await leaveTailnet(rt, lease);
 * ```
 */
export async function leaveTailnet(rt: Runtime, lease: Lease): Promise<LeaveReport | undefined> {
  if (!lease.tailscale) return undefined;
  const timeout = AbortSignal.timeout(LEAVE_TIMEOUT_MS);
  const signal = rt.signal ? AbortSignal.any([timeout, rt.signal]) : timeout;
  const creds = tailnetCredentialsFrom(rt.env);
  let line: LeaveReport;
  try {
    if (creds.auth !== "none" && creds.problem === undefined) {
      try {
        line = await viaApi(rt, lease, signal);
      } catch (e) {
        const why = (e as Error).message.split("\n")[0];
        line = `tailnet: ${who(lease)}: API removal failed (${why}); ` +
          (await viaLogout(rt, lease, signal));
      }
    } else {
      line = await viaLogout(rt, lease, signal);
    }
  } catch (e) {
    line = timeout.aborted
      ? `tailnet: ${who(lease)}: leaving the tailnet timed out after ${LEAVE_TIMEOUT_MS / 1000}s`
      : `tailnet: ${who(lease)}: leaving the tailnet failed: ${
        (e as Error).message.split("\n")[0]
      }`;
  }
  rt.log(line);
  return line;
}
