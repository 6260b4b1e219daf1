/**
 * A fake Hetzner Cloud API v1 that enforces the documented contract: Bearer
 * auth, JSON bodies, the `{"error": {code, message, details}}` envelope,
 * label rules and `label_selector`, pagination in `meta.pagination`, actions,
 * server status transitions, SSH keys unique by name and fingerprint, and
 * `RateLimit-*` headers. Faults (429, 5xx, capacity) are injected per route.
 *
 * @example
 * ```ts
 * import { startFakeHetzner } from "./hetzner.ts";
 * await using fake = startFakeHetzner({ maxPerPage: 2 });
 * const env = { HCLOUD_TOKEN: fake.token, CRABBOX_HETZNER_API_URL: fake.url };
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  type FakeHttp,
  type Fault,
  faultMessage,
  type RecordedRequest,
  redactedHeaders,
  serveFake,
  takeFault,
} from "./fake_http.ts";

/** A server in the fake's state. */
export interface FakeServer {
  /** Id. */
  id: number;
  /** Name. */
  name: string;
  /** Labels. */
  labels: Record<string, string>;
  /** user_data as sent (never echoed by the API, kept for assertions). */
  userData?: string;
  /** SSH key ids the server was created with. */
  sshKeyIds: number[];
  /** Server type name. */
  serverType: string;
  /** Image name. */
  image: string;
  /** Location name. */
  location: string;
  /** Public IPv4. */
  ipv4: string;
  /** Creation time. */
  created: string;
  /** Status reads so far (drives initializing → starting → running). */
  polls: number;
  /** Id of the create action. */
  actionId: number;
  /** Set when deleted: status reads left showing `deleting`. */
  deletingPolls?: number;
}

/** An SSH key in the fake's state. */
export interface FakeSshKey {
  /** Id. */
  id: number;
  /** Name. */
  name: string;
  /** Public key line. */
  publicKey: string;
  /** MD5 fingerprint. */
  fingerprint: string;
  /** Labels. */
  labels: Record<string, string>;
}

/** Options of {@link startFakeHetzner}. */
export interface FakeHetznerOptions {
  /** Accepted read-write token (default a fixed test token). */
  token?: string;
  /** A token that may only GET (writes get 403 `forbidden`). */
  readOnlyToken?: string;
  /** Largest page the fake returns (default 50, like Hetzner; tests use 2). */
  maxPerPage?: number;
  /** Reads during which the create action is still `running` (default 1). */
  actionPolls?: number;
  /** Further server reads in `starting` before `running` (default 1). */
  startPolls?: number;
  /** Reads by id a deleted server stays visible as `deleting` (default 0). */
  deletePolls?: number;
  /** Public IPv4 only once `running` (default: assigned at create, like Hetzner). */
  ipv4WhenRunning?: boolean;
  /** Chooses the public IPv4 of a new server (e.g. a local box's 127.77.x.y). */
  onCreate?: (server: FakeServer) => { ipv4?: string } | void;
  /** Known server types. */
  serverTypes?: string[];
  /** Known images. */
  images?: string[];
  /** Known locations. */
  locations?: string[];
  /** Server type (optionally per location) that answers `resource_unavailable`. */
  unavailable?: { serverType: string; location?: string }[];
}

/** A fault for the fake Hetzner API; `field` fills `details.fields`. */
export type HetznerFault = Fault & { rateLimitResetIn?: number; field?: string };

/** A running fake Hetzner API. */
export interface FakeHetzner extends AsyncDisposable {
  /** Base URL to put in `CRABBOX_HETZNER_API_URL` (ends in `/v1`). */
  url: string;
  /** The read-write token. */
  token: string;
  /** Every request, secrets redacted. */
  requests: RecordedRequest[];
  /** Servers by id. */
  servers: Map<number, FakeServer>;
  /** SSH keys by id. */
  sshKeys: Map<number, FakeSshKey>;
  /** Queue a fault for matching requests (`match` is the path without `/v1`). */
  inject(fault: HetznerFault): void;
  /** Stop the server. */
  close(): Promise<void>;
}

