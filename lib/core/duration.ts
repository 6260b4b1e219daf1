/**
 * Durations given on the command line (`--wait-timeout 10m`).
 *
 * @module
 */

import { usageError } from "./errors.ts";

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parse a duration: digits with an optional unit `s`, `m` or `h` (plain
 * digits are seconds), at least 1 s and at most 24 h. Anything else is a
 * usage error naming the flag and the value.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * parseDuration("10m", "--wait-timeout"); // 600000
 * parseDuration("90", "--wait-timeout"); // 90000
 * ```
 */
export function parseDuration(text: string, flag: string): number {
  const m = /^([0-9]{1,6})([smh]?)$/.exec(text.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] || "s"] : NaN;
  if (!m || !(ms >= 1000 && ms <= 24 * 3_600_000)) {
    throw usageError(
      "bad_duration",
      `${flag} ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + "…" : text)} ` +
        `must be a duration like 90s, 10m or 1h (1s to 24h)`,
    );
  }
  return ms;
}
