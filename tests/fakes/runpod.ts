/**
 * A fake RunPod REST API v1 (`/v1/pods`) that enforces the documented
 * contract: Bearer auth (401), JSON bodies with the documented field types
 * (400), known CPU flavors / GPU types, the capacity error
 * (500 `{"error": "…no longer any instances available…", "status": 500}`),
 * 201 on create and 204 on delete, 404 for unknown pods, a plain-array list
 * with the `name` filter, and the start-up transition: `publicIp` is `""` and
 * `portMappings` `{}` for the first reads after create.
 *
 * Not modelled (undocumented or uncertain): rate limits (v1 documents none;
 * faults can inject a 429), unknown body fields (accepted), billing, stop/start.
 *
 * @example
 * ```ts
 * import { startFakeRunpod } from "./runpod.ts";
 * await using fake = startFakeRunpod();
 * const env = { RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url };
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

/** A pod in the fake's state. */
export interface FakeRunpodPod {
  /** Pod id. */
  id: string;
  /** The create body as sent. */
  body: Record<string, unknown>;
  /** `volumeInGb` in effect (20 when the request left it out, like RunPod). */
  volumeInGb: number;
  /** Reads so far (drives the public IP / port mapping). */
  polls: number;
  /** Public IP once mapped. */
  publicIp: string;
  /** Public port for 22. */
  sshPort: number;
}

/** Options of {@link startFakeRunpod}. */
export interface FakeRunpodOptions {
  /** Accepted API key. */
  token?: string;
  /** Reads of a new pod before `publicIp`/`portMappings` appear (default 2). */
  startPolls?: number;
  /** GPU types or CPU flavors that answer the capacity error. */
  unavailable?: string[];
  /** Chooses the public IP and port of a new pod (e.g. a local box behind a relay). */
  onCreate?: (pod: FakeRunpodPod) => { publicIp?: string; sshPort?: number } | void;
  /** Answer `portMappings` values as strings (RunPod has done both). */
  portsAsStrings?: boolean;
}

/** A running fake RunPod API. */
export interface FakeRunpod extends AsyncDisposable {
  /** Base URL for `CRABBOX_RUNPOD_API_URL` (ends in `/v1`). */
  url: string;
  /** The accepted API key. */
  token: string;
  /** Every request, secrets redacted. */
  requests: RecordedRequest[];
  /** Pods by id. */
  pods: Map<string, FakeRunpodPod>;
  /** Queue a fault (`match` is the path without `/v1`). */
  inject(fault: Fault): void;
  /** Stop the server. */
  close(): Promise<void>;
}

const GPU_TYPES = new Set([
  "NVIDIA L4",
  "NVIDIA RTX A4000",
  "NVIDIA A40",
  "NVIDIA GeForce RTX 4090",
]);
const CPU_FLAVORS = new Set(["cpu3c", "cpu3g", "cpu3m", "cpu5c"]);
const CAPACITY =
  "There are no longer any instances available with the requested specifications. Please refresh and try again.";

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

const fail = (status: number, error: string) => json(status, { error, status });

function isInt(v: unknown, min: number): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= min;
}

function strings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

/** Validate a create body; returns RunPod-style error text or undefined. */
function bodyError(
  b: Record<string, unknown>,
  unavailable: Set<string>,
): [number, string] | undefined {
  if (typeof b.name !== "string" || b.name.length > 191) {
    return [400, "name must be a string of at most 191 characters"];
  }
  if (typeof b.imageName !== "string" || b.imageName === "") return [400, "imageName is required"];
  if (b.computeType !== undefined && b.computeType !== "CPU" && b.computeType !== "GPU") {
    return [400, "computeType must be CPU or GPU"];
  }
  for (const k of ["containerDiskInGb", "volumeInGb", "gpuCount", "vcpuCount"]) {
    if (b[k] !== undefined && !isInt(b[k], k === "volumeInGb" ? 0 : 1)) {
      return [400, `${k} must be an integer`];
    }
  }
  if (
    b.ports !== undefined &&
    (!strings(b.ports) || !b.ports.every((p) => /^[0-9]{1,5}\/(tcp|http)$/.test(p)))
  ) {
    return [400, 'ports must be strings like "22/tcp"'];
  }
  if (b.supportPublicIp !== undefined && typeof b.supportPublicIp !== "boolean") {
    return [400, "supportPublicIp must be a boolean"];
  }
  if (b.env !== undefined) {
    const env = b.env;
    if (
      env === null || typeof env !== "object" || Array.isArray(env) ||
      !Object.values(env).every((v) => typeof v === "string")
    ) {
      return [400, "env must be an object of strings"];
    }
  }
  if ((b.computeType ?? "GPU") === "GPU") {
    if (!strings(b.gpuTypeIds) || b.gpuTypeIds.length === 0) {
      return [400, "gpuTypeIds is required for GPU pods"];
    }
    const bad = b.gpuTypeIds.find((g) => !GPU_TYPES.has(g));
    if (bad) return [400, `invalid gpuTypeIds: ${bad}`];
    if (b.gpuTypeIds.every((g) => unavailable.has(g))) return [500, CAPACITY];
  } else {
    if (!strings(b.cpuFlavorIds) || b.cpuFlavorIds.length === 0) {
      return [400, "cpuFlavorIds is required for CPU pods"];
    }
    const bad = b.cpuFlavorIds.find((c) => !CPU_FLAVORS.has(c));
    if (bad) return [400, `invalid cpuFlavorIds: ${bad}`];
    if (b.cpuFlavorIds.every((c) => unavailable.has(c))) return [500, CAPACITY];
  }
  return undefined;
}

