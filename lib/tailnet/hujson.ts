/**
 * A strict HuJSON (JWCC) parser that records the span of every value, member
 * name and comma, so that callers can edit a document by inserting text at
 * computed offsets and leave every other byte alone.
 *
 * Grammar (the one tailscale/hujson accepts): JSON (RFC 8259) plus `//` line
 * comments and `/* *\/` block comments wherever whitespace may appear, plus one
 * optional trailing comma after the last member or element. Whitespace is only
 * space, tab, CR and LF. No byte order mark. A `//` comment must end in `\n`.
 * Block comments do not nest. Single quotes, hex numbers, `NaN`, unquoted names
 * and leading `+` are rejected.
 *
 * The tree is stored flat in one `Int32Array` (no object per node), so a
 * multi-megabyte policy parses without garbage-collector pressure. Nodes are
 * numbers ({@link HuNode}); read them through {@link HuDocument}'s methods.
 * Offsets are UTF-16 code unit indexes into the JavaScript string.
 *
 * @module
 */

/** A node of a {@link HuDocument}: an index into its tape. The root is `0`. */
export type HuNode = number;

/** The kind of a HuJSON value. */
export type HuKind = "object" | "array" | "string" | "number" | "true" | "false" | "null";

/**
 * A syntax error with its position. `line` and `column` are 1-based; `column`
 * counts UTF-16 code units.
 */
export class HuJSONSyntaxError extends Error {
  /** Offset of the error in the source text. */
  readonly offset: number;
  /** 1-based line number. */
  readonly line: number;
  /** 1-based column number. */
  readonly column: number;
  /** The message without the position prefix. */
  readonly reason: string;

