/**
 * A fake Namespace Compute API (Connect with JSON) on 127.0.0.1 enforcing
 * the documented contract: POST only, the method in the path
 * (`/namespace.cloud.compute.v1beta.ComputeService/<Method>`), JSON bodies,
 * Bearer auth, Connect errors `{"code","message"}` with their HTTP statuses
 * (`invalid_argument` 400, `unauthenticated` 401, `not_found` 404,
 * `resource_exhausted` 429, …), CreateInstance shape/deadline/labels (name
 * regex, no `_`, value ≤ 255)/`experimental.authorizedSshKeys`, instances
 * that are `CREATING` until `WaitInstanceSync`, ListInstances `labelFilter`
 * (`EQUAL`/`NOT_EQUAL`/`EXIST`, enums as strings) with a base64
 * `paginationCursor`, DestroyInstance, ExtendInstance (`ensureMinimum` as a
 * proto Duration string). Each instance's `ssh` service endpoint
 * (`PROXY_OVER_SECURE_WEBSOCKET`) is a WebSocket on this server that bridges
 * to the TCP address `bridge` returns (a real `local` box's sshd).
 *
 * Not enforced strictly ([uncertain] in the research): the ingress auth
 * header (`x-nsc-ingress-auth` or a Bearer token both pass), `maxEntries` as
 * a string or a number, unknown JSON fields (ignored, as Connect servers do).
 * Not modelled: regions, real deadlines expiring, suspend/resume, the
 * devbox API, `GetSSHConfig`.
 *
 * @module
 */

import { type FakeHttp, type RecordedRequest, redactedHeaders, serveFake } from "./fake_http.ts";
import { bridgeToTcp, type TcpAddress } from "./ws_bridge.ts";

const SERVICE = "/namespace.cloud.compute.v1beta.ComputeService/";
const LABEL_NAME = /^[a-z]([a-z0-9-.]*[a-z0-9])?$/;
const STATUS: Record<string, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  resource_exhausted: 429,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  failed_precondition: 400,
};

/** An instance in the fake. */
export interface FakeInstance {
  /** Id. */
  instanceId: string;
  /** Status. */
  status: string;
  /** Labels. */
  labels: { name: string; value: string }[];
  /** Deadline (RFC 3339). */
  deadline: string;
  /** Shape as sent. */
  shape: Record<string, unknown>;
  /** Authorized keys as sent. */
  authorizedSshKeys: string[];
  /** Creation time. */
  createdAt: string;
  /** Extensions received. */
  extensions: string[];
}

/** A queued Connect error. */
export interface NamespaceFault {
  /** Method name. */
  method: string;
  /** Connect code. */
  code: string;
  /** Message. */
  message?: string;
  /** Retry-After seconds header. */
  retryAfter?: number;
  /** How many calls get it (default 1). */
  times?: number;
}

/** Options. */
export interface FakeNamespaceOptions {
  /** Accepted token. */
  token?: string;
  /** Largest page (default 100). */
  maxPerPage?: number;
  /** Where an instance's ssh ingress connects. */
  bridge?: (instance: FakeInstance) => TcpAddress | undefined;
  /** The bridged box's authorized_keys file: gets the instance's authorizedSshKeys when it boots. */
  authorizedKeysFile?: (instance: FakeInstance) => string | undefined;
}

/** A running fake. */
export interface FakeNamespace extends AsyncDisposable {
  /** Base URL for `CRABBOX_NAMESPACE_API_URL`. */
  url: string;
  /** Accepted token. */
  token: string;
  /** Requests (auth redacted). */
  requests: RecordedRequest[];
  /** Live instances by id (destroyed ones are removed). */
  instances: Map<string, FakeInstance>;
  /** Ingress connections accepted. */
  ingressConnections: number;
  /** Queue a Connect error. */
  inject(fault: NamespaceFault): void;
  /** Stop. */
  close(): Promise<void>;
}

function connectError(code: string, message: string, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify({ code, message }), {
    status: STATUS[code] ?? 500,
    headers: { "content-type": "application/json", ...headers },
  });
}

function ok(body: unknown) {
  return new Response(JSON.stringify(body), {
    status: 200,
    headers: { "content-type": "application/json" },
  });
}

/**
 * Start the fake.
 *
 * @example
 * ```ts
 * import { startFakeNamespace } from "./namespace.ts";
 * await using fake = startFakeNamespace();
 * ```
 */
