/**
 * The reserved label set crabbox writes on every lease, and its decoding.
 *
 * Keys and values are valid on every provider: keys `^[a-z][a-z0-9-]{0,62}$`,
 * values `^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$`.
 *
 * @module
 */

import { exposeLabelValue, parseExposeLabel } from "./expose.ts";
import { isLeaseId, normalizeName, roleOf } from "./names.ts";
import { type Lifetime, LifetimeLabel, lifetimeLabels, readLifetime } from "./lifetime.ts";

/** Reserved label keys. */
export const LabelKey = {
  crabbox: "crabbox",
  lease: "crabbox-lease",
  crew: "crew",
  slug: "slug",
  role: "role",
  expose: "crabbox-expose",
  owner: "crabbox-owner",
  tailscale: "crabbox-tailscale",
  tailnetIpv4: "crabbox-tailnet-ipv4",
  expires: LifetimeLabel.expiresAt,
  idle: LifetimeLabel.idleTimeout,
  touched: LifetimeLabel.touchedAt,
} as const;

/** Labels as a plain string map. */
export type Labels = Record<string, string>;

const KEY = /^[a-z][a-z0-9-]{0,62}$/;
const VALUE = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$/;

/** True when `key` is a label key valid on every provider. */
export function isValidLabelKey(key: string): boolean {
  return KEY.test(key);
}

/** True when `value` is a label value valid on every provider. */
export function isValidLabelValue(value: string): boolean {
  return VALUE.test(value);
}

/** What the reserved labels describe. */
export interface LeaseLabelFacts {
  /** Lease id `cbx-<12 hex>`. */
  leaseId: string;
  /** Normalized crew name, if the lease is in a crew. */
  crew?: string;
  /** Normalized slug. */
  slug: string;
  /** Exposed ports. */
  expose?: readonly number[];
  /** Owner segment. */
  owner?: string;
  /** Whether the lease joins the tailnet. */
  tailscale?: boolean;
  /** The member's tailnet IPv4, once recorded (label `crabbox-tailnet-ipv4`). */
  tailnetIpv4?: string;
  /** Expiry, idle timeout and last use (unix seconds; see `lifetime.ts`). */
  lifetime?: Lifetime;
}

/**
 * Encode the reserved labels for a lease. Empty facts are omitted.
 *
 * @example
 * ```ts
 * import { encodeLabels } from "./labels.ts";
 * encodeLabels({ leaseId: "cbx-0123456789ab", crew: "pr-42", slug: "db", expose: [5432] });
 * // { crabbox: "true", "crabbox-lease": "cbx-0123456789ab", crew: "pr-42", slug: "db", role: "db", "crabbox-expose": "5432" }
 * ```
 */
export function encodeLabels(facts: LeaseLabelFacts): Labels {
  const labels: Labels = { [LabelKey.crabbox]: "true", [LabelKey.lease]: facts.leaseId };
  if (facts.crew) labels[LabelKey.crew] = facts.crew;
  labels[LabelKey.slug] = facts.slug;
  labels[LabelKey.role] = roleOf(facts.slug);
  if (facts.expose && facts.expose.length > 0) {
    labels[LabelKey.expose] = exposeLabelValue(facts.expose);
  }
  if (facts.owner) labels[LabelKey.owner] = facts.owner;
  if (facts.tailscale) labels[LabelKey.tailscale] = "true";
  if (facts.lifetime) Object.assign(labels, lifetimeLabels(facts.lifetime));
  return labels;
}

/**
 * Decode the reserved labels; returns `undefined` when the labels are not a
 * crabbox lease. Junk in the expose label is ignored.
 *
 * @example
 * ```ts
 * import { decodeLabels } from "./labels.ts";
 * decodeLabels({ crabbox: "true", "crabbox-lease": "cbx-0123456789ab", slug: "api" })?.slug; // "api"
 * ```
 */
export function decodeLabels(labels: Labels | undefined): LeaseLabelFacts | undefined {
  if (!labels || labels[LabelKey.crabbox] !== "true") return undefined;
  const leaseId = labels[LabelKey.lease] ?? "";
  if (!isLeaseId(leaseId)) return undefined;
  const crew = normalizeName(labels[LabelKey.crew] ?? "");
  return {
    leaseId,
    crew: crew || undefined,
    slug: normalizeName(labels[LabelKey.slug] ?? "") || leaseId,
    expose: parseExposeLabel(labels[LabelKey.expose]),
    owner: labels[LabelKey.owner] || undefined,
    tailscale: labels[LabelKey.tailscale] === "true",
    tailnetIpv4: tailnetIpv4FromLabel(labels[LabelKey.tailnetIpv4]),
    lifetime: readLifetime(labels),
  };
}

const IPV4_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4_LABEL = new RegExp(`^${IPV4_OCTET}(-${IPV4_OCTET}){3}$`);

/**
 * A tailnet IPv4 as a label value (dots are not allowed in label values on
 * every provider, so they become `-`); `undefined` for anything else.
 *
 * @example
 * ```ts
 * import { tailnetIpv4Label } from "./labels.ts";
 * tailnetIpv4Label("100.64.0.7"); // "100-64-0-7"
 * ```
 */
export function tailnetIpv4Label(ip: string): string | undefined {
  const v = ip.replaceAll(".", "-");
  return IPV4_LABEL.test(v) ? v : undefined;
}

/**
 * The tailnet IPv4 back from its label value; `undefined` for junk.
 *
 * @example
 * ```ts
 * import { tailnetIpv4FromLabel } from "./labels.ts";
 * tailnetIpv4FromLabel("100-64-0-7"); // "100.64.0.7"
 * ```
 */
export function tailnetIpv4FromLabel(value: string | undefined): string | undefined {
  return value !== undefined && IPV4_LABEL.test(value) ? value.replaceAll("-", ".") : undefined;
}
