/**
 * A fake Sprites API (REST + the exec and proxy WebSockets) on 127.0.0.1 that
 * enforces the documented contract: Bearer auth on every call and socket,
 * `POST /v1/sprites` bodies (`name`, string `labels`), 201 on create, names
 * unique (409), 404 for unknown sprites, `prefix=` + `max_results` (1..50) +
 * `continuation_token` paging with `has_more`/`next_continuation_token`, the
 * `{"error","message",…}` body with `Retry-After` on 429, the binary exec
 * framing (stream id byte; exit frame carries the code) and the proxy
 * handshake (`{"host","port"}` text → `{"status":"connected"}` → raw bytes).
 *
 * The exec stand-in really runs the command (`bash -lc <script>`) as a child
 * process with the sprite's own HOME (a temp dir) and a `sprite-env` shim on
 * PATH that records service registrations; the lines the script leaves in
 * `$HOME/.ssh/authorized_keys` are copied to the bridged box's authorized_keys
 * file, so only keys the exec authorized can log in. The proxy bridges to
 * the TCP address `bridge` returns (a real `local` box's sshd).
 *
 * Not modelled: hibernation (sprites stay `warm`), real package installs,
 * `sprite-env` semantics beyond recording, label charset/limits and the exact
 * duplicate-name status (both [uncertain] in the research), list items
 * carrying labels (off by default: the docs' example shows only names).
 *
 * @module
 */

import {
  type FakeHttp,
  type Fault,
  type RecordedRequest,
  redactedHeaders,
  serveFake,
  takeFault,
} from "./fake_http.ts";
import { bridgeToTcp, type TcpAddress } from "./ws_bridge.ts";

/** A sprite in the fake's state. */
export interface FakeSprite {
  /** Name (the id). */
  name: string;
  /** Labels as sent. */
  labels: string[];
  /** Status. */
  status: string;
  /** Creation time. */
  createdAt: string;
  /** The sprite's HOME for exec (a temp dir). */
  home: string;
  /** argv of each exec run in it. */
  execs: { argv: string[]; env: Record<string, string>; code: number }[];
  /** Services registered through the `sprite-env` shim (its argv lines). */
  services: string[];
}

/** Options of {@link startFakeSprites}. */
export interface FakeSpritesOptions {
  /** Accepted token. */
  token?: string;
  /** Largest page (default 50). */
  maxPerPage?: number;
  /** List items carry labels (default false: names only, like the docs' example). */
  listLabels?: boolean;
  /** Where a sprite's proxy connects (the box's sshd); no bridge → the proxy answers an error. */
  bridge?: (sprite: FakeSprite) => TcpAddress | undefined;
  /** The authorized_keys file of the bridged box, kept in sync with the sprite's HOME. */
  authorizedKeysFile?: (sprite: FakeSprite) => string | undefined;
}

/** A running fake. */
export interface FakeSprites extends AsyncDisposable {
  /** Base URL for `CRABBOX_SPRITES_API_URL`. */
  url: string;
  /** The accepted token. */
  token: string;
  /** Requests (secrets redacted). */
  requests: RecordedRequest[];
  /** Sprites by name. */
  sprites: Map<string, FakeSprite>;
  /** Proxy handshakes received (the parsed hello). */
  proxyHellos: unknown[];
  /** Queue a fault (`match` is the path). */
  inject(fault: Fault & { retryAfter?: number }): void;
  /** Stop serving and remove the sprites' temp homes. */
  close(): Promise<void>;
}

const enc = new TextEncoder();

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
  });
}

function error(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
) {
  return json(status, { error: code, message }, headers);
}

/**
 * Start the fake.
 *
 * @example
 * ```ts
 * import { startFakeSprites } from "./sprites.ts";
 * await using fake = startFakeSprites();
 * const env = { SPRITES_TOKEN: fake.token, CRABBOX_SPRITES_API_URL: fake.url };
 * ```
 */
