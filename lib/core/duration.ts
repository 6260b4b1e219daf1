/**
 * Durations as the CLI, config and crew files write them (`90s`, `10m`,
 * `1h30m`, `2d`, plain digits = seconds), parsed by one grammar, and rendered
 * back short.
 *
 * @module
 */

import { usageError } from "./errors.ts";

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };
const DURATION = /^(?:[0-9]{1,7}|(?:[0-9]{1,7}[smhd])+)$/;
const PART = /([0-9]{1,7})([smhd])/g;
/** The longest duration {@link parseSeconds} accepts by default: 365 days. */
export const MAX_DURATION_SECONDS = 365 * 86400;

/** Bounds of {@link parseSeconds}, in seconds. */
export interface DurationBounds {
  /** Smallest accepted value (default 0, which then means "none"). */
  min?: number;
  /** Largest accepted value (default {@link MAX_DURATION_SECONDS}). */
  max?: number;
}

/**
 * Parse a duration to whole seconds: plain digits (seconds), or one or more
 * `<digits><unit>` parts with units `s`, `m`, `h`, `d`, each at most once,
 * largest first (`1h30m`). Outside `bounds`, a negative or fractional value,
 * an unknown unit or anything else is a usage error (`bad_duration`) naming
 * `what` (the flag or key) and the value.
 *
 * @example
 * ```ts
 * import { parseSeconds } from "./duration.ts";
 * parseSeconds("1h30m", "--ttl"); // 5400
 * parseSeconds("0", "--idle-timeout"); // 0
 * ```
 */
export function parseSeconds(text: string, what: string, bounds: DurationBounds = {}): number {
  const min = bounds.min ?? 0;
  const max = bounds.max ?? MAX_DURATION_SECONDS;
  const s = String(text).trim().toLowerCase();
  const shown = JSON.stringify(text.length > 40 ? text.slice(0, 40) + "…" : text);
  const bad = (why: string) =>
    usageError(
      "bad_duration",
      `${what} ${shown} ${why}`,
      `write a duration like 90s, 10m, 1h30m or 2d (${describeBounds(min, max)})`,
    );
  if (!DURATION.test(s)) throw bad("is not a duration");
  let total = 0;
  if (/^[0-9]+$/.test(s)) total = Number(s);
  else {
    let lastUnit = Infinity;
    for (const [, digits, unit] of s.matchAll(PART)) {
      const size = UNIT_SECONDS[unit];
      if (size >= lastUnit) throw bad("repeats a unit or has units out of order");
      lastUnit = size;
      total += Number(digits) * size;
    }
  }
  if (total < min || total > max) throw bad(`is out of range (${describeBounds(min, max)})`);
  return total;
}

function describeBounds(min: number, max: number): string {
  return `${min === 0 ? "0 = none" : `at least ${formatDuration(min)}`}, at most ${
    formatDuration(max)
  }`;
}

/**
 * A command-line wait in milliseconds (`--wait-timeout 10m`): a duration of
 * 1 s to 24 h (see {@link parseSeconds}).
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * parseDuration("10m", "--wait-timeout"); // 600000
 * parseDuration("90", "--wait-timeout"); // 90000
 * ```
 */
export function parseDuration(text: string, flag: string): number {
  return parseSeconds(text, flag, { min: 1, max: 86400 }) * 1000;
}

/**
 * Render seconds short and readable: `45s`, `42m`, `1h05m`, `2d3h`; 0 → `0s`.
 * Negative values are rendered by their magnitude.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./duration.ts";
 * formatDuration(2520); // "42m"
 * formatDuration(3900); // "1h05m"
 * ```
 */
export function formatDuration(seconds: number): string {
  const s = Math.abs(Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) {
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return m === 0 ? `${h}h` : `${h}h${String(m).padStart(2, "0")}m`;
  }
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  return h === 0 ? `${d}d` : `${d}d${h}h`;
}
