/**
 * A fake Semaphore CI API v1alpha (`/api/v1alpha`) that enforces the
 * documented contract: `Authorization: Token …` (a Bearer header is 401),
 * `GET /projects/{name}` and the `Link: <…>; rel="next"` paginated
 * `GET /projects`, the `POST /jobs` shape (apiVersion, kind, metadata.name,
 * spec.project_id of a known project, agent.machine, non-empty string
 * commands, `env_vars` of `{name, value}`), the job state machine PENDING →
 * QUEUED → RUNNING (agent IP + `ports[{name:"ssh"}]`) → FINISHED over several
 * reads, a job whose commands do not keep it alive (no `sleep`) finishing
 * right after it starts, `GET /jobs/{id}/debug_ssh_key` once running,
 * `POST /jobs/{id}/stop` (200 `{}`, result STOPPED), and `GET /jobs` with the
 * multi-value `states` filter and `page_size`/`page_token` pagination.
 *
 * Not modelled (uncertain in the docs): the exact status code for a bad spec
 * (the fake answers 422 and the provider treats 400 and 422 alike), rate
 * limits (faults can inject a 429), org job time limits, secrets and files.
 *
 * @example
 * ```ts
 * import { startFakeSemaphore } from "./semaphore.ts";
 * await using fake = startFakeSemaphore();
 * const env = { SEMAPHORE_API_TOKEN: fake.token, CRABBOX_SEMAPHORE_API_URL: fake.url,
 *   SEMAPHORE_PROJECT: "web" };
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

/** A job in the fake's state. */
export interface FakeSemaphoreJob {
  /** Job id (UUID). */
  id: string;
  /** The create body as sent. */
  body: Record<string, unknown>;
  /** Reads so far (drives PENDING → QUEUED → RUNNING). */
  polls: number;
  /** Set once stopped or finished. */
  result?: "PASSED" | "STOPPED";
  /** Agent IP while running. */
  ip: string;
  /** Agent SSH port while running. */
  sshPort: number;
  /** Creation time, unix seconds. */
  created: number;
}

/** Options of {@link startFakeSemaphore}. */
export interface FakeSemaphoreOptions {
  /** Accepted API token. */
  token?: string;
  /** Projects by name (default `web` and `api`, plus filler to need two pages). */
  projects?: string[];
  /** Projects per `GET /projects` page (default 2). */
  projectsPerPage?: number;
  /** Reads in PENDING, then in QUEUED (default 1 each). */
  pendingPolls?: number;
  /** Reads in QUEUED (default 1). */
  queuedPolls?: number;
  /** Machine types the org has (default f1-standard-2, f1-standard-4, e1-standard-2). */
  machines?: string[];
  /** The debug private key handed out (default a fixed dummy PEM). */
  debugKey?: string;
  /** Chooses the agent IP and port of a new job. */
  onCreate?: (job: FakeSemaphoreJob) => { ip?: string; sshPort?: number } | void;
  /** Largest `page_size` for `/jobs` (default 100). */
  maxPageSize?: number;
}

/** A running fake Semaphore API. */
export interface FakeSemaphore extends AsyncDisposable {
  /** Base URL for `CRABBOX_SEMAPHORE_API_URL` (ends in `/api/v1alpha`). */
  url: string;
  /** The accepted token. */
  token: string;
  /** Every request, secrets redacted. */
  requests: RecordedRequest[];
  /** Jobs by id. */
  jobs: Map<string, FakeSemaphoreJob>;
  /** Project ids by name. */
  projects: Map<string, string>;
  /** Jobs that are not finished. */
  activeJobs(): FakeSemaphoreJob[];
  /** Queue a fault (`match` is the path without `/api/v1alpha`). */
  inject(fault: Fault): void;
  /** Stop the server. */
  close(): Promise<void>;
}

const DUMMY_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZS1zZW1hcGhvcmUta2V5\n-----END OPENSSH PRIVATE KEY-----\n";
const STATES = new Set(["PENDING", "QUEUED", "RUNNING", "FINISHED"]);

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

const fail = (status: number, message: string) => json(status, { message });

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Record<string, unknown>
    : undefined;
}

