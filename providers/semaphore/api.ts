/**
 * Semaphore CI API v1alpha (`https://<org>.semaphoreci.com/api/v1alpha`,
 * `Authorization: Token …`), the pure half: settings, the `POST /jobs` body
 * of a debug job kept alive by a keepalive command, job and project parsers,
 * `Link` pagination, job → lease and error mapping. A box is a running job;
 * jobs have no labels, so the lease travels in the job name
 * (`crabbox-<slug>-<lease hex>`) and its `env_vars` (the reserved labels),
 * parsed back strictly. The lease id keeps its `cbx-` form.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import { apiBaseUrl, configString, isIpv4 } from "../cloud/common.ts";
import { type ApiFailure, errorMessage, restError } from "../cloud/http_api.ts";
import { identityOf, labelsToEnv, leaseResourceName } from "../cloud/lease_identity.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** Default machine type. */
export const SEMAPHORE_DEFAULT_MACHINE = "f1-standard-2";
/** Default OS image. */
export const SEMAPHORE_DEFAULT_OS_IMAGE = "ubuntu2204";
/** Line the keepalive prints once the job's commands started. */
export const SEMAPHORE_READY_LINE = "crabbox-ready";
/** Login user on Semaphore agents. */
export const SEMAPHORE_USER = "semaphore";

/** Resolved Semaphore settings (no secrets). */
export interface SemaphoreSettings {
  /** API base URL (`…/api/v1alpha`) without trailing slash. */
  baseUrl: string;
  /** Project name. */
  project: string;
  /** Machine type. */
  machine: string;
  /** OS image. */
  osImage: string;
  /** Keepalive: seconds the job stays up. */
  idleSeconds: number;
}

/**
 * A duration like `30m`, `2h`, `90s` or plain seconds, in seconds (1 s .. 24 h).
 *
 * @example
 * ```ts
 * import { parseDurationSeconds } from "./api.ts";
 * parseDurationSeconds("30m"); // 1800
 * ```
 */
export function parseDurationSeconds(value: string): number | undefined {
  const m = /^([0-9]{1,6})(s|m|h)?$/.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * (m[2] === "h" ? 3600 : m[2] === "m" ? 60 : 1);
  return n >= 1 && n <= 86400 ? n : undefined;
}

function first(env: EnvReader, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = env(n)?.trim();
    if (v) return v;
  }
  return undefined;
}

/**
 * Settings from env (`CRABBOX_SEMAPHORE_API_URL`, else
 * `https://$SEMAPHORE_HOST/api/v1alpha`; `SEMAPHORE_PROJECT`,
 * `CRABBOX_SEMAPHORE_MACHINE`, `…_OS_IMAGE`, `…_IDLE_TIMEOUT`) and
 * `semaphore:` in config.yaml.
 *
 * @example
 * ```ts
 * import { semaphoreSettings } from "./api.ts";
 * semaphoreSettings((k) => ({ SEMAPHORE_HOST: "acme.semaphoreci.com", SEMAPHORE_PROJECT: "web" })[k], {})
 *   .baseUrl; // "https://acme.semaphoreci.com/api/v1alpha"
 * ```
 */
export function semaphoreSettings(
  env: EnvReader,
  config: Record<string, unknown>,
): SemaphoreSettings {
  let raw = first(env, "CRABBOX_SEMAPHORE_API_URL");
  if (!raw) {
    const host = first(env, "CRABBOX_SEMAPHORE_HOST", "SEMAPHORE_HOST") ??
      configString(config, "semaphore", "host");
    if (!host) {
      throw new CrabboxError("credentials", "semaphore_no_host", "SEMAPHORE_HOST is not set", {
        hint: "export SEMAPHORE_HOST=<org>.semaphoreci.com",
      });
    }
    if (!/^[a-z0-9.-]+(:[0-9]{1,5})?$/i.test(host)) {
      throw new CrabboxError(
        "usage",
        "bad_endpoint",
        `SEMAPHORE_HOST ${JSON.stringify(host)} is not a host name`,
      );
    }
    raw = `https://${host}/api/v1alpha`;
  }
  const project = first(env, "CRABBOX_SEMAPHORE_PROJECT", "SEMAPHORE_PROJECT") ??
    configString(config, "semaphore", "project");
  if (!project) {
    throw new CrabboxError("credentials", "semaphore_no_project", "SEMAPHORE_PROJECT is not set", {
      hint: "export SEMAPHORE_PROJECT=<project name> (the jobs run in that project)",
    });
  }
  const idleRaw = first(env, "CRABBOX_SEMAPHORE_IDLE_TIMEOUT") ??
    configString(config, "semaphore", "idleTimeout") ?? "30m";
  const idleSeconds = parseDurationSeconds(idleRaw);
  if (idleSeconds === undefined) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      `semaphore idle timeout ${JSON.stringify(idleRaw)} must be like 30m, 2h or 600 (at most 24h)`,
    );
  }
  return {
    baseUrl: apiBaseUrl("CRABBOX_SEMAPHORE_API_URL", raw).href.replace(/\/+$/, ""),
    project,
    machine: first(env, "CRABBOX_SEMAPHORE_MACHINE") ??
      configString(config, "semaphore", "machine") ?? SEMAPHORE_DEFAULT_MACHINE,
    osImage: first(env, "CRABBOX_SEMAPHORE_OS_IMAGE") ??
      configString(config, "semaphore", "osImage") ?? SEMAPHORE_DEFAULT_OS_IMAGE,
    idleSeconds,
  };
}

