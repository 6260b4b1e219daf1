/**
 * A lease of crew `t1` for the mesh unit tests: a fresh id each call, an
 * SSH target on a local-provider loopback address, active.
 *
 * @example
 * ```ts
 * import { testLease } from "./_lease.ts";
 * testLease("api", "local", [8080], { state: "creating" });
 * ```
 */

import type { Lease } from "../../lib/lease/claims.ts";

let seq = 0;

/** A lease of crew `t1` with `slug`, `provider` and `expose`, then `extra` over it. */
export function testLease(
  slug: string,
  provider: string,
  expose: number[],
  extra: Partial<Lease> = {},
): Lease {
  const id = `cbx-${(++seq).toString(16).padStart(12, "0")}`;
  return {
    id,
    provider,
    providerId: id,
    crew: "t1",
    slug,
    role: slug,
    owner: "tester",
    labels: {},
    expose,
    ssh: { host: "127.77.0.2", port: 22, user: "root" },
    tailscale: false,
    createdAt: "2026-01-01T00:00:00Z",
    state: "active",
    ...extra,
  };
}
