/**
 * The `semaphore` provider: a box is a Semaphore CI debug job kept alive by a
 * keepalive command. Create = `POST /jobs`, wait for `RUNNING` with the
 * agent's IP and SSH port, fetch the job's debug private key
 * (`GET /jobs/{id}/debug_ssh_key`) and store it 0600 under the lease; SSH as
 * `semaphore` with that key. Release = `POST /jobs/{id}/stop` and the key is
 * deleted. Request bodies and parsers live in `api.ts`.
 *
 * Env: `SEMAPHORE_API_TOKEN` (or `CRABBOX_SEMAPHORE_TOKEN`), `SEMAPHORE_HOST`
 * (`<org>.semaphoreci.com`), `SEMAPHORE_PROJECT`, `CRABBOX_SEMAPHORE_MACHINE`,
 * `CRABBOX_SEMAPHORE_OS_IMAGE`, `CRABBOX_SEMAPHORE_IDLE_TIMEOUT`,
 * `CRABBOX_SEMAPHORE_API_URL` (overrides the host).
 *
 * @example
 * ```ts
 * import { createSemaphoreProvider } from "./provider.ts";
 * const sem = createSemaphoreProvider({
 *   home: "/tmp/cbx", env: (k) => Deno.env.get(k), config: {}, fetch, log: console.error,
 * });
 * ```
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { leaseKeyPath, removeLeaseKey, storeLeaseKey } from "../../lib/ssh/keys.ts";
import {
  type CloudProviderOptions,
  cloudRuntime,
  finishCreate,
  hasLabels,
  refuseTailscale,
  selectorLabels,
  timeoutError,
} from "../cloud/common.ts";
import { badProviderIdError, notOursError } from "../cloud/delete_guard.ts";
import { apiClient } from "../cloud/http_api.ts";
import { leaseResourceName } from "../cloud/lease_identity.ts";
import type { Provider, ProviderContext, ProviderLease } from "../types.ts";
import {
  createJobBody,
  jobReady,
  jobToLease,
  nextLinkPath,
  parseJob,
  parseJobPage,
  parseProject,
  semaphoreError,
  type SemaphoreJob,
  type SemaphoreSettings,
  semaphoreSettings,
  semaphoreToken,
} from "./api.ts";

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_PAGES = 1000;

/**
 * Build the Semaphore provider. `options` injects the SSH wait, poll
 * interval, sleep and clock (tests).
 *
 * @example
 * ```ts
 * import { createSemaphoreProvider } from "./provider.ts";
 * const p = createSemaphoreProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false, pollIntervalMs: 10 },
 * );
 * p.name; // "semaphore"
 * ```
 */
