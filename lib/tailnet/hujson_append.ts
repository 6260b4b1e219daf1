/**
 * Insert-only editing of HuJSON: append members or elements to a container of
 * a parsed document by computing text insertions. Every byte of the original
 * text stays in place and in order; the result is the original text with some
 * strings inserted at some offsets.
 *
 * Layout rules (pure, decided from the bytes around the container):
 * - A container whose last item starts its own line ("line mode") gets each
 *   new item on a new line after the last item's line, with the last item's
 *   indentation and line ending. A same-line comment after the last item stays
 *   with it; comments before the closing bracket stay last.
 * - Otherwise ("inline mode") the new item goes right after the last item,
 *   separated by `, ` (or `,` in a minified document).
 * - A missing comma after the last item is inserted right after its value. If
 *   the last item had a trailing comma, the new last item gets one too.
 * - An empty container gets the items on new lines indented one unit deeper
 *   than the container's line (minified documents stay on one line).
 *
 * @module
 */

import type { HuDocument, HuNode } from "./hujson.ts";

/** Text to insert at an offset of the original text. */
export interface TextInsertion {
  /** Offset in the original text; the text goes before the byte at this offset. */
  readonly offset: number;
  /** The inserted text. */
  readonly text: string;
}

/** A JSON value that can be rendered inline. */
export type InlineJSON =
  | string
  | number
  | boolean
  | null
  | readonly InlineJSON[]
  | { readonly [key: string]: InlineJSON };

/** An item to append: a member (`name` set) for objects, an element for arrays. */
export interface AppendItem {
  /** Member name; required when appending to an object, forbidden for arrays. */
  readonly name?: string;
  /** The value, rendered on one line. */
  readonly value: InlineJSON;
}

/** Document-wide layout facts used for new lines. */
export interface LayoutStyle {
  /** The document's line ending: `\r\n` if its first line ends so, else `\n`. */
  readonly eol: string;
  /** One indentation unit, from the root's first member; tab when unknown. */
  readonly unit: string;
  /** Minified document: render without spaces. */
  readonly compact: boolean;
}

/**
 * Renders a JSON value on one line: `{"a": [1, 2]}` (spaced, the hujson.Format
 * inline style) or `{"a":[1,2]}` (compact).
 *
 * @example
 * ```ts
 * import { renderInlineJSON } from "./hujson_append.ts";
 * renderInlineJSON({ src: ["tag:a"], ip: ["*"] }, false); // '{"src": ["tag:a"], "ip": ["*"]}'
 * ```
 */
export function renderInlineJSON(value: InlineJSON, compact: boolean): string {
  const comma = compact ? "," : ", ";
  const colon = compact ? ":" : ": ";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) {
    return `[${
      (value as readonly InlineJSON[]).map((v) => renderInlineJSON(v, compact)).join(comma)
    }]`;
  }
  const entries = Object.entries(value as { readonly [key: string]: InlineJSON });
  return `{${
    entries.map(([k, v]) => JSON.stringify(k) + colon + renderInlineJSON(v, compact)).join(comma)
  }}`;
}

/**
 * Detects the line ending, indentation unit and compactness of a document.
 *
 * @example
 * ```ts
 * import { parseHuJSON } from "./hujson.ts";
 * import { detectLayout } from "./hujson_append.ts";
 * detectLayout(parseHuJSON('{\r\n  "a": 1\r\n}')); // { eol: "\r\n", unit: "  ", compact: false }
 * ```
 */
export function detectLayout(doc: HuDocument): LayoutStyle {
  const text = doc.text;
  const nl = text.indexOf("\n");
  const eol = nl > 0 && text.charCodeAt(nl - 1) === 0x0d ? "\r\n" : "\n";
  let unit = "\t";
  const first = doc.firstChild(doc.root);
  if (first !== -1) {
    const itemIndent = lineIndent(text, doc.itemStart(first));
    const rootIndent = leadingIndent(text, doc.start(doc.root));
    if (
      itemIndent !== undefined && itemIndent.length > rootIndent.length &&
      itemIndent.startsWith(rootIndent)
    ) {
      unit = itemIndent.slice(rootIndent.length);
    }
  }
  return { eol, unit, compact: doc.compact };
}

