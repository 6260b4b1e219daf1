/**
 * Provider errors never carry what crabbox sent: the parts of a request
 * (its JSON, form or query values of 16 characters or more, their lines and
 * words, and the text inside base64 values such as user data) are replaced
 * by `[request data]` in a failed answer before anything reads its message.
 * This holds whatever a secret looks like, so it does not depend on knowing
 * the secret's value or prefix.
 *
 * @module
 */

import { decodeBase64 } from "../../lib/core/base64.ts";

/** What replaces request data in an error answer. */
export const REQUEST_DATA_MARKER = "[request data]";

/** Shorter strings are not request data worth hiding (codes, sizes, regions). */
const MIN_FRAGMENT = 16;

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** The text inside a base64 string, when it is base64 of printable UTF-8. */
function base64Text(v: string): string | undefined {
  const s = v.replace(/\s+/g, "");
  if (s.length < MIN_FRAGMENT || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(s)) {
    return undefined;
  }
  const bytes = decodeBase64(s);
  if (!bytes) return undefined;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return CONTROL.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

/** Every string in a JSON value (object values and array items, not keys). */
function jsonStrings(v: unknown, out: string[]): void {
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => jsonStrings(x, out));
  else if (v !== null && typeof v === "object") {
    Object.values(v).forEach((x) => jsonStrings(x, out));
  }
}

/** The values of a request text: JSON strings, form/query values, else the text itself. */
function valuesOf(text: string): string[] {
  const t = text.trim();
  if (t.startsWith("{") || t.startsWith("[")) {
    try {
      const out: string[] = [];
      jsonStrings(JSON.parse(t), out);
      return out;
    } catch {
      // not JSON after all
    }
  }
  const query = t.startsWith("?") ? t.slice(1) : t;
  if (/^[^\s=&]+=[^\s&]*(&[^\s=&]+=[^\s&]*)*$/.test(query)) {
    return [...new URLSearchParams(query).values()];
  }
  return [t];
}

function addValue(v: string, out: Set<string>, depth: number): void {
  if (v.length < MIN_FRAGMENT) return;
  out.add(v);
  for (const line of v.split(/\r?\n/)) {
    if (line.trim().length >= MIN_FRAGMENT) out.add(line.trim());
  }
  for (const word of v.split(/[\s"'`=,;]+/)) {
    if (word.length >= MIN_FRAGMENT) out.add(word);
  }
  const decoded = depth < 2 ? base64Text(v) : undefined;
  if (decoded !== undefined) addValue(decoded, out, depth + 1);
}

/**
 * The fragments of request texts (bodies, query strings) that must never
 * appear in an error: each value of 16 characters or more, its lines and
 * words of that length, and the same for the text a base64 value encodes.
 *
 * @example
 * ```ts
 * import { requestFragments } from "./request_data.ts";
 * requestFragments(['{"user_data":"#cloud-config\\nTOKEN=hskey-auth-0123456789"}']);
 * // ["#cloud-config\nTOKEN=hskey-auth-0123456789", "TOKEN=hskey-auth-0123456789", "hskey-auth-0123456789"]
 * ```
 */
export function requestFragments(texts: readonly (string | undefined)[]): string[] {
  const out = new Set<string>();
  for (const text of texts) {
    if (!text) continue;
    for (const v of valuesOf(text)) addValue(v, out, 0);
    if (text.trim().length >= MIN_FRAGMENT) out.add(text.trim());
  }
  return [...out];
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** The forms a fragment can take inside an answer: raw, JSON-, XML- and URL-encoded. */
function encodings(f: string): string[] {
  return [
    ...new Set([
      f,
      JSON.stringify(f).slice(1, -1),
      xmlEscape(f),
      encodeURIComponent(f),
      new URLSearchParams({ v: f }).toString().slice(2),
    ]),
  ];
}

function replaceAll(text: string, sorted: readonly string[]): string {
  let out = text;
  for (const f of sorted) {
    for (const e of encodings(f)) if (out.includes(e)) out = out.replaceAll(e, REQUEST_DATA_MARKER);
  }
  return out;
}

function scrubJson(v: unknown, sorted: readonly string[]): unknown {
  if (typeof v === "string") return replaceAll(v, sorted);
  if (Array.isArray(v)) return v.map((x) => scrubJson(x, sorted));
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrubJson(x, sorted)]));
  }
  return v;
}

/**
 * `text` (a failed answer) with every request fragment replaced by
 * {@link REQUEST_DATA_MARKER}: inside a JSON answer each string is cleaned
 * after decoding (so any escaping is seen through), then the raw text is
 * cleaned of the raw, JSON-, XML- and URL-encoded forms.
 *
 * @example
 * ```ts
 * import { requestFragments, scrubRequestData } from "./request_data.ts";
 * const sent = '{"user_data":"#cloud-config\\nTOKEN=hskey-auth-0123456789"}';
 * scrubRequestData(`bad input: ${sent}`, requestFragments([sent]));
 * // "bad input: [request data]"
 * ```
 */
export function scrubRequestData(text: string, fragments: readonly string[]): string {
  if (fragments.length === 0 || text === "") return text;
  const sorted = [...fragments].sort((a, b) => b.length - a.length);
  let out = text;
  try {
    out = JSON.stringify(scrubJson(JSON.parse(text), sorted));
  } catch {
    // not JSON: the raw pass below does it
  }
  return replaceAll(out, sorted);
}

/** Longest error text crabbox repeats from a provider. */
export const MAX_PROVIDER_MESSAGE = 300;

/**
 * A provider's error message as crabbox repeats it: trimmed and at most
 * {@link MAX_PROVIDER_MESSAGE} characters (an ellipsis marks the cut).
 *
 * @example
 * ```ts
 * import { capMessage } from "./request_data.ts";
 * capMessage("x".repeat(400)).length; // 300
 * ```
 */
export function capMessage(message: string): string {
  const m = message.trim();
  return m.length <= MAX_PROVIDER_MESSAGE ? m : `${m.slice(0, MAX_PROVIDER_MESSAGE - 1)}…`;
}
