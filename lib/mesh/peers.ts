/**
 * Looking at a crew without changing it: its members with transport,
 * endpoint and planes (`crew peers`). Its forward table
 * (`crew connect --json`) is `describe.ts`.
 *
 * @module
 */

import { providerFeaturesOrNone } from "../runtime.ts";
import { refreshPendingTailnet } from "../lease/tailnet_refresh.ts";
import {
  memberTransport,
  providerPlanes,
  sshEndpoint,
  type Transport,
} from "../lease/transport.ts";
import { selectMembers } from "./forwards.ts";
import { type ConnectOptions, crewLeases, hasSshFeature } from "./plan.ts";
import { normalizeCrewName } from "../core/names.ts";
import { compareText } from "../core/order.ts";

/** One member as `crew peers` shows it. */
export interface PeerInfo {
  /** Peer name (disambiguated slug; the slug for leases outside the mesh). */
  peer: string;
  /** Slug. */
  slug: string;
  /** Lease id. */
  leaseId: string;
  /** Provider name. */
  provider: string;
  /** Primary transport. */
  transport: Transport;
  /** `ssh://host:port` (IPv6 bracketed), the tailnet address, or `""`. */
  endpoint: string;
  /** Exposed ports. */
  expose: number[];
  /** Planes the provider supports (`ssh`, `tailnet`). */
  planes: string[];
}

/**
 * Every member of a crew with provider, transport, endpoint, exposed ports
 * and the planes its provider supports, in peer-name order.
 *
 * @example
 * ```ts
 * import { crewPeers } from "@crabbox/crabbox";
 * for (const p of await crewPeers("pr-42")) console.log(p.peer, p.transport, p.endpoint);
 * ```
 */
export async function crewPeers(name: string, options: ConnectOptions = {}): Promise<PeerInfo[]> {
  const crew = normalizeCrewName(name);
  const leases = await refreshPendingTailnet(await crewLeases(crew, options), options);
  const features = (p: string) => providerFeaturesOrNone(options, p);
  const { members } = selectMembers(leases, hasSshFeature(options));
  const names = new Map(members.map((m) => [m.lease.id, m.name]));
  return leases.map((l) => {
    const f = features(l.provider);
    const transport = memberTransport(l, f);
    const endpoint = transport === "tailnet"
      ? (l.tailnet?.ipv4 ?? l.tailnet?.fqdn ?? "")
      : transport === "ssh"
      ? sshEndpoint(l) ?? ""
      : "";
    return {
      peer: names.get(l.id) ?? l.slug,
      slug: l.slug,
      leaseId: l.id,
      provider: l.provider,
      transport,
      endpoint,
      expose: [...l.expose],
      planes: providerPlanes(f),
    };
  }).sort((a, b) => compareText(a.peer, b.peer));
}
