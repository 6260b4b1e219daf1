/**
 * A WebSocket client (RFC 6455) on a socket crabbox opens itself, so that the
 * socket has `TCP_NODELAY`. Deno's own `WebSocket` clears `TCP_NODELAY` on its
 * socket (Nagle's algorithm on): a small frame sent while an earlier one still
 * waits for its ACK is then held until the server's delayed ACK (~40 ms on
 * Linux) — ssh writes its packets one by one, so through `crabbox proxy` that
 * cost a new channel ~40 ms. Here: the handshake (with request headers),
 * masked client frames written with one socket write each, ping → pong,
 * fragmented messages and the close handshake. No extensions, no
 * sub-protocols.
 *
 * @module
 */

import { encodeBase64 } from "../../lib/core/base64.ts";

/** A received message: text or binary bytes. */
export type WsData = string | Uint8Array;

/** What a {@link WsClient} reports. */
export interface WsEvents {
  /** A complete message arrived. */
  onMessage(data: WsData): void;
  /** The socket closed (1006 when it ended without a close frame); called once. */
  onClose(code: number, reason: string): void;
}

/** Opens the TCP connection of a `ws:`/`wss:` URL (injectable for tests). */
export type TcpConnector = (options: Deno.ConnectOptions) => Promise<Deno.TcpConn>;

/** Options of {@link dialWebSocket}. */
export interface DialOptions {
  /** TCP connector (default `Deno.connect`). */
  connect?: TcpConnector;
  /** Extra CA certificates (PEM) for `wss:`; the system's are used as well. */
  caCerts?: string[];
}

/** Longest message accepted from a server. */
export const MAX_MESSAGE = 64 * 1024 * 1024;

/** Longest handshake answer (status line + headers) accepted. */
const MAX_HEAD = 16 * 1024;

/**
 * The longest a close handshake may take, whichever side started it: once
 * this long has passed the socket is dropped (a server that never answers a
 * close, or stops reading while a frame is still going out, cannot keep it).
 */
export const CLOSE_WAIT_MS = 2_000;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const Op = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/**
 * Open the byte stream of a `ws:`/`wss:` URL: TCP with `TCP_NODELAY` set,
 * then TLS for `wss:`.
 *
 * @example
 * ```ts
 * import { dialWebSocket } from "./ws_client.ts";
 * const conn = await dialWebSocket(new URL("wss://api.sprites.dev/v1/sprites/a/proxy"));
 * conn.close();
 * ```
 */
