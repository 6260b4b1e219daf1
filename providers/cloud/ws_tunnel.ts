/**
 * Authenticated WebSockets for the providers whose boxes are reachable only
 * through a WebSocket (Sprites exec/proxy, Namespace's SSH ingress): open one
 * with headers (Deno's own `WebSocket`), read its messages in order without
 * losing any that arrive before the caller asks, and turn it into a
 * {@link ByteTunnel} of binary frames. No provider-specific code.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { ByteTunnel } from "../types.ts";

/** One received message: text, binary bytes, or `undefined` once closed. */
export type WsMessage = string | Uint8Array | undefined;

/** Sending stalls while more than this many bytes wait in the socket's buffer. */
const HIGH_WATER = 1 << 20;

/**
 * Turn an API base URL into the WebSocket URL of `path` on it
 * (`https:` → `wss:`, `http:` → `ws:`).
 *
 * @example
 * ```ts
 * import { wsUrl } from "./ws_tunnel.ts";
 * wsUrl("https://api.sprites.dev", "/v1/sprites/a/proxy").href; // "wss://api.sprites.dev/v1/sprites/a/proxy"
 * ```
 */
export function wsUrl(baseUrl: string, path: string): URL {
  const url = new URL(baseUrl.replace(/\/+$/, "") + path);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

/** A WebSocket whose messages are queued from the moment it opened. */
export class WsConnection {
  #ws: WebSocket;
  #queue: WsMessage[] = [];
  #waiters: ((m: WsMessage) => void)[] = [];
  #closed = false;
  /** The close code and reason, once closed. */
  closeInfo?: { code: number; reason: string };

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      this.#push(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
    };
    ws.onclose = (e) => {
      this.closeInfo = { code: e.code, reason: e.reason };
      this.#closed = true;
      this.#push(undefined);
    };
  }

  #push(m: WsMessage) {
    const w = this.#waiters.shift();
    if (w) w(m);
    else this.#queue.push(m);
  }

  /**
   * Connect to `url` with `headers` (credentials go only in headers, never in
   * the URL); rejects with a provider error naming `what` when the server
   * refuses or does not answer within `timeoutMs`.
   */
  static open(
    what: string,
    url: URL,
    headers: Record<string, string>,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<WsConnection> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url, { headers });
      } catch (e) {
        reject(
          new CrabboxError("provider", "ws_failed", `${what}: ${(e as Error).message}`),
        );
        return;
      }
      const fail = (why: string) => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        try {
          ws.close();
        } catch { /* already closed */ }
        reject(new CrabboxError("provider", "ws_failed", `${what}: ${why}`));
      };
      const onAbort = () => fail("aborted");
      const timer = setTimeout(
        () => fail(`no answer within ${Math.round((options.timeoutMs ?? 30_000) / 1000)}s`),
        options.timeoutMs ?? 30_000,
      );
      options.signal?.addEventListener("abort", onAbort, { once: true });
      ws.onerror = (e) => fail((e as ErrorEvent).message || "connection refused");
      ws.onopen = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        ws.onerror = null;
        resolve(new WsConnection(ws));
      };
    });
  }

  /** The next message, or `undefined` once the socket closed. */
  next(): Promise<WsMessage> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift());
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Send text or bytes, waiting while the send buffer is over its high-water mark. */
  async send(data: string | Uint8Array): Promise<void> {
    while (this.#ws.bufferedAmount > HIGH_WATER && !this.#closed) {
      await new Promise((r) => setTimeout(r, 5));
    }
    if (this.#closed) throw new CrabboxError("provider", "ws_closed", "the tunnel closed");
    this.#ws.send(data);
  }

  /** Close the socket (normal closure). */
  close(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      this.#ws.close(1000);
    }
  }

  /**
   * The connection as a byte tunnel: binary frames both ways. A text frame
   * from the server ends the readable side with an error carrying its text.
   */
  tunnel(): ByteTunnel {
    const readable = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const m = await this.next();
        if (m === undefined) controller.close();
        else if (typeof m === "string") {
          controller.error(new CrabboxError("provider", "ws_text", `tunnel: ${m.slice(0, 200)}`));
          this.close();
        } else controller.enqueue(m);
      },
      cancel: () => this.close(),
    });
    const writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.send(chunk),
      close: () => this.close(),
      abort: () => this.close(),
    });
    return { readable, writable };
  }
}
