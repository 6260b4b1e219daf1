/**
 * Leases as the CLI's `--json` prints them (warmup, list, status, crew up,
 * touch): one shape, documented in the README.
 *
 * @module
 */

import type { Lease } from "../lib/lease/leases.ts";
import { readLifetime } from "../lib/core/lifetime.ts";
import { readShape } from "../lib/core/shape.ts";

/** The lifetime of a lease as JSON: unix seconds / seconds, `null` when none. */
export function lifetimeJson(l: Lease) {
  const t = readLifetime(l.labels);
  return {
    expiresAt: t.expiresAt ?? null,
    idleTimeout: t.idleTimeout ?? null,
    touchedAt: t.touchedAt ?? null,
  };
}

/** A lease as `--json` prints it (warmup, list, status). */
export function leaseJson(l: Lease) {
  return {
    id: l.id,
    crew: l.crew ?? null,
    slug: l.slug,
    role: l.role,
    provider: l.provider,
    providerId: l.providerId,
    state: l.state,
    expose: l.expose,
    ssh: l.ssh ? { host: l.ssh.host, port: l.ssh.port, user: l.ssh.user } : null,
    tailscale: l.tailscale,
    tailnet: l.tailnet ?? null,
    owner: l.owner,
    createdAt: l.createdAt,
    lifetime: lifetimeJson(l),
    shape: shapeJson(l),
    labels: l.labels,
  };
}

/** The shape of a lease as JSON (label-safe values; `null` when not set). */
export function shapeJson(l: Lease) {
  const s = readShape(l.labels);
  return {
    type: s.type ?? null,
    location: s.location ?? null,
    image: s.image ?? null,
    arch: s.arch ?? null,
  };
}