const NAME = /^[a-z0-9A-Z]([-_.a-z0-9A-Z]{0,61}[a-z0-9A-Z])?$/;
const PREFIX = /^[a-z0-9A-Z]([-.a-z0-9A-Z]{0,251}[a-z0-9A-Z])?$/;
const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const KEY_TYPES = new Set([
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
]);
const SERVER_FIELDS = new Set([
  "name",
  "server_type",
  "image",
  "location",
  "datacenter",
  "start_after_create",
  "ssh_keys",
  "volumes",
  "networks",
  "firewalls",
  "user_data",
  "labels",
  "automount",
  "placement_group",
  "public_net",
]);

/** A documented error answer: `{"error": {"code", "message", "details"}}`. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }

  toResponse(extraHeaders: Record<string, string>): Response {
    const details = this.field ? { fields: [{ name: this.field, messages: [this.message] }] } : {};
    return json(this.status, { error: { code: this.code, message: this.message, details } }, {
      ...extraHeaders,
    });
  }
}

const invalid = (field: string, message: string) =>
  new ApiError(400, "invalid_input", message, field);

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Validate a label map by the hcloud-go rules; returns the error or undefined. */
export function labelError(labels: unknown): string | undefined {
  if (labels === null || typeof labels !== "object" || Array.isArray(labels)) {
    return "labels must be an object";
  }
  for (const [k, v] of Object.entries(labels)) {
    const slash = k.lastIndexOf("/");
    const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
    const name = slash >= 0 ? k.slice(slash + 1) : k;
    if (!NAME.test(name) || (prefix !== undefined && !PREFIX.test(prefix))) {
      return `label key '${k}' is invalid`;
    }
    if (prefix === "hetzner.cloud" || prefix?.endsWith(".hetzner.cloud")) {
      return `label key '${k}' uses the reserved prefix hetzner.cloud`;
    }
    if (typeof v !== "string" || (v !== "" && !NAME.test(v))) {
      return `label value of '${k}' is invalid`;
    }
  }
  return undefined;
}

type Term = (labels: Record<string, string>) => boolean;

/**
 * Parse a Hetzner `label_selector` (`k=v`, `k==v`, `k!=v`, `k`, `!k`,
 * `k in (a,b)`, `k notin (a,b)`, comma = AND). Throws on syntax errors.
 */
export function parseLabelSelector(selector: string): Term {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of selector) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (depth < 0) throw new Error("unbalanced parentheses");
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (depth !== 0) throw new Error("unbalanced parentheses");
  parts.push(cur);
  const checkKey = (k: string) => {
    const name = k.slice(k.lastIndexOf("/") + 1);
    if (!NAME.test(name)) throw new Error(`invalid label key '${k}'`);
    return k;
  };
  const checkValue = (v: string) => {
    if (v !== "" && !NAME.test(v)) throw new Error(`invalid label value '${v}'`);
    return v;
  };
  const terms: Term[] = parts.map((raw) => {
    const p = raw.trim();
    let m: RegExpMatchArray | null;
    if ((m = p.match(/^(\S+)\s+(in|notin)\s+\(([^()]*)\)$/))) {
      const key = checkKey(m[1]);
      const values = m[3].split(",").map((v) => checkValue(v.trim()));
      return m[2] === "in"
        ? (l) => key in l && values.includes(l[key])
        : (l) => !(key in l) || !values.includes(l[key]);
    }
    if ((m = p.match(/^([^=!\s]+)\s*(!=|==|=)\s*(\S*)$/))) {
      const key = checkKey(m[1]);
      const value = checkValue(m[3]);
      return m[2] === "!=" ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    if ((m = p.match(/^!([^=!\s]+)$/))) {
      const key = checkKey(m[1]);
      return (l) => !(key in l);
    }
    if ((m = p.match(/^([^=!\s()]+)$/))) {
      const key = checkKey(m[1]);
      return (l) => key in l;
    }
    throw new Error(`cannot parse '${p}'`);
  });
  return (labels) => terms.every((t) => t(labels));
}

