/**
 * A fake what-is-my-IP service (like checkip.amazonaws.com: `GET /` answers
 * the caller's address as one line of plain text) on 127.0.0.1, with the
 * failures crabbox must survive: an answer that is not an address, and a
 * service that never answers.
 *
 * @example
 * ```ts
 * import { startFakeIpEcho } from "./ip_echo.ts";
 * await using echo = startFakeIpEcho({ answer: "203.0.113.7\n" });
 * ```
 *
 * @module
 */

import { serveFake } from "./fake_http.ts";

/** How the fake answers. */
export interface FakeIpEchoOptions {
  /** Body of every answer (default `"203.0.113.7\n"`). */
  answer?: string;
  /** Never answer (the request hangs until the client gives up or the fake closes). */
  hang?: boolean;
}

/** A running fake echo service. */
export interface FakeIpEcho extends AsyncDisposable {
  /** Its URL (`http://127.0.0.1:<port>/`). */
  url: string;
  /** Requests received. */
  hits: number;
  /** Stop serving. */
  close(): Promise<void>;
}

/** Start a fake what-is-my-IP service. */
export function startFakeIpEcho(options: FakeIpEchoOptions = {}): FakeIpEcho {
  const pending: (() => void)[] = [];
  const state = { hits: 0 };
  const http = serveFake(async (req) => {
    state.hits++;
    if (req.method !== "GET" || new URL(req.url).pathname !== "/") {
      return new Response("not found", { status: 404 });
    }
    if (options.hang) {
      await new Promise<void>((resolve) => pending.push(resolve));
      return new Response("", { status: 503 });
    }
    return new Response(options.answer ?? "203.0.113.7\n", {
      headers: { "content-type": "text/plain;charset=UTF-8" },
    });
  });
  const close = async () => {
    for (const release of pending.splice(0)) release();
    await http.close();
  };
  return {
    url: `${http.url}/`,
    get hits() {
      return state.hits;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
