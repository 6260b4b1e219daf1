/**
 * Exposing one more port of a crew member: recorded in its claim and labels,
 * and forwarded at once on the member's live ControlMaster when `crew
 * connect` holds its tunnel.
 *
 * @module
 */

import { parseExposedPorts, validatePort } from "../core/expose.ts";
import { encodeLabels, LabelKey } from "../core/labels.ts";
import { updateClaim } from "../lease/claims.ts";
import type { Lease } from "../lease/leases.ts";
import { type CrabboxOptions, resolveRuntime } from "../runtime.ts";
import { addLiveForward } from "./live.ts";

/**
 * Add a port to a lease's exposed ports (recorded in its claim and labels).
 * When `crew connect` holds the member's tunnel, the new port is forwarded on
 * the live ControlMaster (`ssh -O forward`) without restarting it. Returns
 * the updated lease.
 *
 * @example
 * ```ts
 * import { exposePort } from "@crabbox/crabbox";
 * import { findLease } from "@crabbox/crabbox";
 * await exposePort(await findLease("pr-42/api"), 9090);
 * ```
 */
export async function exposePort(
  lease: Lease,
  port: number,
  options: CrabboxOptions = {},
): Promise<Lease> {
  validatePort(port);
  const rt = await resolveRuntime(options);
  const expose = [...new Set([...lease.expose, port])].sort((a, b) => a - b);
  parseExposedPorts(expose.map(String));
  const updated = await updateClaim(rt.home, lease.id, (c) => {
    const base = c ?? lease;
    const labels = encodeLabels({
      leaseId: base.id,
      crew: base.crew,
      slug: base.slug,
      expose,
      owner: base.owner,
      tailscale: base.tailscale,
    });
    return {
      ...base,
      expose,
      labels: { ...base.labels, [LabelKey.expose]: labels[LabelKey.expose] },
    };
  });
  const result = updated ?? { ...lease, expose };
  if (result.crew !== undefined && !lease.expose.includes(port)) {
    await addLiveForward(rt.home, result, port, options);
  }
  return result;
}