/** The MD5 fingerprint of an OpenSSH public key line, or undefined when malformed. */
export function fingerprintOf(publicKey: string): string | undefined {
  const [type, blob] = publicKey.trim().split(/\s+/);
  if (!KEY_TYPES.has(type) || !blob || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(blob), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
  const len = bytes.length >= 4
    ? (bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3]) >>> 0
    : 0;
  if (new TextDecoder().decode(bytes.subarray(4, 4 + len)) !== type) return undefined;
  return createHash("md5").update(bytes).digest("hex").match(/../g)!.join(":");
}

function paginate<T>(items: T[], query: URLSearchParams, max: number) {
  const num = (name: string, fallback: number) => {
    const raw = query.get(name);
    if (raw === null) return fallback;
    if (!/^[1-9][0-9]*$/.test(raw)) throw invalid(name, `${name} must be a positive integer`);
    return Number(raw);
  };
  const page = num("page", 1);
  const perPage = Math.min(num("per_page", 25), max);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  return {
    slice: items.slice((page - 1) * perPage, page * perPage),
    meta: {
      pagination: {
        page,
        per_page: perPage,
        previous_page: page > 1 ? page - 1 : null,
        next_page: page < last ? page + 1 : null,
        last_page: last,
        total_entries: items.length,
      },
    },
  };
}

/**
 * Start a fake Hetzner Cloud API on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { startFakeHetzner } from "./hetzner.ts";
 * await using fake = startFakeHetzner({ onCreate: () => ({ ipv4: "127.77.0.2" }) });
 * ```
 */
