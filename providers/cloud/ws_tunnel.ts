/**
 * Authenticated WebSockets for the providers whose boxes are reachable only
 * through a WebSocket (Sprites exec/proxy, Namespace's SSH ingress): open one
 * with headers (crabbox's own client, `ws_client.ts`: a socket with
 * `TCP_NODELAY`), read its messages in order without
 * losing any that arrive before the caller asks, and turn it into a
 * {@link ByteTunnel} of binary frames. No provider-specific code.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { ByteTunnel } from "../types.ts";
import { type OpenOptions, openWebSocket, type WsClient } from "./ws_client.ts";

/** One received message: text, binary bytes, or `undefined` once closed. */
export type WsMessage = string | Uint8Array | undefined;

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
  #ws?: WsClient;
  #queue: WsMessage[] = [];
  #waiters: ((m: WsMessage) => void)[] = [];
  #closed = false;
  /** The close code and reason, once closed. */
  closeInfo?: { code: number; reason: string };

  private constructor() {}

  #push(m: WsMessage) {
    const w = this.#waiters.shift();
    if (w) w(m);
    else this.#queue.push(m);
  }

  /**
   * Connect to `url` with `headers` (credentials go only in headers, never in
   * the URL) on a socket with `TCP_NODELAY` ({@link openWebSocket}); rejects
   * with a provider error naming `what` when the server refuses or does not
   * answer within `timeoutMs`. `connect` replaces `Deno.connect` (tests).
   */
  static async open(
    what: string,
    url: URL,
    headers: Record<string, string>,
    options: OpenOptions = {},
  ): Promise<WsConnection> {
    const conn = new WsConnection();
    try {
      conn.#ws = await openWebSocket(url, headers, {
        onMessage: (m) => conn.#push(m),
        onClose: (code, reason) => {
          conn.closeInfo = { code, reason };
          conn.#closed = true;
          conn.#push(undefined);
        },
      }, options);
    } catch (e) {
      throw new CrabboxError("provider", "ws_failed", `${what}: ${(e as Error).message}`);
    }
    return conn;
  }

  /** The next message, or `undefined` once the socket closed. */
  next(): Promise<WsMessage> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift());
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Send text or bytes as one message; resolves once it is written to the socket. */
  async send(data: string | Uint8Array): Promise<void> {
    if (this.#closed || !this.#ws?.isOpen) {
      throw new CrabboxError("provider", "ws_closed", "the tunnel closed");
    }
    try {
      await this.#ws.send(data);
    } catch {
      throw new CrabboxError("provider", "ws_closed", "the tunnel closed");
    }
  }

  /** Close the socket (normal closure). */
  close(): void {
    this.#ws?.close(1000);
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
