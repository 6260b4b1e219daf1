/**
 * The operator's own address, for firewall rules that open SSH only to the
 * machine running crabbox: CIDR parsing (IPv4 and IPv6) and detection through
 * a bounded HTTPS call to a what-is-my-IP service whose answer must be one
 * address (→ `/32` or `/128`).
 *
 * @module
 */

import { isIpv4 } from "./common.ts";

/** The default what-is-my-IP service (answers the caller's address as plain text). */
export const DEFAULT_IP_ECHO_URL = "https://checkip.amazonaws.com/";

/**
 * Whether `value` is an IPv6 address (no zone, no brackets).
 *
 * @example
 * ```ts
 * import { isIpv6 } from "./operator_address.ts";
 * isIpv6("2001:db8::1"); // true
 * isIpv6("203.0.113.7"); // false
 * ```
 */
export function isIpv6(value: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(value) || !value.includes(":")) return false;
  try {
    return new URL(`http://[${value}]/`).hostname !== "";
  } catch {
    return false;
  }
}

/**
 * A CIDR block (`203.0.113.0/24`, `2001:db8::/32`) as given, or `undefined`
 * when it is not one.
 *
 * @example
 * ```ts
 * import { parseCidr } from "./operator_address.ts";
 * parseCidr("203.0.113.7/32"); // "203.0.113.7/32"
 * parseCidr("203.0.113.7"); // undefined
 * ```
 */
export function parseCidr(value: string): string | undefined {
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(value.trim());
  if (!m) return undefined;
  const bits = Number(m[2]);
  const ip = m[1];
  if (isIpv6(ip)) return bits <= 128 ? `${ip.toLowerCase()}/${bits}` : undefined;
  return isIpv4(ip) && bits <= 32 ? `${ip}/${bits}` : undefined;
}

/** Whether a CIDR block is IPv6. */
export function isIpv6Cidr(cidr: string): boolean {
  return cidr.includes(":");
}

/**
 * The host CIDR of a what-is-my-IP answer: exactly one address (surrounding
 * whitespace allowed) → `/32` or `/128`; anything else → `undefined`.
 *
 * @example
 * ```ts
 * import { hostCidrOf } from "./operator_address.ts";
 * hostCidrOf("203.0.113.7\n"); // "203.0.113.7/32"
 * hostCidrOf("<html>"); // undefined
 * ```
 */
export function hostCidrOf(answer: string): string | undefined {
  const ip = answer.trim();
  if (ip.length > 45) return undefined;
  if (isIpv6(ip)) return `${ip.toLowerCase()}/128`;
  return isIpv4(ip) ? `${ip}/32` : undefined;
}

/** What {@link detectOperatorCidr} needs. */
export interface DetectOptions {
  /** The what-is-my-IP URL. */
  url: string;
  /** fetch. */
  fetch: typeof fetch;
  /** Per-attempt bound in ms (default 3000), for the answer and its body. */
  timeoutMs?: number;
  /** Attempts (default 2: one try, one retry). */
  attempts?: number;
  /** Abort signal (rethrown as is). */
  signal?: AbortSignal;
}

/** The operator's CIDR, or why it could not be found. */
export type DetectResult = { cidr: string } | { problem: string };

/**
 * Ask the what-is-my-IP service for this machine's public address, bounded:
 * at most `attempts` calls of at most `timeoutMs` each; redirects refused.
 *
 * @example
 * ```ts ignore
 * import { detectOperatorCidr } from "./operator_address.ts";
 * await detectOperatorCidr({ url: "https://checkip.amazonaws.com/", fetch });
 * // { cidr: "203.0.113.7/32" }
 * ```
 */
export async function detectOperatorCidr(o: DetectOptions): Promise<DetectResult> {
  const timeoutMs = o.timeoutMs ?? 3000;
  const attempts = o.attempts ?? 2;
  let problem = "no answer";
  for (let attempt = 0; attempt < attempts; attempt++) {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
    try {
      const res = await o.fetch(o.url, { signal, redirect: "error" });
      const text = await res.text();
      if (!res.ok) {
        problem = `HTTP ${res.status}`;
        continue;
      }
      const cidr = hostCidrOf(text);
      if (cidr) return { cidr };
      return { problem: "the answer is not one IP address" };
    } catch (e) {
      if (o.signal?.aborted) throw e;
      problem = timeout.aborted ? `no answer within ${timeoutMs} ms` : "unreachable";
    }
  }
  return { problem };
}
