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
  /**
   * The error message repeats the whole request body after the message, the
   * way some APIs answer a validation error (see {@link faultMessage}).
   */
  echoRequest?: boolean;
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

/**
 * The provider message of a fault: its `message` (else its code), followed
 * by the raw request body when the fault echoes the request.
 *
 * @example
 * ```ts
 * import { faultMessage } from "./fake_http.ts";
 * faultMessage({ status: 422, code: "invalid_input", echoRequest: true }, '{"a":1}');
 * // 'invalid_input: {"a":1}'
 * ```
 */
export function faultMessage(fault: Fault, requestBody: string): string {
  const message = fault.message ?? fault.code;
  return fault.echoRequest ? `${message}: ${requestBody}` : message;
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
 * Record a request (method, path — the URL's, or `path` when the fake strips
 * an API prefix — query, headers with `secretHeaders` redacted) in `log`;
 * `done(res)` stores the answered status and returns `res`.
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
  path?: string,
): { rec: RecordedRequest; done: (res: Response) => Response } {
  const url = new URL(req.url);
  const rec: RecordedRequest = {
    method: req.method,
    path: path ?? url.pathname,
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

/** A request's body as JSON, read from a clone; `undefined` when it is not JSON. */
export async function jsonBodyOf(req: Request): Promise<unknown> {
  try {
    return JSON.parse(await req.clone().text());
  } catch {
    return undefined;
  }
}

/** Options of {@link serveFakeRaw}. */
export interface RawServeOptions {
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
}

function indexOfCrlfCrlf(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

/**
 * Serve `handler` on 127.0.0.1 with a minimal HTTP/1.1 server that writes
 * each Response's `statusText` as the reason phrase (Deno.serve always sends
 * the canonical one; Proxmox puts its error message there). One request per
 * connection (`connection: close`), bodies by `content-length`.
 *
 * @example
 * ```ts
 * import { serveFakeRaw } from "./fake_http.ts";
 * const f = serveFakeRaw(() => new Response("{}", { status: 500, statusText: "VM is locked" }));
 * await f.close();
 * ```
 */
export function serveFakeRaw(
  handler: (req: Request) => Promise<Response> | Response,
  options: RawServeOptions = {},
): FakeHttp {
  const listener = options.tls
    ? Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: options.tls.cert,
      key: options.tls.key,
    })
    : Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const scheme = options.tls ? "https" : "http";
  const host = options.tls ? "localhost" : "127.0.0.1";
  const conns = new Set<Deno.Conn>();
  const enc = new TextEncoder();
  const dec = new TextDecoder();

  async function serveConn(conn: Deno.Conn) {
    conns.add(conn);
    try {
      let buf = new Uint8Array(0);
      const chunk = new Uint8Array(65536);
      let head = -1;
      while ((head = indexOfCrlfCrlf(buf)) < 0) {
        const n = await conn.read(chunk);
        if (n === null) return;
        buf = new Uint8Array([...buf, ...chunk.subarray(0, n)]);
      }
      const lines = dec.decode(buf.subarray(0, head)).split("\r\n");
      const [method, target] = lines[0].split(" ");
      const headers = new Headers();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        if (i > 0) headers.append(l.slice(0, i).trim(), l.slice(i + 1).trim());
      }
      const length = Number(headers.get("content-length") ?? "0");
      let body = buf.subarray(head + 4);
      while (body.length < length) {
        const n = await conn.read(chunk);
        if (n === null) break;
        body = new Uint8Array([...body, ...chunk.subarray(0, n)]);
      }
      const req = new Request(`${scheme}://${host}:${port}${target}`, {
        method,
        headers,
        body: method === "GET" || method === "HEAD" ? undefined : body.subarray(0, length),
      });
      const res = await handler(req);
      const payload = new Uint8Array(await res.arrayBuffer());
      const reason = (res.statusText || "OK").replace(/[\r\n]/g, " ");
      let out = `HTTP/1.1 ${res.status} ${reason}\r\n`;
      res.headers.forEach((v, k) => {
        if (k !== "content-length" && k !== "connection") out += `${k}: ${v}\r\n`;
      });
      out += `content-length: ${payload.length}\r\nconnection: close\r\n\r\n`;
      const bytes = new Uint8Array([...enc.encode(out), ...payload]);
      let written = 0;
      while (written < bytes.length) written += await conn.write(bytes.subarray(written));
    } catch {
      // client went away
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  const accepting = (async () => {
    try {
      for await (const conn of listener) serveConn(conn);
    } catch {
      // listener closed
    }
  })();
  return {
    url: `${scheme}://${host}:${port}`,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await accepting;
    },
  };
}