export function createSemaphoreProvider(
  ctx: ProviderContext,
  options: CloudProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 2000);
  let cached: SemaphoreSettings | undefined;
  const settings = () => cached ??= semaphoreSettings(ctx.env, ctx.config);
  const call = apiClient(() => ({
    provider: "semaphore",
    baseUrl: settings().baseUrl,
    headers: () => ({ authorization: `Token ${semaphoreToken(ctx.env)}` }),
    secrets: () => [
      ctx.env("CRABBOX_SEMAPHORE_TOKEN") ?? "",
      ctx.env("SEMAPHORE_API_TOKEN") ?? "",
    ],
    fetch: ctx.fetch,
    rt,
    log: ctx.log,
    toError: semaphoreError,
  }));
  const notFound = (e: unknown) => e instanceof CrabboxError && e.code === "semaphore_not_found";
  let projectId: string | undefined;

  async function project(signal?: AbortSignal): Promise<string> {
    if (projectId) return projectId;
    const name = settings().project;
    try {
      const res = await call({
        method: "GET",
        path: `/projects/${encodeURIComponent(name)}`,
        signal,
      });
      return projectId = parseProject(res.json).id;
    } catch (e) {
      if (!notFound(e)) throw e;
    }
    // Fall back to the project list (names may differ in case or be looked up by id only).
    let path: string | undefined = "/projects";
    for (let n = 0; path !== undefined && n < MAX_PAGES; n++) {
      const res = await call({ method: "GET", path, signal });
      if (!Array.isArray(res.json)) {
        throw new CrabboxError(
          "provider",
          "semaphore_bad_response",
          "Semaphore returned a malformed project list",
        );
      }
      const hit = res.json.map(parseProject).find((p) => p.name === name || p.id === name);
      if (hit) return projectId = hit.id;
      path = nextLinkPath(res.headers.get("link"), settings().baseUrl);
    }
    throw new CrabboxError(
      "config",
      "semaphore_no_such_project",
      `Semaphore project ${JSON.stringify(name)} does not exist or the token cannot see it`,
      { hint: "set SEMAPHORE_PROJECT to a project name of the organization" },
    );
  }

  async function getJob(id: string, signal?: AbortSignal): Promise<SemaphoreJob | undefined> {
    try {
      return parseJob((await call({ method: "GET", path: `/jobs/${id}`, signal })).json);
    } catch (e) {
      if (notFound(e)) return undefined;
      throw e;
    }
  }

  async function stopJob(id: string, signal?: AbortSignal): Promise<void> {
    try {
      await call({ method: "POST", path: `/jobs/${id}/stop`, signal, retryOnServerError: true });
    } catch (e) {
      if (!notFound(e)) throw e;
    }
  }

  async function waitRunning(id: string, signal?: AbortSignal): Promise<SemaphoreJob> {
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      const job = await getJob(id, signal);
      if (!job || job.state === "FINISHED") {
        throw new CrabboxError(
          "provider",
          "semaphore_job_ended",
          `Semaphore job ${id} ${
            job ? `finished (${job.result || "no result"})` : "is gone"
          } before it ran`,
        );
      }
      if (jobReady(job)) return job;
      if (rt.now() >= deadline) {
        throw timeoutError(
          "semaphore",
          `job ${id} running with an agent IP and SSH port (last state ${job.state})`,
          rt.readyTimeoutMs,
        );
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  async function listJobs(signal?: AbortSignal): Promise<SemaphoreJob[]> {
    const out: SemaphoreJob[] = [];
    let token: string | undefined;
    for (let n = 0; n < MAX_PAGES; n++) {
      const q = new URLSearchParams();
      for (const s of ["PENDING", "QUEUED", "RUNNING"]) q.append("states", s);
      q.set("page_size", "100");
      if (token) q.set("page_token", token);
      const page = parseJobPage((await call({ method: "GET", path: `/jobs?${q}`, signal })).json);
      out.push(...page.jobs);
      if (!page.next || page.next === token) return out;
      token = page.next;
    }
    throw timeoutError("semaphore", "pagination of /jobs", 0);
  }

  const toLease = (job: SemaphoreJob, pid: string) => {
    const lease = jobToLease(job, pid, "");
    if (lease?.ssh) lease.ssh.keyPath = leaseKeyPath(ctx.home, lease.leaseId);
    return lease;
  };

  return {
    name: "semaphore",
    features: new Set(["ssh"]),

    async create(spec, signal): Promise<ProviderLease> {
      refuseTailscale("semaphore", spec, "a CI job is not a tailnet node");
      const s = settings();
      const pid = await project(signal);
      const name = leaseResourceName(spec);
      ctx.log(`semaphore: starting debug job ${name} (${s.machine}, ${s.osImage})`);
      const created = parseJob(
        (await call({
          method: "POST",
          path: "/jobs",
          body: { json: createJobBody(spec, s, pid) },
          signal,
        }))
          .json,
      );
      return await finishCreate({
        provider: "semaphore",
        what: `job ${name} (${created.id})`,
        ctx,
        rt,
        spec,
        signal,
        ready: async () => {
          const job = await waitRunning(created.id, signal);
          const keyRes = await call({
            method: "GET",
            path: `/jobs/${job.id}/debug_ssh_key`,
            signal,
          });
          const pem = (keyRes.json as { key?: unknown } | undefined)?.key;
          if (typeof pem !== "string") {
            throw new CrabboxError(
              "provider",
              "semaphore_bad_response",
              "Semaphore returned no debug SSH key",
            );
          }
          await storeLeaseKey(ctx.home, spec.leaseId, pem);
          const lease = toLease(job, pid);
          if (!lease) {
            throw new CrabboxError(
              "provider",
              "semaphore_bad_response",
              `Semaphore job ${job.id} does not carry the name and env crabbox gave it`,
            );
          }
          return lease;
        },
        remove: async () => {
          await stopJob(created.id);
          await removeLeaseKey(ctx.home, spec.leaseId);
        },
      });
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const want = selectorLabels(selector);
      const pid = await project(signal);
      return (await listJobs(signal))
        .map((j) => toLease(j, pid))
        .filter((l): l is ProviderLease => l !== undefined)
        .filter((l) => hasLabels(l.labels, want));
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      if (!JOB_ID.test(providerId)) return undefined;
      const job = await getJob(providerId, signal);
      if (!job || job.state === "FINISHED") return undefined;
      return toLease(job, await project(signal));
    },

    async delete(lease, signal): Promise<void> {
      if (!JOB_ID.test(lease.providerId)) {
        throw badProviderIdError("semaphore", lease.providerId, "a Semaphore job id");
      }
      const job = await getJob(lease.providerId, signal);
      if (job && job.state !== "FINISHED") {
        const mine = toLease(job, await project(signal));
        if (mine?.leaseId !== lease.leaseId) {
          throw notOursError(
            "semaphore",
            `Semaphore job ${job.id} (${job.name})`,
            lease.leaseId,
            "stopping",
          );
        }
        await stopJob(job.id, signal);
        ctx.log(`semaphore: stopped job ${job.id} (${job.name})`);
      }
      await removeLeaseKey(ctx.home, lease.leaseId);
    },

    sshTarget(lease) {
      return lease.ssh;
    },
  };
}