export async function dialWebSocket(url: URL, options: DialOptions = {}): Promise<Deno.Conn> {
  const secure = url.protocol === "wss:";
  if (!secure && url.protocol !== "ws:") {
    throw new Error(`${url.protocol} is not a WebSocket URL scheme`);
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const tcp = await (options.connect ?? Deno.connect)({ hostname, port });
  try {
    tcp.setNoDelay(true);
    if (!secure) return tcp;
    return await Deno.startTls(tcp, {
      hostname,
      caCerts: options.caCerts,
      alpnProtocols: ["http/1.1"],
    });
  } catch (e) {
    try {
      tcp.close();
    } catch { /* closed */ }
    throw e;
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * The HTTP/1.1 upgrade request for `url` with `key` (base64 of 16 random
 * bytes) and extra `headers`; throws on a header that would break the
 * request (a bad name, a CR/LF/NUL in a value).
 *
 * @example
 * ```ts
 * import { handshakeRequest } from "./ws_client.ts";
 * handshakeRequest(new URL("ws://127.0.0.1:8080/v1/x?a=1"), "dGhlIHNhbXBsZSBub25jZQ==", {});
 * // "GET /v1/x?a=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n…\r\n\r\n"
 * ```
 */
export function handshakeRequest(url: URL, key: string, headers: Record<string, string>): string {
  const lines = [
    `GET ${url.pathname || "/"}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
  ];
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) {
      throw new Error(`header ${JSON.stringify(name)} cannot be sent`);
    }
    lines.push(`${name}: ${value}`);
  }
  return lines.join("\r\n") + "\r\n\r\n";
}

/** `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)). */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(key + GUID));
  return encodeBase64(new Uint8Array(digest));
}

/**
 * Check the server's answer (status line and headers, without the blank
 * line) to a handshake with `key`: `undefined` when it accepted the upgrade,
 * else the reason.
 *
 * @example
 * ```ts
 * import { checkHandshake } from "./ws_client.ts";
 * await checkHandshake("HTTP/1.1 401 Unauthorized\r\ncontent-length: 0", "k"); // "the server answered 401 Unauthorized"
 * ```
 */
export async function checkHandshake(head: string, key: string): Promise<string | undefined> {
  const [status, ...lines] = head.split("\r\n");
  const m = /^HTTP\/1\.1 (\d{3})(?: (.*))?$/.exec(status);
  if (!m) return `not an HTTP/1.1 answer: ${JSON.stringify(status.slice(0, 80))}`;
  if (m[1] !== "101") return `the server answered ${m[1]}${m[2] ? ` ${m[2]}` : ""}`.trimEnd();
  const h = new Map<string, string>();
  for (const line of lines) {
    const i = line.indexOf(":");
    if (i > 0) h.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  if ((h.get("upgrade") ?? "").toLowerCase() !== "websocket") return "no Upgrade: websocket";
  const connection = (h.get("connection") ?? "").toLowerCase().split(",").map((x) => x.trim());
  if (!connection.includes("upgrade")) return "no Connection: upgrade";
  if (h.get("sec-websocket-accept") !== await acceptKey(key)) {
    return "wrong Sec-WebSocket-Accept";
  }
  if (h.has("sec-websocket-extensions")) return "an extension was not asked for";
  return undefined;
}

/**
 * One client frame: FIN set, `opcode`, the payload masked with `mask`
 * (4 bytes). The whole frame is one buffer, so it goes out in one write.
 *
 * @example
 * ```ts
 * import { clientFrame } from "./ws_client.ts";
 * clientFrame(2, Uint8Array.of(1, 2), Uint8Array.of(0, 0, 0, 0)); // [0x82, 0x82, 0, 0, 0, 0, 1, 2]
 * ```
 */
export function clientFrame(opcode: number, payload: Uint8Array, mask: Uint8Array): Uint8Array {
  const n = payload.length;
  const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const hl = 2 + lenBytes + 4;
  const out = new Uint8Array(hl + n);
  out[0] = 0x80 | opcode;
  if (lenBytes === 0) out[1] = 0x80 | n;
  else if (lenBytes === 2) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  out.set(mask, hl - 4);
  out.set(payload, hl);
  maskInPlace(out, hl, mask);
  return out;
}

/** XOR `buf[from..]` with the repeating 4-byte `mask`, four bytes at a time where aligned. */
function maskInPlace(buf: Uint8Array, from: number, mask: Uint8Array): void {
  const end = buf.length;
  let i = from;
  for (; i < end && (buf.byteOffset + i) % 4 !== 0; i++) buf[i] ^= mask[(i - from) % 4];
  const words = Math.floor((end - i) / 4);
  if (words > 0) {
    const rotated = new Uint8Array(4);
    for (let k = 0; k < 4; k++) rotated[k] = mask[(i - from + k) % 4];
    const m32 = new Uint32Array(rotated.buffer)[0];
    const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] ^= m32;
    i += words * 4;
  }
  for (; i < end; i++) buf[i] ^= mask[(i - from) % 4];
}

/** A server frame read off the stream. */
export interface ServerFrame {
  /** FIN bit. */
  fin: boolean;
  /** Opcode. */
  opcode: number;
  /** Unmasked payload. */
  payload: Uint8Array;
}

/** Bytes received and not yet parsed, kept as chunks (each byte copied once). */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  length = 0;

  push(c: Uint8Array) {
    if (c.length === 0) return;
    this.#chunks.push(c);
    this.length += c.length;
  }

  /** The first `n` bytes as one array, or undefined while fewer are queued. */
  peek(n: number): Uint8Array | undefined {
    if (this.length < n) return undefined;
    if (this.#chunks[0].length >= n) return this.#chunks[0].subarray(0, n);
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.#chunks) {
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (o === n) break;
    }
    return out;
  }

  /** Remove and return the first `n` bytes (n ≤ length). */
  take(n: number): Uint8Array {
    const first = this.#chunks[0];
    let out: Uint8Array;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      let o = 0;
      while (o < n) {
        const c = this.#chunks[0];
        const k = Math.min(c.length, n - o);
        out.set(c.subarray(0, k), o);
        o += k;
        if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.length -= n;
    return out;
  }
}

/** Why a server frame is refused: a close code and a reason. */
class ProtocolError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/**
 * The next complete server frame in `q`, or undefined while it is incomplete;
 * throws a {@link ProtocolError} for a frame a server must not send.
 */
function nextFrame(q: ByteQueue): ServerFrame | undefined {
  const h = q.peek(2);
  if (!h) return undefined;
  const fin = (h[0] & 0x80) !== 0;
  const opcode = h[0] & 0x0f;
  if ((h[0] & 0x70) !== 0) throw new ProtocolError(1002, "reserved bits set");
  if ((h[1] & 0x80) !== 0) throw new ProtocolError(1002, "a masked server frame");
  let len = h[1] & 0x7f;
  let hl = 2;
  if (len === 126) {
    const e = q.peek(4);
    if (!e) return undefined;
    len = (e[2] << 8) | e[3];
    hl = 4;
  } else if (len === 127) {
    const e = q.peek(10);
    if (!e) return undefined;
    const big = new DataView(e.buffer, e.byteOffset, 10).getBigUint64(2);
    if (big > BigInt(MAX_MESSAGE)) throw new ProtocolError(1009, "frame too large");
    len = Number(big);
    hl = 10;
  }
  if (opcode >= 8 && (!fin || len > 125)) {
    throw new ProtocolError(1002, "a fragmented or long control frame");
  }
  if (len > MAX_MESSAGE) throw new ProtocolError(1009, "frame too large");
  if (q.length < hl + len) return undefined;
  return { fin, opcode, payload: q.take(hl + len).subarray(hl) };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length;) o += await conn.write(bytes.subarray(o));
}