function specError(
  b: Record<string, unknown>,
  projects: Set<string>,
  machines: Set<string>,
): string | undefined {
  if (b.apiVersion !== "v1alpha") return "apiVersion must be v1alpha";
  if (b.kind !== "Job") return "kind must be Job";
  const meta = obj(b.metadata);
  if (!meta || typeof meta.name !== "string" || meta.name === "") {
    return "metadata.name is required";
  }
  const spec = obj(b.spec);
  if (!spec) return "spec is required";
  if (typeof spec.project_id !== "string" || !projects.has(spec.project_id)) {
    return "spec.project_id is not a project";
  }
  const machine = obj(obj(spec.agent)?.machine);
  if (!machine || typeof machine.type !== "string" || !machines.has(machine.type)) {
    return "spec.agent.machine.type is not available";
  }
  if (typeof machine.os_image !== "string" || machine.os_image === "") {
    return "spec.agent.machine.os_image is required";
  }
  if (
    !Array.isArray(spec.commands) || spec.commands.length === 0 ||
    !spec.commands.every((c) => typeof c === "string")
  ) {
    return "spec.commands must be a non-empty list of strings";
  }
  if (spec.env_vars !== undefined) {
    if (!Array.isArray(spec.env_vars)) return "spec.env_vars must be a list";
    for (const e of spec.env_vars) {
      const ev = obj(e);
      if (
        !ev || typeof ev.name !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(ev.name) ||
        typeof ev.value !== "string"
      ) {
        return "spec.env_vars entries must be {name, value} strings";
      }
    }
  }
  return undefined;
}

/**
 * Start a fake Semaphore API on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { startFakeSemaphore } from "./semaphore.ts";
 * await using fake = startFakeSemaphore({ onCreate: () => ({ ip: "127.0.0.1", sshPort: 2222 }) });
 * ```
 */
