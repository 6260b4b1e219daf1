/**
 * Ordering of text the way every machine agrees on: by UTF-16 code units.
 *
 * `String.prototype.localeCompare` would follow the user's locale and, on
 * its first call in a process, load an ICU collator (~7 ms of a CLI's
 * start-up, measured); names, ids and ISO dates sort the same either way.
 *
 * @module
 */

/**
 * Compare two strings by UTF-16 code units: negative, 0 or positive, for
 * `Array.prototype.sort`. Locale-independent: `"B" < "a"`, `"-" < "0" < "a"`.
 *
 * @example
 * ```ts
 * import { compareText } from "./order.ts";
 * ["db", "api-2", "api"].sort(compareText); // ["api", "api-2", "db"]
 * ```
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