/** The API token from `CRABBOX_SEMAPHORE_TOKEN` or `SEMAPHORE_API_TOKEN`. */
export function semaphoreToken(env: EnvReader): string {
  const token = first(env, "CRABBOX_SEMAPHORE_TOKEN", "SEMAPHORE_API_TOKEN");
  if (!token) {
    throw new CrabboxError("credentials", "semaphore_no_token", "SEMAPHORE_API_TOKEN is not set", {
      hint:
        "create an API token in Semaphore (Profile settings → API token) and export SEMAPHORE_API_TOKEN",
    });
  }
  return token;
}

/**
 * The `POST /jobs` body: a debug job whose commands print the ready line and
 * then sleep for the idle timeout (the keepalive), with the reserved labels
 * in `env_vars`.
 */
export function createJobBody(
  spec: CreateSpec,
  s: SemaphoreSettings,
  projectId: string,
): Record<string, unknown> {
  return {
    apiVersion: "v1alpha",
    kind: "Job",
    metadata: { name: leaseResourceName(spec) },
    spec: {
      project_id: projectId,
      agent: { machine: { type: s.machine, os_image: s.osImage } },
      env_vars: Object.entries(labelsToEnv(spec.labels)).map(([name, value]) => ({ name, value })),
      commands: [`echo ${SEMAPHORE_READY_LINE}`, `sleep ${s.idleSeconds}`],
    },
  };
}

/** The fields of a job crabbox uses. */
export interface SemaphoreJob {
  /** Job id (UUID). */
  id: string;
  /** Job name. */
  name: string;
  /** Project id. */
  projectId: string;
  /** `PENDING`, `QUEUED`, `RUNNING` or `FINISHED`. */
  state: string;
  /** `PASSED`, `FAILED`, `STOPPED` once finished. */
  result: string;
  /** Agent IP once running. */
  ip?: string;
  /** Agent SSH port once running. */
  sshPort?: number;
  /** `env_vars` as a map. */
  env: Record<string, string>;
  /** Creation time (unix seconds string → ISO). */
  createdAt?: string;
}

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Record<string, unknown>
    : {};
}

function malformed(what: string): CrabboxError {
  return new CrabboxError(
    "provider",
    "semaphore_bad_response",
    `Semaphore returned a malformed ${what}`,
  );
}

/** Parse a job. */
export function parseJob(v: unknown): SemaphoreJob {
  const j = obj(v);
  const meta = obj(j.metadata);
  const spec = obj(j.spec);
  const status = obj(j.status);
  const agent = obj(status.agent);
  if (typeof meta.id !== "string" || meta.id === "") throw malformed("job");
  const ssh = Array.isArray(agent.ports)
    ? agent.ports.map(obj).find((p) => p.name === "ssh")?.number
    : undefined;
  const env: Record<string, string> = {};
  if (Array.isArray(spec.env_vars)) {
    for (const e of spec.env_vars.map(obj)) {
      if (typeof e.name === "string" && typeof e.value === "string") env[e.name] = e.value;
    }
  }
  const created = Number(meta.create_time);
  return {
    id: meta.id,
    name: typeof meta.name === "string" ? meta.name : "",
    projectId: typeof spec.project_id === "string" ? spec.project_id : "",
    state: typeof status.state === "string" ? status.state : "",
    result: typeof status.result === "string" ? status.result : "",
    ip: isIpv4(agent.ip) ? agent.ip : undefined,
    sshPort: typeof ssh === "number" && Number.isInteger(ssh) && ssh >= 1 && ssh <= 65535
      ? ssh
      : undefined,
    env,
    createdAt: Number.isFinite(created) && created > 0
      ? new Date(created * 1000).toISOString()
      : undefined,
  };
}