const randomMask = () => crypto.getRandomValues(new Uint8Array(4));

/** An open WebSocket (after the handshake). */
export class WsClient {
  #conn: Deno.Conn;
  #events: WsEvents;
  #queue = new ByteQueue();
  #writes: Promise<void> = Promise.resolve();
  #state: "open" | "closing" | "closed" = "open";
  #parts: Uint8Array[] = [];
  #partsLength = 0;
  #partsOpcode = 0;
  #closeTimer?: ReturnType<typeof setTimeout>;
  /** What to report when the socket ends: the server's close, or a protocol error. */
  #outcome?: { code: number; reason: string };

  /** Wrap `conn` whose handshake is done; `rest` holds bytes read past it. */
  constructor(conn: Deno.Conn, rest: Uint8Array, events: WsEvents) {
    this.#conn = conn;
    this.#events = events;
    this.#queue.push(rest);
    this.#readLoop();
  }

  /** True until a close started or the socket ended. */
  get isOpen(): boolean {
    return this.#state === "open";
  }

  /** Send a text or binary message as one frame (one socket write); resolves once written. */
  send(data: WsData): Promise<void> {
    if (this.#state !== "open") return Promise.reject(new Error("the WebSocket is closed"));
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    return this.#write(
      clientFrame(typeof data === "string" ? Op.text : Op.binary, bytes, randomMask()),
    );
  }

  /**
   * Start the close handshake (`code`, default 1000); the socket ends when
   * the server answers, or {@link CLOSE_WAIT_MS} later.
   */
  close(code = 1000, reason = ""): void {
    if (this.#state !== "open") return;
    const r = new TextEncoder().encode(reason).subarray(0, 123);
    const payload = new Uint8Array(2 + r.length);
    payload[0] = code >> 8;
    payload[1] = code & 0xff;
    payload.set(r, 2);
    this.#closing(payload);
  }

  /**
   * Enter "closing": queue our close frame (after the frames already being
   * written) and drop the socket {@link CLOSE_WAIT_MS} from now at the
   * latest, even when an earlier write never completes.
   */
  #closing(payload: Uint8Array): void {
    this.#state = "closing";
    this.#write(clientFrame(Op.close, payload, randomMask())).catch(() => {});
    const timer = setTimeout(() => this.#finish(), CLOSE_WAIT_MS);
    Deno.unrefTimer(timer);
    this.#closeTimer = timer;
  }

  #write(frame: Uint8Array): Promise<void> {
    const p = this.#writes.then(() => writeAll(this.#conn, frame));
    this.#writes = p.catch(() => this.#finish());
    return p;
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (this.#state !== "closed") {
        if (!this.#drain()) return;
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#queue.push(buf.slice(0, n));
      }
    } catch { /* reset, or closed under the read */ }
    this.#finish();
  }