/**
 * Plans the insertions that append `items` as the new last members/elements of
 * `container`. The insertions are in ascending offset order and never overlap
 * a byte of the original text.
 *
 * @example
 * ```ts
 * import { parseHuJSON } from "./hujson.ts";
 * import { applyInsertions, detectLayout, planAppend } from "./hujson_append.ts";
 * const doc = parseHuJSON('{\n  "a": 1, // one\n}\n');
 * const ins = planAppend(doc, doc.root, [{ name: "b", value: 2 }], detectLayout(doc));
 * applyInsertions(doc.text, ins); // '{\n  "a": 1, // one\n  "b": 2,\n}\n'
 * ```
 */
export function planAppend(
  doc: HuDocument,
  container: HuNode,
  items: readonly AppendItem[],
  style: LayoutStyle,
): TextInsertion[] {
  if (items.length === 0) return [];
  const kind = doc.kind(container);
  if (kind !== "object" && kind !== "array") throw new TypeError("not a container");
  const isObject = kind === "object";
  const rendered = items.map((item) => {
    if (isObject !== (item.name !== undefined)) {
      throw new TypeError(isObject ? "object members need a name" : "array elements have no name");
    }
    const value = renderInlineJSON(item.value, style.compact);
    return item.name === undefined
      ? value
      : JSON.stringify(item.name) + (style.compact ? ":" : ": ") + value;
  });
  const last = doc.lastChild(container);
  if (last === -1) {
    return appendToEmpty(doc.text, doc.start(container), doc.end(container), rendered, style);
  }
  const item = { start: doc.itemStart(last), valueEnd: doc.end(last), comma: doc.comma(last) };
  return appendAfter(doc.text, item, rendered, style);
}

/**
 * Applies insertions to `text`. Insertions at the same offset keep their order.
 * Linear in the size of the text plus the inserted text.
 *
 * @example
 * ```ts
 * import { applyInsertions } from "./hujson_append.ts";
 * applyInsertions("ac", [{ offset: 1, text: "b" }]); // "abc"
 * ```
 */
export function applyInsertions(text: string, insertions: readonly TextInsertion[]): string {
  const sorted = insertions
    .map((ins, index) => ({ ins, index }))
    .sort((a, b) => a.ins.offset - b.ins.offset || a.index - b.index);
  const parts: string[] = [];
  let at = 0;
  for (const { ins } of sorted) {
    if (ins.offset < at || ins.offset > text.length) throw new RangeError("insertion out of range");
    parts.push(text.slice(at, ins.offset), ins.text);
    at = ins.offset;
  }
  parts.push(text.slice(at));
  return parts.join("");
}