export function startFakeSprites(options: FakeSpritesOptions = {}): FakeSprites {
  const token = options.token ?? "sprites-test-token-0123456789";
  const maxPerPage = options.maxPerPage ?? 50;
  const sprites = new Map<string, FakeSprite>();
  const requests: RecordedRequest[] = [];
  const faults: (Fault & { retryAfter?: number })[] = [];
  const proxyHellos: unknown[] = [];
  const shimDir = Deno.makeTempDirSync({ prefix: "fake-sprites-shim-" });
  Deno.writeTextFileSync(
    `${shimDir}/sprite-env`,
    '#!/bin/sh\nprintf \'%s\\n\' "$*" >> "$HOME/.sprite-env-calls"\n' +
      'if [ "$1 $2" = "services list" ]; then cat "$HOME/.sprite-services" 2>/dev/null; fi\n' +
      'if [ "$1 $2" = "services create" ]; then echo "$3" >> "$HOME/.sprite-services"; fi\n',
    { mode: 0o755 },
  );

  const view = (s: FakeSprite, full: boolean) => ({
    id: `sprite-${s.name}`,
    name: s.name,
    organization: "fake-org",
    org_slug: "fake-org",
    status: s.status,
    url: `https://${s.name}.sprites.app`,
    ...(full ? { labels: s.labels, created_at: s.createdAt } : {}),
    updated_at: s.createdAt,
  });

  function syncKeys(s: FakeSprite) {
    const file = options.authorizedKeysFile?.(s);
    if (!file) return;
    let keys = "";
    try {
      keys = Deno.readTextFileSync(`${s.home}/.ssh/authorized_keys`);
    } catch { /* none yet */ }
    Deno.writeTextFileSync(file, keys, { mode: 0o600 });
  }

  async function runExec(
    socket: WebSocket,
    s: FakeSprite,
    argv: string[],
    env: Record<string, string>,
  ) {
    socket.binaryType = "arraybuffer";
    const send = (stream: number, bytes: Uint8Array) => {
      if (socket.readyState !== WebSocket.OPEN) return;
      const frame = new Uint8Array(bytes.length + 1);
      frame[0] = stream;
      frame.set(bytes, 1);
      socket.send(frame);
    };
    await Deno.writeTextFile(`${s.home}/.bash_profile`, `export PATH="${shimDir}:$PATH"\n`);
    let code = 127;
    try {
      const child = new Deno.Command(argv[0], {
        args: argv.slice(1),
        cwd: s.home,
        clearEnv: true,
        env: { HOME: s.home, PATH: `${shimDir}:/usr/sbin:/usr/bin:/sbin:/bin`, ...env },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const pump = async (r: ReadableStream<Uint8Array>, stream: number) => {
        for await (const chunk of r) send(stream, chunk);
      };
      await Promise.all([pump(child.stdout, 1), pump(child.stderr, 2)]);
      code = (await child.status).code;
    } catch (e) {
      send(2, enc.encode(`exec: ${(e as Error).message}\n`));
    }
    s.execs.push({ argv, env, code });
    try {
      s.services = Deno.readTextFileSync(`${s.home}/.sprite-services`).split("\n").filter(Boolean);
    } catch { /* none */ }
    syncKeys(s);
    send(3, Uint8Array.of(code & 0xff));
    socket.close(1000);
  }

  function proxy(socket: WebSocket, s: FakeSprite) {
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      socket.onmessage = null;
      let hello: { host?: unknown; port?: unknown } = {};
      try {
        if (typeof e.data !== "string") throw new Error("binary");
        hello = JSON.parse(e.data);
      } catch {
        socket.send(
          JSON.stringify({ status: "error", message: "expected a JSON {host, port} text frame" }),
        );
        socket.close(1002);
        return;
      }
      proxyHellos.push(hello);
      if (typeof hello.host !== "string" || !Number.isInteger(hello.port)) {
        socket.send(
          JSON.stringify({ status: "error", message: "host (string) and port (integer) required" }),
        );
        socket.close(1002);
        return;
      }
      const addr = options.bridge?.(s);
      if (!addr) {
        socket.send(
          JSON.stringify({
            status: "error",
            message: `nothing listens on ${hello.host}:${hello.port}`,
          }),
        );
        socket.close(1011);
        return;
      }
      // "connected" once the TCP connection to the target is up, as the name says
      bridgeToTcp(socket, addr, (ok) => {
        if (ok) {
          socket.send(
            JSON.stringify({ status: "connected", target: `${hello.host}:${hello.port}` }),
          );
        } else {
          socket.send(
            JSON.stringify({
              status: "error",
              message: `connect to ${hello.host}:${hello.port} failed`,
            }),
          );
          socket.close(1011);
        }
      });
    };
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rec: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: redactedHeaders(req.headers, ["authorization"]),
      status: 0,
    };
    requests.push(rec);
    const answer = (r: Response) => {
      rec.status = r.status;
      return r;
    };
    if (req.headers.get("authorization") !== `Bearer ${token}`) {
      return answer(error(401, "unauthorized", "invalid or missing token"));
    }
    const fault = takeFault(faults, req.method, url.pathname);
    if (fault) {
      const headers: Record<string, string> = { ...fault.headers };
      if (fault.status === 429) {
        headers["retry-after"] = String(fault.retryAfter ?? 1);
        headers["x-ratelimit-limit"] = "10";
        headers["x-ratelimit-remaining"] = "0";
        headers["x-ratelimit-reset"] = String(
          Math.floor(Date.now() / 1000) + (fault.retryAfter ?? 1),
        );
      }
      return answer(json(fault.status, {
        error: fault.code,
        message: fault.message ?? fault.code,
        ...(fault.status === 429
          ? { limit: 10, window_seconds: 60, retry_after_seconds: fault.retryAfter ?? 1 }
          : {}),
      }, headers));
    }
    const m = /^\/v1\/sprites(?:\/([^/]+))?(?:\/(exec|proxy))?$/.exec(url.pathname);
    if (!m) return answer(error(404, "not_found", `no route ${url.pathname}`));
    const [, name, sub] = m;
    if (sub) {
      const s = sprites.get(decodeURIComponent(name));
      if (!s) return answer(error(404, "not_found", `sprite ${name} not found`));
      if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return answer(error(400, "bad_request", `${sub} needs a WebSocket upgrade`));
      }
      if (sub === "exec") {
        const argv = url.searchParams.getAll("cmd");
        if (argv.length === 0) return answer(error(400, "bad_request", "cmd is required"));
        const env: Record<string, string> = {};
        for (const kv of url.searchParams.getAll("env")) {
          const i = kv.indexOf("=");
          if (i <= 0) return answer(error(400, "bad_request", `bad env ${kv}`));
          env[kv.slice(0, i)] = kv.slice(i + 1);
        }
        const { socket, response } = Deno.upgradeWebSocket(req);
        socket.onopen = () => runExec(socket, s, argv, env);
        return answer(response);
      }
      const { socket, response } = Deno.upgradeWebSocket(req);
      proxy(socket, s);
      return answer(response);
    }
    if (name === undefined) {
      if (req.method === "GET") {
        const max = Number(url.searchParams.get("max_results") ?? "50");
        if (!Number.isInteger(max) || max < 1 || max > 50) {
          return answer(error(400, "bad_request", "max_results must be 1..50"));
        }
        const prefix = url.searchParams.get("prefix") ?? "";
        const tokenParam = url.searchParams.get("continuation_token");
        let start = 0;
        if (tokenParam !== null) {
          const decoded = /^tok-(\d+)$/.exec(tokenParam);
          if (!decoded) return answer(error(400, "bad_request", "invalid continuation_token"));
          start = Number(decoded[1]);
        }
        const all = [...sprites.values()].filter((s) => s.name.startsWith(prefix))
          .sort((a, b) => a.name.localeCompare(b.name));
        const size = Math.min(max, maxPerPage);
        const page = all.slice(start, start + size);
        const more = start + size < all.length;
        return answer(json(200, {
          sprites: page.map((s) => view(s, options.listLabels === true)),
          has_more: more,
          next_continuation_token: more ? `tok-${start + size}` : null,
        }));
      }
      if (req.method === "POST") {
        if (!req.headers.get("content-type")?.startsWith("application/json")) {
          return answer(error(415, "unsupported_media_type", "send application/json"));
        }
        let body: Record<string, unknown>;
        try {
          body = await req.json();
        } catch {
          return answer(error(400, "bad_request", "invalid JSON"));
        }
        rec.body = body;
        const allowed = new Set([
          "name",
          "labels",
          "wait_for_capacity",
          "url_settings",
          "config",
          "environment",
        ]);
        const unknown = Object.keys(body).find((k) => !allowed.has(k));
        if (unknown) return answer(error(400, "bad_request", `unknown field ${unknown}`));
        if (typeof body.name !== "string" || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(body.name)) {
          return answer(error(400, "bad_request", "name must be lowercase letters, digits and -"));
        }
        if (
          body.labels !== undefined &&
          (!Array.isArray(body.labels) || body.labels.some((l) => typeof l !== "string"))
        ) {
          return answer(error(400, "bad_request", "labels must be an array of strings"));
        }
        if (sprites.has(body.name)) {
          return answer(error(409, "already_exists", `sprite ${body.name} already exists`));
        }
        const s: FakeSprite = {
          name: body.name,
          labels: (body.labels as string[] | undefined) ?? [],
          status: "warm",
          createdAt: new Date().toISOString(),
          home: Deno.makeTempDirSync({ prefix: "fake-sprite-home-" }),
          execs: [],
          services: [],
        };
        sprites.set(s.name, s);
        return answer(json(201, view(s, true)));
      }
      return answer(error(405, "method_not_allowed", req.method));
    }
    const s = sprites.get(decodeURIComponent(name));
    if (!s) return answer(error(404, "not_found", `sprite ${name} not found`));
    if (req.method === "GET") return answer(json(200, view(s, true)));
    if (req.method === "DELETE") {
      sprites.delete(s.name);
      await Deno.remove(s.home, { recursive: true }).catch(() => {});
      return answer(new Response(null, { status: 204 }));
    }
    return answer(error(405, "method_not_allowed", req.method));
  }

  const server: FakeHttp = serveFake(handle);
  const close = async () => {
    await server.close();
    for (const s of sprites.values()) {
      await Deno.remove(s.home, { recursive: true }).catch(() => {});
    }
    await Deno.remove(shimDir, { recursive: true }).catch(() => {});
  };
  return {
    url: server.url,
    token,
    requests,
    sprites,
    proxyHellos,
    inject: (f) => faults.push(f),
    close,
    [Symbol.asyncDispose]: close,
  };
}
