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

/**
 * Close codes that end a tunnel normally (RFC 6455 §7.4.1): normal, going
 * away, no code, and 1006 — a connection that ended without a close frame,
 * which is how many relays end the stream once the box closed its side (the
 * byte stream's own protocol, ssh, tells a cut session from a finished one).
 */
const NORMAL_CLOSE = new Set([1000, 1001, 1005, 1006]);

/** A WebSocket whose messages are queued from the moment it opened. */
export class WsConnection {
  #ws?: WsClient;
  #what: string;
  #queue: WsMessage[] = [];
  #waiters: ((m: WsMessage) => void)[] = [];
  #closed = false;
  #ended = Promise.withResolvers<void>();
  /** True once this side asked to close (its end is then normal, however the server answers). */
  #closedHere = false;
  /** The close code and reason, once closed. */
  closeInfo?: { code: number; reason: string };

  private constructor(what: string) {
    this.#what = what;
  }

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
    const conn = new WsConnection(what);
    try {
      conn.#ws = await openWebSocket(url, headers, {
        onMessage: (m) => conn.#push(m),
        onClose: (code, reason) => {
          conn.closeInfo = { code, reason };
          conn.#closed = true;
          conn.#push(undefined);
          conn.#ended.resolve();
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

  /**
   * Close the socket (normal closure); the close handshake is bounded
   * (`CLOSE_WAIT_MS` of `ws_client.ts`).
   */
  close(): void {
    this.#closedHere = true;
    this.#ws?.close(1000);
  }

  /** Close the socket and resolve once it is closed (within the close handshake's bound). */
  closeAndWait(): Promise<void> {
    this.close();
    return this.#ended.promise;
  }

  /**
   * The connection as a byte tunnel: binary frames both ways. The readable
   * side ends when the socket closed normally (or ended without a close
   * frame) or after this side closed it; it ends with a provider error when
   * the server sent a text frame (its text) or closed with an error code
   * (1011, …). Closing or aborting the writable side, or cancelling the
   * readable side, closes the socket and resolves once it is closed.
   */
  tunnel(): ByteTunnel {
    const readable = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const m = await this.next();
        if (m === undefined) {
          const error = this.#abnormalEnd();
          if (error) controller.error(error);
          else controller.close();
        } else if (typeof m === "string") {
          controller.error(new CrabboxError("provider", "ws_text", `tunnel: ${m.slice(0, 200)}`));
          this.close();
        } else controller.enqueue(m);
      },
      cancel: () => this.closeAndWait(),
    });
    const writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.send(chunk),
      close: () => this.closeAndWait(),
      abort: () => this.closeAndWait(),
    });
    return { readable, writable };
  }

  /** The error of a close the server caused abnormally, or undefined for a normal end. */
  #abnormalEnd(): CrabboxError | undefined {
    const info = this.closeInfo;
    if (this.#closedHere || !info || NORMAL_CLOSE.has(info.code)) return undefined;
    const reason = info.reason ? ` ${info.reason.slice(0, 200)}` : "";
    return new CrabboxError(
      "provider",
      "ws_closed_error",
      `${this.#what}: the server closed the tunnel with ${info.code}${reason}`,
    );
  }
}
