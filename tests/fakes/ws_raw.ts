/**
 * A hand-written WebSocket server (RFC 6455) for the server behaviours Deno's
 * own server does not produce on demand: frames a server must not send, a
 * close it never answers, a server that stops reading. It accepts one
 * client, checks the upgrade request (a real handshake: `Sec-WebSocket-Key`
 * → `Sec-WebSocket-Accept`, version 13) and then hands the raw socket to a
 * script. Client frames are decoded independently of crabbox's client and
 * must be masked.
 *
 * @module
 */

import assert from "node:assert/strict";

const enc = new TextEncoder();

/** A client frame as the server read it (unmasked). */
export interface ClientFrame {
  /** Opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong). */
  opcode: number;
  /** Unmasked payload. */
  payload: Uint8Array;
}

/** Reads the next client frame off the socket (rejects with "eof" when it ends). */
export type FrameReader = () => Promise<ClientFrame>;

/** One unmasked server frame: first byte `b0` (FIN + opcode), then the payload. */
export function serverFrame(b0: number, payload: Uint8Array): Uint8Array {
  const hl = payload.length < 126 ? 2 : 4;
  assert.ok(payload.length < 65536, "serverFrame: payload too long for this fake");
  const out = new Uint8Array(hl + payload.length);
  out[0] = b0;
  if (hl === 2) out[1] = payload.length;
  else (out[1] = 126, out[2] = payload.length >> 8, out[3] = payload.length & 0xff);
  out.set(payload, hl);
  return out;
}

/** A close frame from the server with `code` and `reason`. */
export function serverClose(code: number, reason = ""): Uint8Array {
  return serverFrame(0x88, Uint8Array.of(code >> 8, code & 0xff, ...enc.encode(reason)));
}

async function readClientFrame(conn: Deno.Conn, buf: { bytes: Uint8Array }): Promise<ClientFrame> {
  const need = async (n: number) => {
    while (buf.bytes.length < n) {
      const b = new Uint8Array(65536);
      const k = await conn.read(b);
      if (k === null) throw new Error("eof");
      const next = new Uint8Array(buf.bytes.length + k);
      next.set(buf.bytes);
      next.set(b.subarray(0, k), buf.bytes.length);
      buf.bytes = next;
    }
  };
  await need(2);
  const opcode = buf.bytes[0] & 0x0f;
  assert.equal(buf.bytes[1] & 0x80, 0x80, "client frames are masked");
  let len = buf.bytes[1] & 0x7f, hl = 2;
  if (len === 126) (await need(4), len = (buf.bytes[2] << 8) | buf.bytes[3], hl = 4);
  else if (len === 127) {
    await need(10);
    len = Number(new DataView(buf.bytes.buffer, buf.bytes.byteOffset).getBigUint64(2));
    hl = 10;
  }
  await need(hl + 4 + len);
  const mask = buf.bytes.slice(hl, hl + 4);
  const payload = buf.bytes.slice(hl + 4, hl + 4 + len).map((b, i) => b ^ mask[i % 4]);
  buf.bytes = buf.bytes.slice(hl + 4 + len);
  return { opcode, payload };
}

/** Options of {@link rawWsServer}. */
export interface RawServerOptions {
  /**
   * Check the upgrade request's head (request line and headers): return a
   * status line such as `"401 Unauthorized"` to refuse it, or undefined to
   * accept. Default: accept.
   */
  check?: (head: string) => string | undefined;
}

/**
 * Listen on 127.0.0.1, accept one client, answer its handshake, then run
 * `script` on the raw socket; `done` settles when the script did (the
 * socket is closed then).
 */
export function rawWsServer(
  script: (conn: Deno.Conn, read: FrameReader) => Promise<void>,
  options: RawServerOptions = {},
): { url: URL; port: number; done: Promise<void> } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await l.accept();
    l.close();
    try {
      const buf = { bytes: new Uint8Array() };
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const b = new Uint8Array(4096);
        const n = await conn.read(b);
        if (n === null) throw new Error("eof in handshake");
        head += new TextDecoder().decode(b.subarray(0, n));
      }
      head = head.slice(0, head.indexOf("\r\n\r\n"));
      const key = /^sec-websocket-key: *(\S+)\r?$/im.exec(head)?.[1];
      const refused = !key || !/^upgrade: *websocket\r?$/im.test(head) ||
          !/^sec-websocket-version: *13\r?$/im.test(head)
        ? "400 Bad Request"
        : options.check?.(head);
      if (refused) {
        await conn.write(enc.encode(`HTTP/1.1 ${refused}\r\ncontent-length: 0\r\n\r\n`));
        return;
      }
      const digest = await crypto.subtle.digest(
        "SHA-1",
        enc.encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
      );
      const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
      await conn.write(enc.encode(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ));
      await script(conn, () => readClientFrame(conn, buf));
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  })();
  return { url: new URL(`ws://127.0.0.1:${l.addr.port}/`), port: l.addr.port, done };
}