export function startFakeSemaphore(options: FakeSemaphoreOptions = {}): FakeSemaphore {
  const token = options.token ?? "sem-fake-token-0123456789abcdef";
  const pendingPolls = options.pendingPolls ?? 1;
  const queuedPolls = options.queuedPolls ?? 1;
  const perPage = options.projectsPerPage ?? 2;
  const maxPageSize = options.maxPageSize ?? 100;
  const machines = new Set(options.machines ?? ["f1-standard-2", "f1-standard-4", "e1-standard-2"]);
  const projects = new Map<string, string>();
  for (const name of options.projects ?? ["alpha-site", "beta-site", "web", "api"]) {
    projects.set(name, crypto.randomUUID());
  }
  const projectIds = new Set(projects.values());
  const jobs = new Map<string, FakeSemaphoreJob>();
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  let seq = 0;
  let base = "";

  const keepsAlive = (j: FakeSemaphoreJob) =>
    ((obj(j.body.spec)?.commands ?? []) as string[]).some((c) =>
      /(^|\s|;|&&)sleep\s+[0-9]+/.test(c)
    );
  const stateOf = (j: FakeSemaphoreJob) => {
    if (j.result) return "FINISHED";
    if (j.polls <= pendingPolls) return "PENDING";
    if (j.polls <= pendingPolls + queuedPolls) return "QUEUED";
    return "RUNNING";
  };
  const read = (j: FakeSemaphoreJob) => {
    j.polls++;
    // Commands that do not keep the job alive run to the end as soon as it starts.
    if (!j.result && stateOf(j) === "RUNNING" && !keepsAlive(j)) j.result = "PASSED";
  };
  const view = (j: FakeSemaphoreJob) => {
    const state = stateOf(j);
    const running = state === "RUNNING";
    return {
      apiVersion: "v1alpha",
      kind: "Job",
      metadata: {
        name: obj(j.body.metadata)?.name,
        id: j.id,
        create_time: String(j.created),
        update_time: String(j.created),
        start_time: running ? String(j.created + 5) : "0",
        finish_time: j.result ? String(j.created + 60) : "0",
      },
      spec: j.body.spec,
      status: {
        state,
        result: j.result ?? "",
        agent: running
          ? { ip: j.ip, name: "fake-agent", ports: [{ name: "ssh", number: j.sshPort }] }
          : { ip: "", name: "", ports: [] },
      },
    };
  };

  async function route(req: Request, path: string, query: URLSearchParams): Promise<Response> {
    if (req.headers.get("authorization") !== `Token ${token}`) return fail(401, "Unauthorized");
    if (req.method === "GET" && path === "/projects") {
      const page = Number(query.get("page") ?? "1");
      if (!Number.isInteger(page) || page < 1) return fail(400, "bad page");
      const all = [...projects.entries()];
      const slice = all.slice((page - 1) * perPage, page * perPage);
      const headers: Record<string, string> = {};
      if (page * perPage < all.length) {
        headers.link = `<${base}/projects?page=${page + 1}>; rel="next"`;
      }
      return json(200, slice.map(([name, id]) => ({ metadata: { name, id }, spec: {} })), headers);
    }
    let m = /^\/projects\/([^/]+)$/.exec(path);
    if (req.method === "GET" && m) {
      const name = decodeURIComponent(m[1]);
      const id = projects.get(name);
      return id ? json(200, { metadata: { name, id }, spec: {} }) : fail(404, "project not found");
    }
    if (req.method === "GET" && path === "/jobs") {
      const states = query.getAll("states");
      if (states.some((s) => !STATES.has(s))) return fail(400, "invalid states");
      const size = Number(query.get("page_size") ?? "30");
      if (!Number.isInteger(size) || size < 1) return fail(400, "invalid page_size");
      const all = [...jobs.values()].filter((j) =>
        states.length === 0 || states.includes(stateOf(j))
      );
      const start = query.get("page_token") ? Number(query.get("page_token")) : 0;
      if (!Number.isInteger(start) || start < 0) return fail(400, "invalid page_token");
      const end = start + Math.min(size, maxPageSize);
      return json(200, {
        jobs: all.slice(start, end).map(view),
        next_page_token: end < all.length ? String(end) : "",
      });
    }
    if (req.method === "POST" && path === "/jobs") {
      if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
        return fail(400, "expected JSON");
      }
      let body: unknown;
      try {
        body = JSON.parse(await req.text());
      } catch {
        return fail(400, "invalid JSON");
      }
      const b = obj(body);
      if (!b) return fail(400, "body must be an object");
      const err = specError(b, projectIds, machines);
      if (err) return fail(422, err);
      seq++;
      const job: FakeSemaphoreJob = {
        id: crypto.randomUUID(),
        body: b,
        polls: 0,
        ip: `198.51.100.${seq}`,
        sshPort: 32000 + seq,
        created: Math.floor(Date.now() / 1000),
      };
      const chosen = options.onCreate?.(job);
      if (chosen?.ip) job.ip = chosen.ip;
      if (chosen?.sshPort) job.sshPort = chosen.sshPort;
      jobs.set(job.id, job);
      return json(200, view(job));
    }
    m = /^\/jobs\/([^/]+)(\/debug_ssh_key|\/stop)?$/.exec(path);
    if (m) {
      const job = jobs.get(decodeURIComponent(m[1]));
      if (!job) return fail(404, "job not found");
      if (req.method === "GET" && !m[2]) {
        read(job);
        return json(200, view(job));
      }
      if (req.method === "GET" && m[2] === "/debug_ssh_key") {
        if (stateOf(job) !== "RUNNING") {
          return fail(404, "debug key is available only while the job runs");
        }
        return json(200, { key: options.debugKey ?? DUMMY_KEY });
      }
      if (req.method === "POST" && m[2] === "/stop") {
        await req.body?.cancel();
        if (!job.result) job.result = "STOPPED";
        return json(200, {});
      }
    }
    return fail(404, `no route ${req.method} ${path}`);
  }

  const http: FakeHttp = serveFake(async (req) => {
    const u = new URL(req.url);
    const path = u.pathname.replace(/^\/api\/v1alpha/, "");
    const { rec: record } = recordRequest(requests, req, ["authorization"], path);
    const fault = takeFault(faults, req.method, path);
    let res: Response;
    if (fault && req.headers.get("authorization") === `Token ${token}`) {
      await req.body?.cancel();
      res = json(fault.status, { message: fault.message ?? fault.code }, fault.headers);
    } else if (!u.pathname.startsWith("/api/v1alpha/")) {
      res = fail(404, "not found");
    } else {
      if (req.method === "POST") {
        record.body = await jsonBodyOf(req);
      }
      res = await route(req, path, u.searchParams);
    }
    record.status = res.status;
    return res;
  });
  base = `${http.url}/api/v1alpha`;

  return {
    url: base,
    token,
    requests,
    jobs,
    projects,
    activeJobs: () => [...jobs.values()].filter((j) => !j.result),
    inject: (f) => faults.push(f),
    close: () => http.close(),
    [Symbol.asyncDispose]: () => http.close(),
  };
}
