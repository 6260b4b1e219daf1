/**
 * Lease identity for providers without key/value labels (RunPod, Semaphore):
 * the resource name `crabbox-<slug>-<lease hex>` plus the reserved labels
 * carried as environment variables `CRABBOX_LABEL_<KEY>`, and the strict
 * parse back. A resource whose name and environment disagree, or whose
 * values are not valid labels, is not a crabbox lease.
 *
 * @module
 */

import {
  decodeLabels,
  isValidLabelKey,
  isValidLabelValue,
  type Labels,
} from "../../lib/core/labels.ts";

/** Prefix of the environment variables that carry reserved labels. */
export const LABEL_ENV_PREFIX = "CRABBOX_LABEL_";

const NAME = /^crabbox-([a-z0-9](?:[a-z0-9-]{0,39}[a-z0-9])?)-([0-9a-f]{12})$/;

/**
 * Resource name of a lease: `crabbox-<slug>-<lease hex>` (at most 62 characters).
 *
 * @example
 * ```ts
 * import { leaseResourceName } from "./lease_identity.ts";
 * leaseResourceName({ slug: "api", leaseId: "cbx-0123456789ab" }); // "crabbox-api-0123456789ab"
 * ```
 */
export function leaseResourceName(spec: { slug: string; leaseId: string }): string {
  return `crabbox-${spec.slug}-${spec.leaseId.slice(4)}`;
}

/**
 * Slug and lease id of a resource name; `undefined` unless it is exactly
 * `crabbox-<slug>-<12 hex>`.
 *
 * @example
 * ```ts
 * import { parseLeaseResourceName } from "./lease_identity.ts";
 * parseLeaseResourceName("crabbox-api-0123456789ab"); // { slug: "api", leaseId: "cbx-0123456789ab" }
 * ```
 */
export function parseLeaseResourceName(
  name: string,
): { slug: string; leaseId: string } | undefined {
  const m = NAME.exec(name);
  return m ? { slug: m[1], leaseId: `cbx-${m[2]}` } : undefined;
}

/**
 * The reserved labels as environment variables.
 *
 * @example
 * ```ts
 * import { labelsToEnv } from "./lease_identity.ts";
 * labelsToEnv({ crabbox: "true", "crabbox-lease": "cbx-0123456789ab" });
 * // { CRABBOX_LABEL_CRABBOX: "true", CRABBOX_LABEL_CRABBOX_LEASE: "cbx-0123456789ab" }
 * ```
 */
export function labelsToEnv(labels: Labels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    out[`${LABEL_ENV_PREFIX}${k.toUpperCase().replaceAll("-", "_")}`] = v;
  }
  return out;
}

/**
 * Labels back from environment variables (other variables are ignored);
 * `undefined` when any carried key or value is invalid or the result is not
 * a crabbox lease.
 *
 * @example
 * ```ts
 * import { labelsFromEnv } from "./lease_identity.ts";
 * labelsFromEnv({ CRABBOX_LABEL_CRABBOX: "true", CRABBOX_LABEL_CRABBOX_LEASE: "cbx-0123456789ab",
 *   CRABBOX_LABEL_SLUG: "api", PATH: "/bin" });
 * // { crabbox: "true", "crabbox-lease": "cbx-0123456789ab", slug: "api" }
 * ```
 */
export function labelsFromEnv(env: Record<string, unknown>): Labels | undefined {
  const labels: Labels = {};
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith(LABEL_ENV_PREFIX)) continue;
    const key = k.slice(LABEL_ENV_PREFIX.length).toLowerCase().replaceAll("_", "-");
    if (typeof v !== "string" || !isValidLabelKey(key) || !isValidLabelValue(v)) return undefined;
    labels[key] = v;
  }
  return decodeLabels(labels) ? labels : undefined;
}

/**
 * The labels of a named resource when its name and environment agree on slug
 * and lease id; `undefined` otherwise (not ours, or tampered with).
 *
 * @example
 * ```ts
 * import { identityOf, labelsToEnv } from "./lease_identity.ts";
 * const labels = { crabbox: "true", "crabbox-lease": "cbx-0123456789ab", slug: "api" };
 * identityOf("crabbox-api-0123456789ab", labelsToEnv(labels)); // labels
 * identityOf("crabbox-db-0123456789ab", labelsToEnv(labels)); // undefined
 * ```
 */
export function identityOf(name: string, env: Record<string, unknown>): Labels | undefined {
  const byName = parseLeaseResourceName(name);
  const labels = labelsFromEnv(env);
  const facts = decodeLabels(labels);
  if (!byName || !labels || !facts) return undefined;
  if (facts.leaseId !== byName.leaseId || labels.slug !== byName.slug) return undefined;
  return labels;
}