export function startFakeNamespace(options: FakeNamespaceOptions = {}): FakeNamespace {
  const token = options.token ?? "nsc-test-token-0123456789";
  const maxPerPage = options.maxPerPage ?? 100;
  const instances = new Map<string, FakeInstance>();
  const requests: RecordedRequest[] = [];
  const faults: NamespaceFault[] = [];
  let counter = 0;
  let base = "";
  const state = { ingressConnections: 0 };

  const metadata = (i: FakeInstance) => ({
    instanceId: i.instanceId,
    createdAt: i.createdAt,
    deadline: i.deadline,
    documentedPurpose: "crabbox",
    shape: i.shape,
    status: i.status,
    labels: i.labels,
    services: [{
      name: "ssh",
      status: i.status === "RUNNING" ? "READY" : "PENDING",
      endpoint: `${base.replace(/^http/, "ws")}/ingress/${i.instanceId}/22`,
      endpointKind: "PROXY_OVER_SECURE_WEBSOCKET",
    }],
  });

  function ingress(req: Request, id: string): Response {
    const auth = req.headers.get("x-nsc-ingress-auth") ?? "";
    const bearer = req.headers.get("authorization") ?? "";
    if (auth !== token && bearer !== `Bearer ${token}`) {
      return connectError("unauthenticated", "ingress needs the tenant token");
    }
    const inst = instances.get(id);
    if (!inst) return connectError("not_found", `instance ${id} not found`);
    if (inst.status !== "RUNNING") {
      return connectError("failed_precondition", `instance ${id} is ${inst.status}`);
    }
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return connectError("invalid_argument", "ingress needs a WebSocket upgrade");
    }
    const addr = options.bridge?.(inst);
    if (!addr) return connectError("unavailable", "no backend for this instance");
    const { socket, response } = Deno.upgradeWebSocket(req);
    state.ingressConnections++;
    socket.onopen = () => bridgeToTcp(socket, addr);
    return response;
  }

  const idOf = (body: Record<string, unknown>) =>
    typeof body.instanceId === "string" ? instances.get(body.instanceId) : undefined;

  function create(body: Record<string, unknown>): Response {
    const shape = (body.shape ?? {}) as Record<string, unknown>;
    for (const k of ["virtualCpu", "memoryMegabytes"]) {
      if (!Number.isInteger(shape[k]) || (shape[k] as number) <= 0) {
        return connectError("invalid_argument", `shape.${k} must be a positive integer`);
      }
    }
    if (typeof shape.machineArch !== "string" || typeof shape.os !== "string") {
      return connectError("invalid_argument", "shape.machineArch and shape.os are required");
    }
    const deadline = typeof body.deadline === "string" ? Date.parse(body.deadline) : NaN;
    if (!Number.isFinite(deadline) || deadline <= Date.now()) {
      return connectError("invalid_argument", "deadline must be an RFC 3339 time in the future");
    }
    const labels = body.labels ?? [];
    if (!Array.isArray(labels)) return connectError("invalid_argument", "labels must be a list");
    for (const l of labels as Record<string, unknown>[]) {
      if (
        typeof l?.name !== "string" || l.name.length > 63 || !LABEL_NAME.test(l.name) ||
        typeof l.value !== "string" || new TextEncoder().encode(l.value).length > 255
      ) {
        return connectError("invalid_argument", `invalid label ${JSON.stringify(l)}`);
      }
    }
    const keys = ((body.experimental ?? {}) as Record<string, unknown>).authorizedSshKeys ?? [];
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== "string" || !/^ssh-/.test(k))) {
      return connectError("invalid_argument", "experimental.authorizedSshKeys must be key lines");
    }
    const inst: FakeInstance = {
      instanceId: `inst${(++counter).toString(36)}x${crypto.randomUUID().slice(0, 6)}`,
      status: "CREATING",
      labels: labels as { name: string; value: string }[],
      deadline: new Date(deadline).toISOString(),
      shape,
      authorizedSshKeys: keys as string[],
      createdAt: new Date().toISOString(),
      extensions: [],
    };
    instances.set(inst.instanceId, inst);
    return ok({
      instanceUrl: `https://cloud.namespace.so/instances/${inst.instanceId}`,
      metadata: metadata(inst),
    });
  }

  function list(body: Record<string, unknown>): Response {
    const filters = body.labelFilter ?? [];
    if (!Array.isArray(filters)) return connectError("invalid_argument", "labelFilter: list");
    for (const f of filters as Record<string, unknown>[]) {
      if (
        typeof f?.name !== "string" || !["EQUAL", "NOT_EQUAL", "EXIST"].includes(f.op as string)
      ) {
        return connectError("invalid_argument", `bad label filter ${JSON.stringify(f)}`);
      }
      if (f.op !== "EXIST" && typeof f.value !== "string") {
        return connectError("invalid_argument", "EQUAL/NOT_EQUAL need a value");
      }
    }
    const max = body.maxEntries === undefined ? maxPerPage : Number(body.maxEntries);
    if (!Number.isInteger(max) || max < 1) {
      return connectError("invalid_argument", "maxEntries must be a positive integer");
    }
    let start = 0;
    if (body.paginationCursor !== undefined) {
      let decoded = "";
      try {
        decoded = atob(String(body.paginationCursor));
      } catch {
        return connectError("invalid_argument", "paginationCursor is not base64");
      }
      const m = /^offset:(\d+)$/.exec(decoded);
      if (!m) return connectError("invalid_argument", "unknown paginationCursor");
      start = Number(m[1]);
    }
    const matches = [...instances.values()].filter((i) =>
      (filters as { name: string; value?: string; op: string }[]).every((f) => {
        const l = i.labels.find((x) => x.name === f.name);
        if (f.op === "EXIST") return l !== undefined;
        if (f.op === "EQUAL") return l?.value === f.value;
        return l?.value !== f.value;
      })
    ).sort((a, b) => a.instanceId.localeCompare(b.instanceId));
    const size = Math.min(max, maxPerPage);
    const page = matches.slice(start, start + size);
    const more = start + size < matches.length;
    return ok({
      instances: page.map(metadata),
      ...(more ? { paginationCursor: btoa(`offset:${start + size}`) } : {}),
    });
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rec: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: redactedHeaders(req.headers, ["authorization", "x-nsc-ingress-auth"]),
      status: 0,
    };
    requests.push(rec);
    const answer = (r: Response) => (rec.status = r.status, r);
    const ing = /^\/ingress\/([^/]+)\/22$/.exec(url.pathname);
    if (ing) return answer(ingress(req, ing[1]));
    if (!url.pathname.startsWith(SERVICE)) {
      return answer(connectError("unimplemented", `no service at ${url.pathname}`));
    }
    if (req.method !== "POST") {
      return answer(new Response(null, { status: 405, headers: { allow: "POST" } }));
    }
    if (!req.headers.get("content-type")?.startsWith("application/json")) {
      return answer(new Response("unsupported content type", { status: 415 }));
    }
    if (req.headers.get("authorization") !== `Bearer ${token}`) {
      return answer(connectError("unauthenticated", "invalid bearer token"));
    }
    let body: Record<string, unknown>;
    try {
      body = await req.json();
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error();
    } catch {
      return answer(connectError("invalid_argument", "body is not a JSON object"));
    }
    rec.body = body;
    const method = url.pathname.slice(SERVICE.length);
    const fi = faults.findIndex((f) => f.method === method);
    if (fi >= 0) {
      const f = faults[fi];
      if ((f.times ?? 1) <= 1) faults.splice(fi, 1);
      else faults[fi] = { ...f, times: (f.times ?? 1) - 1 };
      return answer(connectError(
        f.code,
        f.message ?? f.code,
        f.retryAfter === undefined ? {} : { "retry-after": String(f.retryAfter) },
      ));
    }
    switch (method) {
      case "CreateInstance":
        return answer(create(body));
      case "ListInstances":
        return answer(list(body));
      case "WaitInstanceSync":
      case "DescribeInstance": {
        const inst = idOf(body);
        if (!inst) {
          return answer(connectError("not_found", `instance ${body.instanceId} not found`));
        }
        if (method === "WaitInstanceSync" && inst.status === "CREATING") {
          inst.status = "RUNNING";
          const file = options.authorizedKeysFile?.(inst);
          if (file) {
            await Deno.writeTextFile(file, inst.authorizedSshKeys.map((k) => `${k}\n`).join(""), {
              mode: 0o600,
            });
          }
        }
        return answer(ok({ metadata: metadata(inst) }));
      }
      case "DestroyInstance": {
        const inst = idOf(body);
        if (!inst) {
          return answer(connectError("not_found", `instance ${body.instanceId} not found`));
        }
        instances.delete(inst.instanceId);
        return answer(ok({}));
      }
      case "ExtendInstance": {
        const inst = idOf(body);
        if (!inst) {
          return answer(connectError("not_found", `instance ${body.instanceId} not found`));
        }
        const m = /^(\d+)(\.\d+)?s$/.exec(String(body.ensureMinimum ?? ""));
        if (!m) return answer(connectError("invalid_argument", "ensureMinimum must be like 3600s"));
        const until = Date.now() + Number(m[1]) * 1000;
        if (until > Date.parse(inst.deadline)) inst.deadline = new Date(until).toISOString();
        inst.extensions.push(String(body.ensureMinimum));
        return answer(ok({ metadata: metadata(inst) }));
      }
      default:
        return answer(connectError("unimplemented", `method ${method} is not implemented`));
    }
  }

  const server: FakeHttp = serveFake(handle);
  base = server.url;
  return {
    url: server.url,
    token,
    requests,
    instances,
    get ingressConnections() {
      return state.ingressConnections;
    },
    inject: (f) => faults.push(f),
    close: () => server.close(),
    [Symbol.asyncDispose]: () => server.close(),
  };
}