/** Parse `GET /jobs`: `{jobs: […], next_page_token}`. */
export function parseJobPage(v: unknown): { jobs: SemaphoreJob[]; next?: string } {
  const root = obj(v);
  if (!Array.isArray(root.jobs)) throw malformed("job list");
  const next = root.next_page_token;
  return {
    jobs: root.jobs.map(parseJob),
    next: typeof next === "string" && next !== "" ? next : undefined,
  };
}

/** A project's id and name. */
export function parseProject(v: unknown): { id: string; name: string } {
  const meta = obj(obj(v).metadata);
  if (typeof meta.id !== "string" || typeof meta.name !== "string") throw malformed("project");
  return { id: meta.id, name: meta.name };
}

/**
 * The `rel="next"` target of a `Link` header, as a path below `baseUrl`;
 * `undefined` when there is none or it leaves the API's origin and base path
 * (the token must not follow it).
 *
 * @example
 * ```ts
 * import { nextLinkPath } from "./api.ts";
 * nextLinkPath('<https://a.semaphoreci.com/api/v1alpha/projects?page=2>; rel="next"',
 *   "https://a.semaphoreci.com/api/v1alpha"); // "/projects?page=2"
 * ```
 */
export function nextLinkPath(link: string | null, baseUrl: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!m || !/(^|;)\s*rel="?next"?\s*(;|$)/.test(m[2])) continue;
    let url: URL;
    try {
      url = new URL(m[1], baseUrl);
    } catch {
      return undefined;
    }
    const base = new URL(baseUrl);
    if (url.origin !== base.origin || !url.pathname.startsWith(`${base.pathname}/`)) {
      return undefined;
    }
    return url.pathname.slice(base.pathname.length) + url.search;
  }
  return undefined;
}

/** True when the job is up and the agent's SSH endpoint is known. */
export function jobReady(job: SemaphoreJob): boolean {
  return job.state === "RUNNING" && job.ip !== undefined && job.sshPort !== undefined;
}

/**
 * A job as a lease; `undefined` unless it is in the project and its name and
 * env identify a crabbox lease. `keyPath` is the stored debug key.
 */
export function jobToLease(
  job: SemaphoreJob,
  projectId: string,
  keyPath: string,
): ProviderLease | undefined {
  if (job.projectId !== projectId) return undefined;
  const labels = identityOf(job.name, job.env);
  if (!labels) return undefined;
  const state: ProviderLease["state"] = job.state === "RUNNING"
    ? (jobReady(job) ? "running" : "creating")
    : job.state === "PENDING" || job.state === "QUEUED"
    ? "creating"
    : job.state === "FINISHED"
    ? "stopped"
    : "unknown";
  const lease: ProviderLease = {
    providerId: job.id,
    leaseId: labels["crabbox-lease"],
    labels,
    state,
    createdAt: job.createdAt,
    data: { name: job.name },
  };
  if (jobReady(job)) {
    lease.ssh = {
      host: job.ip!,
      port: job.sshPort!,
      user: SEMAPHORE_USER,
      identity: "lease-key",
      keyPath,
    };
  }
  return lease;
}

/**
 * Map a failed answer with the common REST mapping (401/403 → exit 9 naming
 * `SEMAPHORE_API_TOKEN`, 404 → not found, 400/422 → invalid, 429 → rate
 * limited); Semaphore's message is the `message` of its JSON body.
 *
 * @example
 * ```ts
 * import { semaphoreError } from "./api.ts";
 * semaphoreError({ status: 401, text: "Unauthorized", where: "GET /jobs" }).exitStatus; // 9
 * ```
 */
export function semaphoreError(f: ApiFailure): CrabboxError {
  return restError(f, errorMessage(f.text, ["message"]), {
    provider: "semaphore",
    label: "Semaphore",
    credentials: "SEMAPHORE_API_TOKEN",
    hint: "check SEMAPHORE_API_TOKEN and that it may run jobs in the project",
  });
}