  /**
   * Builds the error and its `line N, column M: reason` message.
   *
   * @param text the source text (used to compute line and column)
   * @param offset where the error was found
   * @param reason what is wrong
   */
  constructor(text: string, offset: number, reason: string) {
    const { line, column } = lineAndColumn(text, offset);
    super(`line ${line}, column ${column}: ${reason}`);
    this.name = "HuJSONSyntaxError";
    this.offset = offset;
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

/** Nesting deeper than this is refused (no real policy comes close). */
export const MAX_HUJSON_DEPTH = 1000;

/**
 * The 1-based line and column of `offset` in `text`.
 *
 * @example
 * ```ts
 * import { lineAndColumn } from "./hujson.ts";
 * lineAndColumn("{\n  x", 4); // { line: 2, column: 3 }
 * ```
 */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const stop = Math.min(offset, text.length);
  for (let i = text.indexOf("\n"); i !== -1 && i < stop; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Parses HuJSON strictly. Throws {@link HuJSONSyntaxError} on anything
 * tailscale/hujson would reject. Linear time; nesting is limited to
 * {@link MAX_HUJSON_DEPTH}.
 *
 * @example
 * ```ts
 * import { parseHuJSON } from "./hujson.ts";
 * const doc = parseHuJSON('{\n  // admins\n  "a": [1, 2,],\n}\n');
 * const a = doc.firstChild(doc.root);
 * console.log(doc.name(a), doc.kind(a), doc.text.slice(doc.start(a), doc.end(a))); // a array [1, 2,]
 * ```
 */
export function parseHuJSON(text: string): HuDocument {
  const p = new Parser(text);
  p.document();
  return new HuDocument(text, p.tape.subarray(0, p.size * STRIDE), !p.triviaInside);
}

// Tape layout: STRIDE int32 per node.
const STRIDE = 8;
const F_KIND = 0; // kind index | flags
const F_START = 1; // value start
const F_END = 2; // value end (exclusive)
const F_COMMA = 3; // offset of the comma after the value, or -1
const F_NAME_START = 4; // member name start (opening quote), or -1
const F_NAME_END = 5; // one past the name's closing quote
const F_NEXT = 6; // next sibling node, or -1
const F_LAST = 7; // containers: last child node, or -1

const K_OBJECT = 0;
const K_ARRAY = 1;
const K_STRING = 2;
const K_NUMBER = 3;
const K_TRUE = 4;
const K_FALSE = 5;
const K_NULL = 6;
const KIND_MASK = 0x0f;
const FLAG_VALUE_ESCAPED = 0x10;
const FLAG_NAME_ESCAPED = 0x20;
const KINDS: readonly HuKind[] = ["object", "array", "string", "number", "true", "false", "null"];

/**
 * A parsed HuJSON document: the source text plus a flat tree of nodes. Each
 * node has a value span; members of objects also have a name span; items of
 * containers record the offset of the comma that follows them.
 */
export class HuDocument {
  /** The source text, unchanged. */
  readonly text: string;
  /**
   * True when the root value contains no whitespace and no comment at all
   * (minified input such as `{"a":[1]}`); inserted text then stays compact.
   */
  readonly compact: boolean;
  /** The root node (always `0`). */
  readonly root: HuNode = 0;
  readonly #tape: Int32Array;

  /**
   * Use {@link parseHuJSON} instead.
   *
   * @param text the source text
   * @param tape the node tape
   * @param compact whether the root value holds no trivia
   */
  constructor(text: string, tape: Int32Array, compact: boolean) {
    this.text = text;
    this.#tape = tape;
    this.compact = compact;
  }

  /** The kind of `node`. */
  kind(node: HuNode): HuKind {
    return KINDS[this.#tape[node * STRIDE + F_KIND] & KIND_MASK];
  }

  /** Offset of the first character of `node`'s value. */
  start(node: HuNode): number {
    return this.#tape[node * STRIDE + F_START];
  }

  /** One past the last character of `node`'s value. */
  end(node: HuNode): number {
    return this.#tape[node * STRIDE + F_END];
  }

  /** Offset of the comma after `node` in its container, or -1. */
  comma(node: HuNode): number {
    return this.#tape[node * STRIDE + F_COMMA];
  }

  /** Offset of the opening quote of `node`'s member name, or -1 for non-members. */
  nameStart(node: HuNode): number {
    return this.#tape[node * STRIDE + F_NAME_START];
  }

  /** One past the closing quote of `node`'s member name, or -1 for non-members. */
  nameEnd(node: HuNode): number {
    return this.#tape[node * STRIDE + F_NAME_END];
  }

  /** Where `node` starts as an item: its name for members, else its value. */
  itemStart(node: HuNode): number {
    const n = this.nameStart(node);
    return n === -1 ? this.start(node) : n;
  }

  /** The decoded member name of `node` (escapes resolved). Throws for non-members. */
  name(node: HuNode): string {
    const s = this.nameStart(node);
    if (s === -1) throw new TypeError("not an object member");
    const escaped = (this.#tape[node * STRIDE + F_KIND] & FLAG_NAME_ESCAPED) !== 0;
    return decodeString(this.text, s, this.nameEnd(node), escaped);
  }

  /** True when `node`'s decoded member name equals `name`. */
  nameIs(node: HuNode, name: string): boolean {
    const s = this.nameStart(node);
    if (s === -1) return false;
    if ((this.#tape[node * STRIDE + F_KIND] & FLAG_NAME_ESCAPED) !== 0) {
      return this.name(node) === name;
    }
    return this.nameEnd(node) - s - 2 === name.length && this.text.startsWith(name, s + 1);
  }

  /** The decoded value of a string node. Throws for other kinds. */
  string(node: HuNode): string {
    const k = this.#tape[node * STRIDE + F_KIND];
    if ((k & KIND_MASK) !== K_STRING) throw new TypeError("not a string");
    return decodeString(
      this.text,
      this.start(node),
      this.end(node),
      (k & FLAG_VALUE_ESCAPED) !== 0,
    );
  }

  /** True when `node` is a string whose decoded value equals `value`. */
  stringIs(node: HuNode, value: string): boolean {
    const k = this.#tape[node * STRIDE + F_KIND];
    if ((k & KIND_MASK) !== K_STRING) return false;
    if ((k & FLAG_VALUE_ESCAPED) !== 0) return this.string(node) === value;
    const s = this.start(node);
    return this.end(node) - s - 2 === value.length && this.text.startsWith(value, s + 1);
  }

  /** The first member/element of a container, or -1 when empty, not a container, or `node` is -1. */
  firstChild(node: HuNode): HuNode {
    if (node < 0) return -1;
    const k = this.#tape[node * STRIDE + F_KIND] & KIND_MASK;
    if (k !== K_OBJECT && k !== K_ARRAY) return -1;
    return this.#tape[node * STRIDE + F_LAST] === -1 ? -1 : node + 1;
  }

  /** The last member/element of a container, or -1 when empty, not a container, or `node` is -1. */
  lastChild(node: HuNode): HuNode {
    if (node < 0) return -1;
    const k = this.#tape[node * STRIDE + F_KIND] & KIND_MASK;
    if (k !== K_OBJECT && k !== K_ARRAY) return -1;
    return this.#tape[node * STRIDE + F_LAST];
  }

  /** The next member/element in the same container, or -1 after the last. */
  nextSibling(node: HuNode): HuNode {
    return this.#tape[node * STRIDE + F_NEXT];
  }

  /** The members/elements of a container, in order (empty for scalars). */
  children(node: HuNode): HuNode[] {
    const out: HuNode[] = [];
    for (let c = this.firstChild(node); c !== -1; c = this.nextSibling(c)) out.push(c);
    return out;
  }
}

function decodeString(text: string, start: number, end: number, escaped: boolean): string {
  return escaped ? JSON.parse(text.slice(start, end)) as string : text.slice(start + 1, end - 1);
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SLASH = 0x2f;
const STAR = 0x2a;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function firstLoneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      else return i;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return i;
    }
  }
  return text.length;
}

class Parser {
  readonly text: string;
  tape: Int32Array;
  size = 0;
  pos = 0;
  depth = 0;
  /** Set when trivia (whitespace or comments) was skipped inside the root value. */
  triviaInside = false;
  /** Escape flag of the last string scanned. */
  escaped = false;

  constructor(text: string) {
    this.text = text;
    this.tape = new Int32Array(Math.max(64, text.length >> 4) * STRIDE);
  }

  fail(offset: number, reason: string): never {
    throw new HuJSONSyntaxError(this.text, offset, reason);
  }

  document(): void {
    const text = this.text;
    if (text.charCodeAt(0) === 0xfeff) this.fail(0, "a byte order mark is not allowed in HuJSON");
    if (!text.isWellFormed()) this.fail(firstLoneSurrogate(text), "the text is not valid UTF-8");
    this.skipTrivia();
    if (this.pos >= text.length) this.fail(this.pos, "empty document");
    this.value(-1, -1);
    this.skipTrivia();
    if (this.pos < text.length) this.fail(this.pos, "unexpected text after the root value");
  }

  /** Appends a node and returns its index; the caller fills in the rest. */
  node(kind: number, start: number, nameStart: number, nameEnd: number): number {
    if ((this.size + 1) * STRIDE > this.tape.length) {
      const bigger = new Int32Array(this.tape.length * 2);
      bigger.set(this.tape);
      this.tape = bigger;
    }
    const n = this.size++;
    const t = this.tape;
    const o = n * STRIDE;
    t[o + F_KIND] = kind;
    t[o + F_START] = start;
    t[o + F_END] = start;
    t[o + F_COMMA] = -1;
    t[o + F_NAME_START] = nameStart;
    t[o + F_NAME_END] = nameEnd;
    t[o + F_NEXT] = -1;
    t[o + F_LAST] = -1;
    return n;
  }

  skipTrivia(): void {
    const text = this.text;
    const begin = this.pos;
    let pos = begin;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c === SPACE || c === TAB || c === LF || c === CR) {
        pos++;
      } else if (c === SLASH) {
        const next = text.charCodeAt(pos + 1);
        if (next === SLASH) {
          const nl = text.indexOf("\n", pos + 2);
          if (nl === -1) this.fail(pos, "a // comment must end with a newline");
          pos = nl + 1;
        } else if (next === STAR) {
          const close = text.indexOf("*/", pos + 2);
          if (close === -1) this.fail(pos, "unterminated /* comment");
          pos = close + 2;
        } else {
          this.fail(pos, "unexpected '/' (comments start with // or /*)");
        }
      } else {
        break;
      }
    }
    this.pos = pos;
    if (pos !== begin && this.depth > 0) this.triviaInside = true;
  }

  /** Parses a value at `pos`; records it as a node (a member when nameStart >= 0). */
  value(nameStart: number, nameEnd: number, nameFlag = 0): number {
    const text = this.text;
    const start = this.pos;
    const c = text.charCodeAt(start);
    if (c === LBRACE || c === LBRACKET) {
      return this.container(c === LBRACE, nameStart, nameEnd, nameFlag);
    }
    if (c === QUOTE) {
      this.scanString();
      const n = this.node(
        K_STRING | nameFlag | (this.escaped ? FLAG_VALUE_ESCAPED : 0),
        start,
        nameStart,
        nameEnd,
      );
      this.tape[n * STRIDE + F_END] = this.pos;
      return n;
    }
    let kind: number;
    if (c === MINUS || isDigit(c)) {
      this.scanNumber();
      kind = K_NUMBER;
    } else if (c === 0x74 && text.startsWith("true", start)) {
      this.pos += 4;
      kind = K_TRUE;
    } else if (c === 0x66 && text.startsWith("false", start)) {
      this.pos += 5;
      kind = K_FALSE;
    } else if (c === 0x6e && text.startsWith("null", start)) {
      this.pos += 4;
      kind = K_NULL;
    } else if (start >= text.length) {
      this.fail(start, "unexpected end of input, expected a value");
    } else {
      this.fail(start, `unexpected character ${JSON.stringify(text[start])}, expected a value`);
    }
    const n = this.node(kind | nameFlag, start, nameStart, nameEnd);
    this.tape[n * STRIDE + F_END] = this.pos;
    return n;
  }

  container(isObject: boolean, nameStart: number, nameEnd: number, nameFlag: number): number {
    const text = this.text;
    const start = this.pos;
    const close = isObject ? RBRACE : RBRACKET;
    if (++this.depth > MAX_HUJSON_DEPTH) {
      this.fail(start, `nesting deeper than ${MAX_HUJSON_DEPTH} levels`);
    }
    const self = this.node((isObject ? K_OBJECT : K_ARRAY) | nameFlag, start, nameStart, nameEnd);
    this.pos++;
    this.skipTrivia();
    let prev = -1;
    if (text.charCodeAt(this.pos) !== close) {
      for (;;) {
        let child: number;
        if (isObject) {
          if (text.charCodeAt(this.pos) !== QUOTE) {
            this.fail(
              this.pos,
              this.pos >= text.length ? "unterminated object" : "expected a quoted member name",
            );
          }
          const ns = this.pos;
          this.scanString();
          const ne = this.pos;
          const flag = this.escaped ? FLAG_NAME_ESCAPED : 0;
          this.skipTrivia();
          if (text.charCodeAt(this.pos) !== COLON) {
            this.fail(this.pos, "expected ':' after the member name");
          }
          this.pos++;
          this.skipTrivia();
          child = this.value(ns, ne, flag);
        } else {
          if (this.pos >= text.length) this.fail(this.pos, "unterminated array");
          child = this.value(-1, -1);
        }
        if (prev !== -1) this.tape[prev * STRIDE + F_NEXT] = child;
        prev = child;
        this.skipTrivia();
        const hasComma = text.charCodeAt(this.pos) === COMMA;
        if (hasComma) {
          this.tape[child * STRIDE + F_COMMA] = this.pos;
          this.pos++;
          this.skipTrivia();
        }
        if (text.charCodeAt(this.pos) === close) break;
        if (!hasComma) {
          const what = isObject ? "object" : "array";
          this.fail(
            this.pos,
            this.pos >= text.length
              ? `unterminated ${what}`
              : `expected ',' or '${isObject ? "}" : "]"}'`,
          );
        }
      }
    }
    this.pos++;
    this.depth--;
    const o = self * STRIDE;
    this.tape[o + F_END] = this.pos;
    this.tape[o + F_LAST] = prev;
    return self;
  }

  /** Scans a string literal at `pos`; sets `escaped`; leaves `pos` after the closing quote. */
  scanString(): void {
    const text = this.text;
    const start = this.pos;
    let i = start + 1;
    let escaped = false;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        escaped = true;
        const e = text.charCodeAt(i + 1);
        if (e === 0x75 /* u */) {
          for (let k = 2; k < 6; k++) {
            if (!isHex(text.charCodeAt(i + k))) this.fail(i, "invalid \\u escape in string");
          }
          i += 6;
        } else if (
          e === QUOTE || e === BACKSLASH || e === SLASH || e === 0x62 || e === 0x66 ||
          e === 0x6e || e === 0x72 || e === 0x74
        ) {
          i += 2;
        } else {
          this.fail(i, "invalid escape in string");
        }
      } else if (c >= 0x20) {
        i++;
      } else if (Number.isNaN(c)) {
        this.fail(start, "unterminated string");
      } else {
        this.fail(i, "control character in string (escape it)");
      }
    }
    this.pos = i + 1;
    this.escaped = escaped;
  }

  scanNumber(): void {
    const text = this.text;
    const start = this.pos;
    let i = start;
    if (text.charCodeAt(i) === MINUS) i++;
    if (text.charCodeAt(i) === ZERO) {
      i++;
      if (isDigit(text.charCodeAt(i))) this.fail(start, "numbers must not have leading zeros");
    } else if (isDigit(text.charCodeAt(i))) {
      while (isDigit(text.charCodeAt(i))) i++;
    } else {
      this.fail(start, "invalid number");
    }
    if (text.charCodeAt(i) === DOT) {
      i++;
      if (!isDigit(text.charCodeAt(i))) {
        this.fail(start, "invalid number (digit expected after '.')");
      }
      while (isDigit(text.charCodeAt(i))) i++;
    }
    const e = text.charCodeAt(i);
    if (e === 0x65 || e === 0x45) {
      i++;
      const sign = text.charCodeAt(i);
      if (sign === 0x2b || sign === MINUS) i++;
      if (!isDigit(text.charCodeAt(i))) {
        this.fail(start, "invalid number (digit expected in exponent)");
      }
      while (isDigit(text.charCodeAt(i))) i++;
    }
    this.pos = i;
  }
}
