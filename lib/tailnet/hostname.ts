/**
 * The tailnet host name of a member: the `tailscale.hostname` template
 * (default `crabbox-{slug}`; placeholders `{crew}`, `{slug}`, `{owner}`)
 * rendered and checked against DNS-label rules before anything is created.
 * The parts around `{slug}` are what the `.cbx` refresher strips from a
 * peer's host name to get its slug back.
 *
 * @module
 */

import { usageError } from "../core/errors.ts";

/** The default template. */
export const DEFAULT_HOSTNAME_TEMPLATE = "crabbox-{slug}";

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const AFFIX = /^[a-z0-9-]*$/;

/** A rendered host name and the literal text around the slug in it. */
export interface TailnetHostname {
  /** The host name (`tailscale up --hostname`). */
  hostname: string;
  /** Text before the slug (`crabbox-` by default). */
  prefix: string;
  /** Text after the slug (empty by default). */
  suffix: string;
}

/**
 * Render the host name template for a member. The result must be one DNS
 * label (lowercase letters, digits and `-`, not at either end, at most 63
 * characters) and the template must hold `{slug}` exactly once; else a usage
 * error naming the template and the rendered value.
 *
 * @example
 * ```ts
 * import { renderTailnetHostname } from "./hostname.ts";
 * renderTailnetHostname("{crew}-{slug}", { crew: "pr-42", slug: "api", owner: "alice" });
 * // { hostname: "pr-42-api", prefix: "pr-42-", suffix: "" }
 * ```
 */
export function renderTailnetHostname(
  template: string | undefined,
  values: { crew?: string; slug: string; owner: string },
): TailnetHostname {
  const t = template ?? DEFAULT_HOSTNAME_TEMPLATE;
  const fill = (s: string) =>
    s.replaceAll("{crew}", values.crew ?? "").replaceAll("{owner}", values.owner);
  const parts = t.split("{slug}");
  if (parts.length !== 2) {
    throw usageError(
      "bad_tailscale_hostname",
      `tailscale.hostname ${JSON.stringify(t)} must contain {slug} exactly once`,
    );
  }
  const prefix = fill(parts[0]);
  const suffix = fill(parts[1]);
  const hostname = `${prefix}${values.slug}${suffix}`;
  if (!DNS_LABEL.test(hostname) || !AFFIX.test(prefix) || !AFFIX.test(suffix)) {
    throw usageError(
      "bad_tailscale_hostname",
      `tailscale.hostname ${JSON.stringify(t)} gives ${
        JSON.stringify(hostname.slice(0, 80))
      } for ${values.slug}, which is not a DNS label (a-z, 0-9 and -, not at either end, at most 63 characters)`,
    );
  }
  return { hostname, prefix, suffix };
}