export function startFakeHetzner(options: FakeHetznerOptions = {}): FakeHetzner {
  const token = options.token ?? "hcloud-fake-token-0123456789abcdef";
  const maxPerPage = options.maxPerPage ?? 50;
  const actionPolls = options.actionPolls ?? 1;
  const startPolls = options.startPolls ?? 1;
  const serverTypes = new Set(options.serverTypes ?? ["cpx22", "cx23", "cax11", "cpx32"]);
  const images = new Set(options.images ?? ["ubuntu-24.04", "ubuntu-22.04", "debian-12"]);
  const locations = new Set(options.locations ?? ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"]);
  const servers = new Map<number, FakeServer>();
  const sshKeys = new Map<number, FakeSshKey>();
  const actions = new Map<number, { command: string; serverId: number; started: string }>();
  const requests: RecordedRequest[] = [];
  const faults: HetznerFault[] = [];
  let nextId = 1000;
  let ipCounter = 10;

  const statusOf = (s: FakeServer) => {
    if (s.deletingPolls !== undefined) return "deleting";
    if (s.polls < actionPolls) return "initializing";
    if (s.polls < actionPolls + startPolls) return "starting";
    return "running";
  };
  const observe = (s: FakeServer) => {
    if (s.deletingPolls !== undefined) {
      if (s.deletingPolls <= 0) servers.delete(s.id);
      else s.deletingPolls--;
    } else s.polls++;
  };
  const serverJson = (s: FakeServer) => {
    const status = statusOf(s);
    const ip = options.ipv4WhenRunning && status !== "running" ? null : s.ipv4;
    return {
      id: s.id,
      name: s.name,
      status,
      created: s.created,
      public_net: {
        ipv4: ip ? { id: s.id + 500000, ip, blocked: false, dns_ptr: `static.${ip}` } : null,
        ipv6: null,
        floating_ips: [],
        firewalls: [],
      },
      private_net: [],
      server_type: { id: 1, name: s.serverType, cores: 2, memory: 4, disk: 80 },
      datacenter: { id: 1, name: `${s.location}-dc1`, location: { id: 1, name: s.location } },
      image: { id: 1, name: s.image, type: "system", os_flavor: s.image.split("-")[0] },
      labels: s.labels,
      protection: { delete: false, rebuild: false },
      volumes: [],
      load_balancers: [],
      primary_disk_size: 80,
      rescue_enabled: false,
      locked: false,
      backup_window: null,
      outgoing_traffic: 0,
      ingoing_traffic: 0,
      included_traffic: 21990232555520,
      iso: null,
      placement_group: null,
    };
  };
  const actionJson = (id: number) => {
    const a = actions.get(id)!;
    const s = servers.get(a.serverId);
    const done = a.command !== "create_server" || !s || s.polls >= actionPolls;
    return {
      id,
      command: a.command,
      status: done ? "success" : "running",
      progress: done ? 100 : 50,
      started: a.started,
      finished: done ? new Date().toISOString() : null,
      resources: [{ id: a.serverId, type: "server" }],
      error: null,
    };
  };
  const newAction = (command: string, serverId: number) => {
    const id = nextId++;
    actions.set(id, { command, serverId, started: new Date().toISOString() });
    return id;
  };
  const keyJson = (k: FakeSshKey) => ({
    id: k.id,
    name: k.name,
    fingerprint: k.fingerprint,
    public_key: k.publicKey,
    labels: k.labels,
    created: new Date().toISOString(),
  });

  const selectorFilter = (query: URLSearchParams) => {
    const raw = query.get("label_selector");
    if (raw === null) return () => true;
    try {
      return parseLabelSelector(raw);
    } catch (e) {
      throw invalid("label_selector", `label_selector: ${(e as Error).message}`);
    }
  };

  const readBody = (req: Request, text: string): Record<string, unknown> => {
    if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
      throw new ApiError(400, "json_error", "request body must be JSON (content-type)");
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ApiError(400, "json_error", "invalid JSON in request body");
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new ApiError(400, "json_error", "request body must be a JSON object");
    }
    return body as Record<string, unknown>;
  };

  function createServer(body: Record<string, unknown>): Response {
    for (const k of Object.keys(body)) {
      if (!SERVER_FIELDS.has(k)) throw invalid(k, `unknown field '${k}'`);
    }
    if (typeof body.name !== "string" || !HOSTNAME.test(body.name)) {
      throw invalid("name", "name must be a valid RFC 1123 hostname");
    }
    if (typeof body.server_type !== "string" || !serverTypes.has(body.server_type)) {
      throw invalid("server_type", `server type ${JSON.stringify(body.server_type)} not found`);
    }
    if (typeof body.image !== "string" || !images.has(body.image)) {
      throw invalid("image", `image ${JSON.stringify(body.image)} not found`);
    }
    if (body.location !== undefined) {
      if (typeof body.location !== "string" || !locations.has(body.location)) {
        throw invalid("location", `location ${JSON.stringify(body.location)} not found`);
      }
    }
    const sshKeyIds: number[] = [];
    if (body.ssh_keys !== undefined) {
      if (!Array.isArray(body.ssh_keys)) throw invalid("ssh_keys", "ssh_keys must be an array");
      for (const ref of body.ssh_keys) {
        const key = [...sshKeys.values()].find((k) => k.id === ref || k.name === ref);
        if (!key) throw invalid("ssh_keys", `ssh key ${JSON.stringify(ref)} not found`);
        sshKeyIds.push(key.id);
      }
    }
    const labels = body.labels ?? {};
    const labelProblem = labelError(labels);
    if (labelProblem) throw invalid("labels", labelProblem);
    if (body.user_data !== undefined) {
      if (typeof body.user_data !== "string") throw invalid("user_data", "must be a string");
      if (new TextEncoder().encode(body.user_data).length > 32768) {
        throw invalid("user_data", "user_data must not exceed 32 KiB");
      }
    }
    if (body.start_after_create !== undefined && typeof body.start_after_create !== "boolean") {
      throw invalid("start_after_create", "must be a boolean");
    }
    if (body.public_net !== undefined) {
      const pn = body.public_net as Record<string, unknown>;
      if (pn === null || typeof pn !== "object") throw invalid("public_net", "must be an object");
      for (const k of ["enable_ipv4", "enable_ipv6"]) {
        if (pn[k] !== undefined && typeof pn[k] !== "boolean") {
          throw invalid(`public_net.${k}`, "must be a boolean");
        }
      }
    }
    if ([...servers.values()].some((s) => s.name === body.name)) {
      throw new ApiError(409, "uniqueness_error", "server name is already used", "name");
    }
    const location = (body.location as string | undefined) ?? "fsn1";
    const blocked = (options.unavailable ?? []).find((u) =>
      u.serverType === body.server_type && (u.location === undefined || u.location === location)
    );
    if (blocked) {
      throw new ApiError(
        412,
        "resource_unavailable",
        `server type ${body.server_type} is unavailable in ${location}`,
      );
    }
    const id = nextId++;
    const server: FakeServer = {
      id,
      name: body.name,
      labels: { ...(labels as Record<string, string>) },
      userData: body.user_data as string | undefined,
      sshKeyIds,
      serverType: body.server_type,
      image: body.image,
      location,
      ipv4: `203.0.113.${ipCounter++ % 250}`,
      created: new Date().toISOString(),
      polls: 0,
      actionId: 0,
    };
    const chosen = options.onCreate?.(server);
    if (chosen?.ipv4) server.ipv4 = chosen.ipv4;
    server.actionId = newAction("create_server", id);
    servers.set(id, server);
    const startId = newAction("start_server", id);
    return json(201, {
      server: serverJson(server),
      action: actionJson(server.actionId),
      next_actions: [actionJson(startId)],
      root_password: sshKeyIds.length === 0 ? "fake-root-password" : null,
    });
  }

  function createKey(body: Record<string, unknown>): Response {
    for (const k of Object.keys(body)) {
      if (!["name", "public_key", "labels"].includes(k)) throw invalid(k, `unknown field '${k}'`);
    }
    if (typeof body.name !== "string" || body.name.trim() === "" || body.name.length > 255) {
      throw invalid("name", "name is required");
    }
    const fingerprint = typeof body.public_key === "string"
      ? fingerprintOf(body.public_key)
      : undefined;
    if (!fingerprint) throw invalid("public_key", "public_key is not a valid OpenSSH public key");
    const labelProblem = labelError(body.labels ?? {});
    if (labelProblem) throw invalid("labels", labelProblem);
    if ([...sshKeys.values()].some((k) => k.name === body.name)) {
      throw new ApiError(
        409,
        "uniqueness_error",
        "SSH key with the same name already exists",
        "name",
      );
    }
    if ([...sshKeys.values()].some((k) => k.fingerprint === fingerprint)) {
      throw new ApiError(
        409,
        "uniqueness_error",
        "SSH key with the same fingerprint already exists",
        "public_key",
      );
    }
    const key: FakeSshKey = {
      id: nextId++,
      name: body.name,
      publicKey: (body.public_key as string).trim(),
      fingerprint,
      labels: { ...(body.labels as Record<string, string> ?? {}) },
    };
    sshKeys.set(key.id, key);
    return json(201, { ssh_key: keyJson(key) });
  }

  const idOf = (raw: string) => {
    if (!/^[1-9][0-9]*$/.test(raw)) throw new ApiError(404, "not_found", "not found");
    return Number(raw);
  };

  function route(req: Request, text: string, path: string, query: URLSearchParams): Response {
    const m = req.method;
    let g: RegExpMatchArray | null;
    if (path === "/servers" && m === "GET") {
      const match = selectorFilter(query);
      const name = query.get("name");
      const all = [...servers.values()].sort((a, b) => a.id - b.id)
        .filter((s) => match(s.labels) && (name === null || s.name === name));
      const { slice, meta } = paginate(all, query, maxPerPage);
      return json(200, { servers: slice.map((s) => serverJson(s)), meta });
    }
    if (path === "/servers" && m === "POST") return createServer(readBody(req, text));
    if ((g = path.match(/^\/servers\/([^/]+)$/))) {
      const s = servers.get(idOf(g[1]));
      if (!s) throw new ApiError(404, "not_found", `server ${g[1]} not found`);
      if (m === "GET") {
        observe(s);
        return json(200, { server: serverJson(s) });
      }
      if (m === "PUT") {
        const body = readBody(req, text);
        for (const k of Object.keys(body)) {
          if (!["name", "labels"].includes(k)) throw invalid(k, `unknown field '${k}'`);
        }
        if (body.labels !== undefined) {
          const problem = labelError(body.labels);
          if (problem) throw invalid("labels", problem);
          s.labels = { ...(body.labels as Record<string, string>) };
        }
        return json(200, { server: serverJson(s) });
      }
      if (m === "DELETE") {
        if (s.deletingPolls === undefined) s.deletingPolls = options.deletePolls ?? 0;
        if (s.deletingPolls === 0) servers.delete(s.id);
        return json(200, { action: actionJson(newAction("delete_server", s.id)) });
      }
    }
    if ((g = path.match(/^\/actions\/([^/]+)$/)) && m === "GET") {
      const id = idOf(g[1]);
      const a = actions.get(id);
      if (!a) throw new ApiError(404, "not_found", `action ${id} not found`);
      const s = servers.get(a.serverId);
      if (s && a.command === "create_server") observe(s);
      return json(200, { action: actionJson(id) });
    }
    if (path === "/ssh_keys" && m === "GET") {
      const match = selectorFilter(query);
      const fp = query.get("fingerprint");
      const name = query.get("name");
      const all = [...sshKeys.values()].sort((a, b) => a.id - b.id).filter((k) =>
        match(k.labels) && (fp === null || k.fingerprint === fp) &&
        (name === null || k.name === name)
      );
      const { slice, meta } = paginate(all, query, maxPerPage);
      return json(200, { ssh_keys: slice.map(keyJson), meta });
    }
    if (path === "/ssh_keys" && m === "POST") return createKey(readBody(req, text));
    if ((g = path.match(/^\/ssh_keys\/([^/]+)$/))) {
      const k = sshKeys.get(idOf(g[1]));
      if (!k) throw new ApiError(404, "not_found", `ssh key ${g[1]} not found`);
      if (m === "GET") return json(200, { ssh_key: keyJson(k) });
      if (m === "DELETE") {
        sshKeys.delete(k.id);
        return new Response(null, { status: 204 });
      }
    }
    throw new ApiError(404, "not_found", `no route ${m} ${path}`);
  }

  const http: FakeHttp = serveFake(async (req) => {
    const url = new URL(req.url);
    const path = url.pathname.replace(/^\/v1/, "");
    const rate = {
      "ratelimit-limit": "3600",
      "ratelimit-remaining": "3599",
      "ratelimit-reset": String(Math.ceil(Date.now() / 1000) + 1),
    };
    const record: RecordedRequest = {
      method: req.method,
      path,
      query: Object.fromEntries(url.searchParams),
      headers: redactedHeaders(req.headers, ["authorization"]),
      status: 0,
    };
    requests.push(record);
    let res: Response;
    try {
      if (!url.pathname.startsWith("/v1/")) throw new ApiError(404, "not_found", "not found");
      const text = req.method === "GET" ? "" : await req.text();
      if (text !== "") {
        try {
          const b = JSON.parse(text);
          if (b && typeof b === "object" && "user_data" in b) {
            b.user_data = `[redacted ${String(b.user_data).length} chars]`;
          }
          record.body = b;
        } catch {
          record.body = `[unparsable ${text.length} chars]`;
        }
      }
      const auth = req.headers.get("authorization") ?? "";
      const presented = auth.startsWith("Bearer ") ? auth.slice(7) : undefined;
      const readOnly = options.readOnlyToken !== undefined && presented === options.readOnlyToken;
      if (presented === undefined || (presented !== token && !readOnly)) {
        throw new ApiError(401, "unauthorized", "unable to authenticate");
      }
      if (readOnly && req.method !== "GET") {
        throw new ApiError(403, "forbidden", "insufficient permissions for this request");
      }
      const fault = takeFault(faults, req.method, path);
      if (fault) {
        const headers: Record<string, string> = { ...rate, ...fault.headers };
        if (fault.status === 429) {
          headers["ratelimit-remaining"] = "0";
          headers["ratelimit-reset"] = String(
            Math.ceil(Date.now() / 1000) + (fault.rateLimitResetIn ?? 1),
          );
        }
        res = new ApiError(fault.status, fault.code, faultMessage(fault, text), fault.field)
          .toResponse(
            headers,
          );
      } else {
        res = route(req, text, path, url.searchParams);
        for (const [k, v] of Object.entries(rate)) res.headers.set(k, v);
      }
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      res = e.toResponse(rate);
    }
    record.status = res.status;
    return res;
  });

  return {
    url: `${http.url}/v1`,
    token,
    requests,
    servers,
    sshKeys,
    inject: (fault) => faults.push(fault),
    close: http.close,
    [Symbol.asyncDispose]: http.close,
  };
}