/**
 * Start a fake RunPod API on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { startFakeRunpod } from "./runpod.ts";
 * await using fake = startFakeRunpod({ onCreate: () => ({ publicIp: "127.0.0.1", sshPort: 2222 }) });
 * ```
 */
export function startFakeRunpod(options: FakeRunpodOptions = {}): FakeRunpod {
  const token = options.token ?? "rpa_FAKE0123456789ABCDEFGHIJ";
  const startPolls = options.startPolls ?? 2;
  const unavailable = new Set(options.unavailable ?? []);
  const pods = new Map<string, FakeRunpodPod>();
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  let seq = 0;

  const view = (p: FakeRunpodPod) => {
    const up = p.polls >= startPolls;
    const port = options.portsAsStrings ? String(p.sshPort) : p.sshPort;
    return {
      id: p.id,
      name: p.body.name,
      image: p.body.imageName,
      desiredStatus: "RUNNING",
      env: p.body.env ?? {},
      ports: p.body.ports ?? ["8888/http", "22/tcp"],
      containerDiskInGb: p.body.containerDiskInGb ?? 50,
      volumeInGb: p.volumeInGb,
      publicIp: up ? p.publicIp : "",
      portMappings: up ? { "22": port } : {},
      machineId: "fakemachine01",
      interruptible: false,
      locked: false,
    };
  };

  async function route(req: Request, path: string, query: URLSearchParams): Promise<Response> {
    if (req.headers.get("authorization") !== `Bearer ${token}`) {
      return fail(401, "Unauthorized: invalid api key");
    }
    if (path === "/pods" && req.method === "GET") {
      const name = query.get("name");
      return json(
        200,
        [...pods.values()].filter((p) => name === null || p.body.name === name).map(view),
      );
    }
    if (path === "/pods" && req.method === "POST") {
      if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
        return fail(400, "content-type must be application/json");
      }
      let body: unknown;
      try {
        body = JSON.parse(await req.text());
      } catch {
        return fail(400, "invalid JSON body");
      }
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        return fail(400, "body must be an object");
      }
      const b = body as Record<string, unknown>;
      const err = bodyError(b, unavailable);
      if (err) return fail(err[0], err[1]);
      const id = `fakepod${(++seq).toString(36).padStart(6, "0")}`;
      const pod: FakeRunpodPod = {
        id,
        body: b,
        volumeInGb: typeof b.volumeInGb === "number" ? b.volumeInGb : 20,
        polls: 0,
        publicIp: `203.0.113.${10 + seq}`,
        sshPort: 40000 + seq,
      };
      const chosen = options.onCreate?.(pod);
      if (chosen?.publicIp) pod.publicIp = chosen.publicIp;
      if (chosen?.sshPort) pod.sshPort = chosen.sshPort;
      pods.set(id, pod);
      return json(201, view(pod));
    }
    const m = /^\/pods\/([^/]+)$/.exec(path);
    if (m) {
      const pod = pods.get(decodeURIComponent(m[1]));
      if (!pod) return fail(404, "pod not found");
      if (req.method === "GET") {
        pod.polls++;
        return json(200, view(pod));
      }
      if (req.method === "DELETE") {
        pods.delete(pod.id);
        return new Response(null, { status: 204 });
      }
    }
    return fail(404, `no route ${req.method} ${path}`);
  }

  const http: FakeHttp = serveFake(async (req) => {
    const u = new URL(req.url);
    const path = u.pathname.replace(/^\/v1/, "");
    const { rec: record } = recordRequest(requests, req, ["authorization"], path);
    const fault = takeFault(faults, req.method, path);
    let res: Response;
    if (fault && req.headers.get("authorization") === `Bearer ${token}`) {
      await req.body?.cancel();
      res = json(
        fault.status,
        { error: fault.message ?? fault.code, status: fault.status },
        fault.headers,
      );
    } else {
      if (!u.pathname.startsWith("/v1/")) res = fail(404, "not found");
      else {
        if (req.method === "POST") {
          record.body = await jsonBodyOf(req);
        }
        res = await route(req, path, u.searchParams);
      }
    }
    record.status = res.status;
    return res;
  });

  return {
    url: `${http.url}/v1`,
    token,
    requests,
    pods,
    inject: (f) => faults.push(f),
    close: () => http.close(),
    [Symbol.asyncDispose]: () => http.close(),
  };
}
