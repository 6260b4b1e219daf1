/**
 * The HTTP `Retry-After` header, as every API client here reads it.
 *
 * @module
 */

/**
 * Parses a `Retry-After` header (seconds or an HTTP date) into milliseconds
 * from `now`; undefined when absent or unparsable.
 *
 * @example
 * ```ts
 * import { retryAfterMs } from "./retry_after.ts";
 * retryAfterMs("2", 0); // 2000
 * ```
 */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  const v = header.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
