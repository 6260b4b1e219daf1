/**
 * A fake Daytona API that enforces the documented contract: Bearer auth with
 * an API key, or a JWT plus `X-Daytona-Organization-ID`; the `POST /sandbox`
 * shape (name, a known snapshot, a labels object of strings, interval types,
 * target `us`/`eu`); sandbox states creating → pulling_snapshot → starting →
 * started over several reads; `GET /sandbox` with the `labels` JSON query
 * (invalid JSON is 400) and `limit`/`cursor` pagination answering
 * `{items, nextCursor}` (or, with `legacyList`, the older plain array);
 * `POST /sandbox/{id}/ssh-access?expiresInMinutes=N` answering
 * `{token, expiresAt, sshCommand}`; `DELETE` answering 409 while the sandbox
 * changes state, then destroying → gone; 404 bodies in the newer error shape
 * `{statusCode, message, code, timestamp, path, method}`; a quota limit.
 *
 * Not modelled (uncertain): the exact status of a JWT without organization
 * header (the fake answers 400), label limits, toolbox/exec API, archive and
 * auto-stop timers, the CLI profile file.
 *
 * @example
 * ```ts
 * import { startFakeDaytona } from "./daytona.ts";
 * await using fake = startFakeDaytona();
 * const env = { DAYTONA_API_KEY: fake.apiKey, CRABBOX_DAYTONA_API_URL: fake.url,
 *   DAYTONA_SNAPSHOT: "daytonaio/sandbox:0.4.3" };
 * ```
 *
 * @module
 */

import {
  type FakeHttp,
  type Fault,
  jsonBodyOf,
  type RecordedRequest,
  recordRequest,
  serveFake,
  takeFault,
} from "./fake_http.ts";

/** A sandbox in the fake's state. */
export interface FakeDaytonaSandbox {
  /** Id (UUID). */
  id: string;
  /** Create body. */
  body: Record<string, unknown>;
  /** Labels (replaced as a whole). */
  labels: Record<string, string>;
  /** Reads so far. */
  polls: number;
  /** Reads left in `destroying` after delete (undefined: not deleted). */
  destroyingPolls?: number;
  /** 409s left to answer on delete. */
  conflictsLeft: number;
  /** Creation time. */
  createdAt: string;
}

/** An issued gateway token. */
export interface FakeDaytonaToken {
  /** Sandbox id. */
  sandboxId: string;
  /** Expiry (epoch ms). */
  expiresAt: number;
}

/** Options of {@link startFakeDaytona}. */
export interface FakeDaytonaOptions {
  /** Accepted API key. */
  apiKey?: string;
  /** Accepted JWT (needs the organization header). */
  jwt?: string;
  /** Organization id. */
  organizationId?: string;
  /** Known snapshots. */
  snapshots?: string[];
  /** Reads in each start-up state (default 1). */
  statePolls?: number;
  /** Reads a deleted sandbox stays `destroying` (default 1). */
  destroyingPolls?: number;
  /** 409 answers to the first delete(s) of each sandbox (default 0). */
  deleteConflicts?: number;
  /** Page size cap (default 100). */
  maxLimit?: number;
  /** Answer list calls with the older plain array (no labels filter, no cursor). */
  legacyList?: boolean;
  /** Most sandboxes at once; more is a quota error. */
  quota?: number;
  /** Gateway host in `sshCommand` (default ssh.app.daytona.io). */
  gatewayHost?: string;
  /** Gateway port (default 22: no `-p` in `sshCommand`). */
  gatewayPort?: number;
  /** Tokens to hand out, in order (default random 32 characters). */
  tokens?: string[];
  /** Clock (epoch ms) for token expiry. */
  now?: () => number;
}

/** A running fake Daytona API. */
export interface FakeDaytona extends AsyncDisposable {
  /** Base URL for `CRABBOX_DAYTONA_API_URL`. */
  url: string;
  /** The API key. */
  apiKey: string;
  /** The JWT. */
  jwt: string;
  /** The organization id. */
  organizationId: string;
  /** Every request, secrets redacted. */
  requests: RecordedRequest[];
  /** Sandboxes by id. */
  sandboxes: Map<string, FakeDaytonaSandbox>;
  /** Issued gateway tokens. */
  tokens: Map<string, FakeDaytonaToken>;
  /** Queue a fault (`match` is the path without `/api`). */
  inject(fault: Fault): void;
  /** Stop the server. */
  close(): Promise<void>;
}

const START_STATES = ["creating", "pulling_snapshot", "starting"];

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function randomToken(): string {
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => abc[b % abc.length]).join(
    "",
  );
}

function isStringMap(v: unknown): v is Record<string, string> {
  return v !== null && typeof v === "object" && !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === "string");
}

/**
 * Start a fake Daytona API on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { startFakeDaytona } from "./daytona.ts";
 * await using fake = startFakeDaytona({ gatewayHost: "127.0.0.1", gatewayPort: 2222 });
 * ```
 */