interface LastItem {
  /** Start of the item (member name or element value). */
  start: number;
  /** End of the item's value. */
  valueEnd: number;
  /** Offset of its comma or -1. */
  comma: number;
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** The SP/TAB run before `offset` if it reaches the start of a line, else undefined. */
function lineIndent(text: string, offset: number): string | undefined {
  let i = offset;
  while (i > 0 && isBlank(text.charCodeAt(i - 1))) i--;
  if (i === 0 || text.charCodeAt(i - 1) === 0x0a) return text.slice(i, offset);
  return undefined;
}

/** The SP/TAB run at the start of the line containing `offset`. */
function leadingIndent(text: string, offset: number): string {
  const lineStart = text.lastIndexOf("\n", offset - 1) + 1;
  let i = lineStart;
  while (i < offset && isBlank(text.charCodeAt(i))) i++;
  return text.slice(lineStart, i);
}

/** The line ending that ends the line before `lineStart` (which follows a `\n`). */
function eolBefore(text: string, lineStart: number, fallback: string): string {
  if (lineStart < 1 || text.charCodeAt(lineStart - 1) !== 0x0a) return fallback;
  return lineStart >= 2 && text.charCodeAt(lineStart - 2) === 0x0d ? "\r\n" : "\n";
}

/**
 * From `from`, skips blanks, single-line block comments and one line comment.
 * Returns the offset of the line ending (`\r\n` or `\n`) reached and its text,
 * or undefined when code or a multi-line comment follows on the same line.
 */
function sameLineEnd(text: string, from: number): { at: number; eol: string } | undefined {
  let i = from;
  for (;;) {
    const c = text.charCodeAt(i);
    if (isBlank(c)) {
      i++;
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a) {
      const close = text.indexOf("*/", i + 2);
      if (close === -1 || text.lastIndexOf("\n", close) >= i) return undefined;
      i = close + 2;
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2f) {
      i = text.indexOf("\n", i + 2);
      if (i === -1) return undefined;
      return i > 0 && text.charCodeAt(i - 1) === 0x0d
        ? { at: i - 1, eol: "\r\n" }
        : { at: i, eol: "\n" };
    } else if (c === 0x0d && text.charCodeAt(i + 1) === 0x0a) {
      return { at: i, eol: "\r\n" };
    } else if (c === 0x0a) {
      return { at: i, eol: "\n" };
    } else {
      return undefined;
    }
  }
}

function appendAfter(
  text: string,
  last: LastItem,
  rendered: readonly string[],
  style: LayoutStyle,
): TextInsertion[] {
  const hadComma = last.comma !== -1;
  const indent = lineIndent(text, last.start);
  const out: TextInsertion[] = [];
  if (indent === undefined) {
    // Inline mode: keep the new items on the last item's line.
    const sep = style.compact ? "" : " ";
    if (hadComma) {
      out.push({ offset: last.comma + 1, text: rendered.map((r) => `${sep}${r},`).join("") });
    } else {
      out.push({ offset: last.valueEnd, text: rendered.map((r) => `,${sep}${r}`).join("") });
    }
    return out;
  }
  const after = hadComma ? last.comma + 1 : last.valueEnd;
  const lineEnd = sameLineEnd(text, after);
  const itemLineStart = last.start - indent.length;
  const eol = lineEnd?.eol ?? eolBefore(text, itemLineStart, style.eol);
  const body = rendered
    .map((r, i) => eol + indent + r + (i < rendered.length - 1 || hadComma ? "," : ""))
    .join("");
  const at = lineEnd?.at ?? after;
  if (!hadComma) out.push({ offset: last.valueEnd, text: "," });
  if (at === last.valueEnd && !hadComma) {
    out[0] = { offset: at, text: "," + body };
  } else {
    out.push({ offset: at, text: body });
  }
  return out;
}

function appendToEmpty(
  text: string,
  open: number,
  end: number,
  rendered: readonly string[],
  style: LayoutStyle,
): TextInsertion[] {
  const close = end - 1;
  if (style.compact) return [{ offset: close, text: rendered.join(",") }];
  const openIndent = leadingIndent(text, open);
  const inner = text.lastIndexOf("\n", close - 1) > open;
  if (inner) {
    // Multi-line empty container: new lines go before the closing bracket's line.
    const closeIndent = lineIndent(text, close);
    if (closeIndent !== undefined) {
      const lineStart = close - closeIndent.length;
      const eol = eolBefore(text, lineStart, style.eol);
      const itemIndent = closeIndent + style.unit;
      const body = rendered
        .map((r, i) => itemIndent + r + (i < rendered.length - 1 ? "," : "") + eol)
        .join("");
      return [{ offset: lineStart, text: body }];
    }
  }
  const closeLineIndent = inner ? leadingIndent(text, close) : openIndent;
  const itemIndent = closeLineIndent + style.unit;
  const body = rendered
    .map((r, i) => style.eol + itemIndent + r + (i < rendered.length - 1 ? "," : ""))
    .join("");
  return [{ offset: close, text: body + style.eol + closeLineIndent }];
}
