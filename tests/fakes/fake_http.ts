/**
 * The common shell of crabbox's fake HTTP APIs: a real `Deno.serve` server on
 * 127.0.0.1 (port 0), a request log with secrets redacted, and fault
 * injection. Each fake (hetzner.ts, aws.ts, …) supplies the routing.
 *
 * @module
 */

/** One request as the fake saw it, secrets redacted. */
export interface RecordedRequest {
  /** HTTP method. */
  method: string;
  /** Path without query. */
  path: string;
  /** Query parameters (last value wins). */
  query: Record<string, string>;
  /** Headers, lowercase names; credentials replaced by `[redacted]`. */
  headers: Record<string, string>;
  /** Parsed body (JSON or form fields), with secret-bearing fields redacted. */
  body?: unknown;
  /** Status the fake answered with. */
  status: number;
}

/** A fault to answer instead of the real behaviour. */
export interface Fault {
  /** Only requests with this method (default: any). */
  method?: string;
  /** Only this path (string: exact; RegExp: test) — for AWS, matched against the Action. */
  match?: string | RegExp;
  /** How many matching requests get the fault (default 1). */
  times?: number;
  /** HTTP status. */
  status: number;
  /** Provider error code. */
  code: string;
  /** Provider error message. */
  message?: string;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

/** A running fake HTTP server. */
export interface FakeHttp {
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** Stop serving. */
  close(): Promise<void>;
}

/**
 * Serve `handler` on 127.0.0.1 with an OS-assigned port.
 *
 * @example
 * ```ts
 * import { serveFake } from "./fake_http.ts";
 * const f = serveFake(() => new Response("ok"));
 * await f.close();
 * ```
 */
export function serveFake(handler: (req: Request) => Promise<Response> | Response): FakeHttp {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    close: async () => {
      await server.shutdown();
    },
  };
}

/** Take the first matching fault (decrementing its count); `undefined` if none. */
export function takeFault<F extends Fault>(
  faults: F[],
  method: string,
  key: string,
): F | undefined {
  const i = faults.findIndex((f) =>
    (f.method === undefined || f.method === method) &&
    (f.match === undefined ||
      (typeof f.match === "string" ? f.match === key : f.match.test(key)))
  );
  if (i < 0) return undefined;
  const f = faults[i];
  const left = (f.times ?? 1) - 1;
  if (left <= 0) faults.splice(i, 1);
  else faults[i] = { ...f, times: left };
  return f;
}

/** Headers as a lowercase map with the named ones redacted. */
export function redactedHeaders(
  headers: Headers,
  secret: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((v, k) => {
    out[k] = secret.includes(k) ? "[redacted]" : v;
  });
  return out;
}

/**
 * Record a request (method, path, query, headers with `secretHeaders`
 * redacted) in `log`; `done(res)` stores the answered status and returns
 * `res`.
 *
 * @example
 * ```ts
 * import { recordRequest, type RecordedRequest } from "./fake_http.ts";
 * const log: RecordedRequest[] = [];
 * const { done } = recordRequest(log, new Request("http://127.0.0.1/x"), ["authorization"]);
 * done(new Response("ok")); // log[0].status === 200
 * ```
 */
export function recordRequest(
  log: RecordedRequest[],
  req: Request,
  secretHeaders: readonly string[],
): { rec: RecordedRequest; done: (res: Response) => Response } {
  const url = new URL(req.url);
  const rec: RecordedRequest = {
    method: req.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: redactedHeaders(req.headers, secretHeaders),
    status: 0,
  };
  log.push(rec);
  return {
    rec,
    done: (res) => {
      rec.status = res.status;
      return res;
    },
  };
}