export function startFakeDaytona(options: FakeDaytonaOptions = {}): FakeDaytona {
  const apiKey = options.apiKey ?? "dtn_fake0123456789abcdef0123456789";
  const jwt = options.jwt ?? "eyJhbGciOiJIUzI1NiJ9.fake.jwt";
  const organizationId = options.organizationId ?? "org-fake-0001";
  const snapshots = new Set(options.snapshots ?? ["daytonaio/sandbox:0.4.3", "crabbox-test"]);
  const statePolls = options.statePolls ?? 1;
  const maxLimit = options.maxLimit ?? 100;
  const now = options.now ?? Date.now;
  const handOut = [...(options.tokens ?? [])];
  const sandboxes = new Map<string, FakeDaytonaSandbox>();
  const tokens = new Map<string, FakeDaytonaToken>();
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];

  const error = (status: number, message: string, path: string, method: string) =>
    json(status, {
      statusCode: status,
      source: "fake-daytona",
      code: status === 404
        ? "NOT_FOUND"
        : status === 409
        ? "CONFLICT"
        : status === 401
        ? "UNAUTHORIZED"
        : "BAD_REQUEST",
      message,
      timestamp: new Date(now()).toISOString(),
      path,
      method,
    });

  const stateOf = (sb: FakeDaytonaSandbox) => {
    if (sb.destroyingPolls !== undefined) return "destroying";
    const i = Math.floor(sb.polls / statePolls);
    return i < START_STATES.length ? START_STATES[i] : "started";
  };
  const view = (sb: FakeDaytonaSandbox) => ({
    id: sb.id,
    organizationId,
    name: sb.body.name,
    snapshot: sb.body.snapshot,
    user: sb.body.user ?? "daytona",
    env: sb.body.env ?? {},
    labels: sb.labels,
    public: false,
    target: sb.body.target ?? "us",
    cpu: 1,
    gpu: 0,
    memory: 1,
    disk: 3,
    state: stateOf(sb),
    desiredState: sb.destroyingPolls !== undefined ? "destroyed" : "started",
    errorReason: null,
    autoStopInterval: sb.body.autoStopInterval ?? 15,
    autoDeleteInterval: sb.body.autoDeleteInterval ?? -1,
    createdAt: sb.createdAt,
  });
  /** A read: advances start-up or destruction; a destroyed sandbox disappears. */
  const touch = (sb: FakeDaytonaSandbox) => {
    if (sb.destroyingPolls !== undefined) {
      if (--sb.destroyingPolls <= 0) sandboxes.delete(sb.id);
    } else sb.polls++;
  };

  async function route(req: Request, path: string, q: URLSearchParams): Promise<Response> {
    const auth = req.headers.get("authorization");
    const org = req.headers.get("x-daytona-organization-id");
    if (auth === `Bearer ${jwt}`) {
      if (!org) return error(400, "X-Daytona-Organization-ID header is required", path, req.method);
      if (org !== organizationId) {
        return error(403, "not a member of this organization", path, req.method);
      }
    } else if (auth !== `Bearer ${apiKey}`) {
      return error(401, "Unauthorized", path, req.method);
    }
    if (path === "/sandbox" && req.method === "GET") {
      let filter: Record<string, string> = {};
      if (q.has("labels")) {
        try {
          const parsed = JSON.parse(q.get("labels")!);
          if (!isStringMap(parsed)) throw new Error();
          filter = parsed;
        } catch {
          return error(400, "labels must be a JSON object of strings", path, req.method);
        }
      }
      const all = [...sandboxes.values()].filter((sb) =>
        options.legacyList || Object.entries(filter).every(([k, v]) => sb.labels[k] === v)
      );
      if (options.legacyList) return json(200, all.map(view));
      const limit = Number(q.get("limit") ?? "100");
      if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
        return error(400, "limit must be 1..200", path, req.method);
      }
      const start = q.has("cursor") ? Number(atob(q.get("cursor")!)) : 0;
      if (!Number.isInteger(start) || start < 0) {
        return error(400, "invalid cursor", path, req.method);
      }
      const end = start + Math.min(limit, maxLimit);
      return json(200, {
        items: all.slice(start, end).map(view),
        nextCursor: end < all.length ? btoa(String(end)) : null,
      });
    }
    if (path === "/sandbox" && req.method === "POST") {
      let b: Record<string, unknown>;
      try {
        b = JSON.parse(await req.text());
      } catch {
        return error(400, "invalid JSON", path, req.method);
      }
      if (b === null || typeof b !== "object" || Array.isArray(b)) {
        return error(400, "body must be an object", path, req.method);
      }
      if (b.name !== undefined && typeof b.name !== "string") {
        return error(400, "name must be a string", path, req.method);
      }
      if (typeof b.snapshot !== "string" || !snapshots.has(b.snapshot)) {
        return error(400, `Snapshot ${String(b.snapshot)} not found`, path, req.method);
      }
      if (b.labels !== undefined && !isStringMap(b.labels)) {
        return error(400, "labels must be an object of strings", path, req.method);
      }
      if (
        b.autoStopInterval !== undefined &&
        !(Number.isInteger(b.autoStopInterval) && (b.autoStopInterval as number) >= 0)
      ) {
        return error(400, "autoStopInterval must be a non-negative integer", path, req.method);
      }
      if (
        b.autoDeleteInterval !== undefined &&
        !(Number.isInteger(b.autoDeleteInterval) && (b.autoDeleteInterval as number) >= -1)
      ) {
        return error(400, "autoDeleteInterval must be an integer >= -1", path, req.method);
      }
      if (b.target !== undefined && b.target !== "us" && b.target !== "eu") {
        return error(400, "target must be us or eu", path, req.method);
      }
      if (
        [...sandboxes.values()].some((sb) =>
          sb.body.name === b.name && sb.destroyingPolls === undefined
        )
      ) {
        return error(409, `Sandbox with name ${b.name} already exists`, path, req.method);
      }
      if (options.quota !== undefined && sandboxes.size >= options.quota) {
        return error(400, "Total CPU quota exceeded. Maximum allowed: 4", path, req.method);
      }
      const sb: FakeDaytonaSandbox = {
        id: crypto.randomUUID(),
        body: b,
        labels: { ...(b.labels as Record<string, string> ?? {}) },
        polls: 0,
        conflictsLeft: options.deleteConflicts ?? 0,
        createdAt: new Date(now()).toISOString(),
      };
      sandboxes.set(sb.id, sb);
      return json(200, view(sb));
    }
    const m = /^\/sandbox\/([^/]+)(\/ssh-access|\/labels)?$/.exec(path);
    if (m) {
      const key = decodeURIComponent(m[1]);
      const sb = sandboxes.get(key) ?? [...sandboxes.values()].find((s) => s.body.name === key);
      if (!sb) return error(404, `Sandbox with ID or name ${key} not found`, path, req.method);
      if (req.method === "GET" && !m[2]) {
        const v = view(sb);
        touch(sb);
        return json(200, v);
      }
      if (req.method === "POST" && m[2] === "/ssh-access") {
        await req.body?.cancel();
        if (stateOf(sb) !== "started") {
          return error(400, "Sandbox is not started", path, req.method);
        }
        const minutes = Number(q.get("expiresInMinutes") ?? "60");
        if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
          return error(400, "expiresInMinutes must be 1..1440", path, req.method);
        }
        const token = handOut.shift() ?? randomToken();
        const expiresAt = now() + minutes * 60_000;
        tokens.set(token, { sandboxId: sb.id, expiresAt });
        const host = options.gatewayHost ?? "ssh.app.daytona.io";
        const port = options.gatewayPort ?? 22;
        return json(200, {
          token,
          expiresAt: new Date(expiresAt).toISOString(),
          sshCommand: port === 22 ? `ssh ${token}@${host}` : `ssh -p ${port} ${token}@${host}`,
        });
      }
      if (req.method === "PUT" && m[2] === "/labels") {
        const b = await req.json().catch(() => undefined);
        if (!isStringMap(b?.labels)) {
          return error(400, "labels must be an object of strings", path, req.method);
        }
        sb.labels = { ...b.labels };
        return json(200, view(sb));
      }
      if (req.method === "DELETE" && !m[2]) {
        if (sb.destroyingPolls !== undefined) return json(200, view(sb));
        if (stateOf(sb) !== "started" || sb.conflictsLeft > 0) {
          if (sb.conflictsLeft > 0) sb.conflictsLeft--;
          else sb.polls++; // the transition moves on meanwhile
          return error(409, "Sandbox state change in progress", path, req.method);
        }
        sb.destroyingPolls = options.destroyingPolls ?? 1;
        for (const [t, info] of tokens) if (info.sandboxId === sb.id) tokens.delete(t);
        return json(200, view(sb));
      }
    }
    return error(404, `Cannot ${req.method} ${path}`, path, req.method);
  }

  const http: FakeHttp = serveFake(async (req) => {
    const u = new URL(req.url);
    const path = u.pathname.replace(/^\/api/, "");
    const { rec: record } = recordRequest(requests, req, ["authorization"], path);
    const fault = takeFault(faults, req.method, path);
    let res: Response;
    if (fault) {
      await req.body?.cancel();
      res = error(fault.status, fault.message ?? fault.code, path, req.method);
      for (const [k, v] of Object.entries(fault.headers ?? {})) res.headers.set(k, v);
    } else if (!u.pathname.startsWith("/api/")) {
      res = error(404, "not found", path, req.method);
    } else {
      if (req.method === "POST" || req.method === "PUT") {
        record.body = await jsonBodyOf(req);
      }
      res = await route(req, path, u.searchParams);
    }
    record.status = res.status;
    return res;
  });

  return {
    url: `${http.url}/api`,
    apiKey,
    jwt,
    organizationId,
    requests,
    sandboxes,
    tokens,
    inject: (f) => faults.push(f),
    close: () => http.close(),
    [Symbol.asyncDispose]: () => http.close(),
  };
}