  /** Handle every complete frame queued; false once the socket is done. */
  #drain(): boolean {
    try {
      for (let f = nextFrame(this.#queue); f; f = nextFrame(this.#queue)) {
        if (!this.#frame(f)) return false;
      }
      return true;
    } catch (e) {
      const code = e instanceof ProtocolError ? e.code : 1002;
      this.#outcome ??= { code, reason: (e as Error).message };
      if (this.#state === "open") this.#closing(Uint8Array.of(code >> 8, code & 0xff));
      this.#writes.finally(() => this.#finish());
      return false;
    }
  }

  #frame({ fin, opcode, payload }: ServerFrame): boolean {
    if (opcode === Op.close) {
      const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
      const reason = new TextDecoder().decode(payload.subarray(2));
      this.#outcome ??= { code, reason };
      if (this.#state === "open") {
        this.#closing(payload.length >= 2 ? payload.slice(0, 2) : new Uint8Array());
      }
      this.#writes.finally(() => this.#finish());
      return false;
    }
    if (opcode === Op.ping) {
      if (this.#state === "open") {
        this.#write(clientFrame(Op.pong, payload, randomMask())).catch(() => {});
      }
      return true;
    }
    if (opcode === Op.pong) return true;
    if (opcode === Op.continuation) {
      if (this.#partsOpcode === 0) throw new ProtocolError(1002, "a continuation of nothing");
    } else if (opcode === Op.text || opcode === Op.binary) {
      if (this.#partsOpcode !== 0) {
        throw new ProtocolError(1002, "a new message inside a fragmented one");
      }
      this.#partsOpcode = opcode;
    } else throw new ProtocolError(1002, `unknown opcode ${opcode}`);
    this.#partsLength += payload.length;
    if (this.#partsLength > MAX_MESSAGE) throw new ProtocolError(1009, "message too large");
    this.#parts.push(payload);
    if (!fin) return true;
    const bytes = this.#parts.length === 1
      ? this.#parts[0]
      : concat(this.#parts, this.#partsLength);
    const text = this.#partsOpcode === Op.text;
    this.#parts = [];
    this.#partsLength = 0;
    this.#partsOpcode = 0;
    if (this.#state !== "open") return true;
    if (text) {
      let s: string;
      try {
        s = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        throw new ProtocolError(1007, "a text message that is not UTF-8");
      }
      this.#events.onMessage(s);
    } else this.#events.onMessage(bytes);
    return true;
  }

  /** Drop the socket (its pending reads and writes end) and report the close once. */
  #finish(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    clearTimeout(this.#closeTimer);
    try {
      this.#conn.close();
    } catch { /* closed */ }
    const { code, reason } = this.#outcome ?? { code: 1006, reason: "" };
    this.#events.onClose(code, reason);
  }
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) (out.set(p, o), o += p.length);
  return out;
}

/** Options of {@link openWebSocket}. */
export interface OpenOptions extends DialOptions {
  /** Give up (rejecting with "aborted") when this aborts before the handshake is done. */
  signal?: AbortSignal;
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
}

/**
 * Dial `url` (see {@link dialWebSocket}), send the upgrade with `headers` and
 * return the open socket; rejects with an `Error` whose message is the reason
 * (refused, the server's status, a bad answer, a timeout, aborted).
 *
 * @example
 * ```ts
 * import { openWebSocket } from "./ws_client.ts";
 * const ws = await openWebSocket(new URL("ws://127.0.0.1:8080/x"), {}, {
 *   onMessage: (m) => console.log(m),
 *   onClose: (code) => console.log("closed", code),
 * });
 * await ws.send("hello");
 * ws.close();
 * ```
 */
export function openWebSocket(
  url: URL,
  headers: Record<string, string>,
  events: WsEvents,
  options: OpenOptions = {},
): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let conn: Deno.Conn | undefined;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const settle = () => {
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    };
    const fail = (why: string) => {
      if (settled) return;
      settle();
      try {
        conn?.close();
      } catch { /* closed */ }
      reject(new Error(why));
    };
    const onAbort = () => fail("aborted");
    const timer = setTimeout(
      () => fail(`no answer within ${Math.round(timeoutMs / 1000)}s`),
      timeoutMs,
    );
    if (options.signal?.aborted) return fail("aborted");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    (async () => {
      const key = encodeBase64(crypto.getRandomValues(new Uint8Array(16)));
      let request: string;
      try {
        request = handshakeRequest(url, key, headers);
        conn = await dialWebSocket(url, options);
      } catch (e) {
        fail(
          e instanceof Deno.errors.ConnectionRefused ? "connection refused" : (e as Error).message,
        );
        return;
      }
      if (settled) {
        conn.close();
        return;
      }
      try {
        await writeAll(conn, new TextEncoder().encode(request));
        const { head, rest } = await readHead(conn);
        const bad = await checkHandshake(head, key);
        if (bad) return fail(bad);
        if (settled) return;
        settle();
        resolve(new WsClient(conn, rest, events));
      } catch (e) {
        fail((e as Error).message || "the handshake failed");
      }
    })();
  });
}

/** Read the answer's head (up to the blank line); `rest` is what came after it. */
async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array }> {
  let got = new Uint8Array(0);
  const buf = new Uint8Array(4096);
  while (true) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("the server closed during the handshake");
    const next = new Uint8Array(got.length + n);
    next.set(got);
    next.set(buf.subarray(0, n), got.length);
    got = next;
    const end = indexOfBlankLine(got);
    if (end >= 0) {
      return { head: new TextDecoder().decode(got.subarray(0, end)), rest: got.slice(end + 4) };
    }
    if (got.length > MAX_HEAD) throw new Error("the handshake answer is too long");
  }
}

function indexOfBlankLine(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}
