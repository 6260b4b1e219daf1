/**
 * Pieces shared by the HTTP cloud providers (Hetzner, AWS, …): the injectable
 * runtime knobs (SSH wait, poll interval, sleep, clock), config value readers,
 * endpoint checks, secret redaction and backoff. No provider-specific code.
 *
 * @module
 */

import { sleep } from "../../lib/core/async.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { knownHostsPath } from "../../lib/core/home.ts";
import { decodeLabels, isValidLabelValue, type Labels } from "../../lib/core/labels.ts";
import { waitForSsh } from "../../lib/ssh/args.ts";
import { forgetHostKey, prepareKnownHosts } from "../../lib/ssh/known_hosts.ts";
import type { CreateSpec, ProviderContext, ProviderLease, SshTarget } from "../types.ts";

/** Waits until a fresh box answers SSH; the default runs the system `ssh`. */
export type SshWaiter = (
  target: SshTarget,
  options: { knownHostsFile: string; timeoutMs: number; signal?: AbortSignal },
) => Promise<void>;

/** Sleeps `ms` milliseconds; rejects when `signal` aborts. */
export type Sleeper = (ms: number, signal?: AbortSignal) => Promise<void>;

/**
 * Knobs a cloud provider factory accepts besides its {@link ProviderContext}.
 * Everything has a production default; tests shorten or replace them.
 */
export interface CloudProviderOptions {
  /** SSH readiness check after create; `false` skips it (contract tests without sshd). */
  waitForSsh?: SshWaiter | false;
  /** Delay between status polls (default: the provider's documented cadence). */
  pollIntervalMs?: number;
  /** How long create waits for `running` and a public IPv4 (default 10 minutes). */
  readyTimeoutMs?: number;
  /** How long create waits for SSH (default 5 minutes). */
  sshTimeoutMs?: number;
  /** How long delete waits for a box to be gone before cleaning shared resources (default 5 minutes). */
  goneTimeoutMs?: number;
  /** Retries after throttling or a 5xx answer (default 4). */
  maxRetries?: number;
  /** Longest single backoff or rate-limit wait (default 30 s). */
  maxBackoffMs?: number;
  /** Sleep implementation (tests record the delays instead of waiting). */
  sleep?: Sleeper;
  /** Clock in epoch milliseconds. */
  now?: () => number;
}

/** {@link CloudProviderOptions} with every default filled in. */
export interface CloudRuntime {
  /** SSH readiness check, or `false`. */
  waitForSsh: SshWaiter | false;
  /** Delay between status polls. */
  pollIntervalMs: number;
  /** Budget for `running` + public IPv4. */
  readyTimeoutMs: number;
  /** Budget for SSH. */
  sshTimeoutMs: number;
  /** Budget for a deleted box to disappear. */
  goneTimeoutMs: number;
  /** Retries after throttling or 5xx. */
  maxRetries: number;
  /** Longest single wait. */
  maxBackoffMs: number;
  /** Sleep. */
  sleep: Sleeper;
  /** Clock. */
  now: () => number;
}

/**
 * The real SSH waiter: prepares the crew's known_hosts file, forgets a stale
 * key for the same address (cloud IPs are recycled), then runs
 * `lib/ssh` `waitForSsh`.
 */
export function realSshWaiter(ctx: ProviderContext): SshWaiter {
  return async (target, { knownHostsFile, timeoutMs, signal }) => {
    await forgetHostKey(knownHostsFile, target.host, target.port);
    await prepareKnownHosts(target, knownHostsFile);
    await waitForSsh(target, knownHostsFile, timeoutMs, { env: ctx.env, signal });
  };
}

/**
 * Fill in defaults for a provider's runtime knobs.
 *
 * @example
 * ```ts
 * import { cloudRuntime } from "./common.ts";
 * const rt = cloudRuntime({ home: "/tmp", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false }, 3000);
 * rt.pollIntervalMs; // 3000
 * ```
 */
export function cloudRuntime(
  ctx: ProviderContext,
  options: CloudProviderOptions,
  defaultPollMs: number,
): CloudRuntime {
  return {
    waitForSsh: options.waitForSsh === undefined ? realSshWaiter(ctx) : options.waitForSsh,
    pollIntervalMs: options.pollIntervalMs ?? defaultPollMs,
    readyTimeoutMs: options.readyTimeoutMs ?? 600_000,
    sshTimeoutMs: options.sshTimeoutMs ?? 300_000,
    goneTimeoutMs: options.goneTimeoutMs ?? 300_000,
    maxRetries: options.maxRetries ?? 4,
    maxBackoffMs: options.maxBackoffMs ?? 30_000,
    sleep: options.sleep ?? sleep,
    now: options.now ?? Date.now,
  };
}

/** The crew or lease that owns a box, from its labels. */
export interface BoxOwner {
  /** Normalized crew, if any. */
  crew?: string;
  /** Lease id. */
  leaseId: string;
}

/** The crew/lease facts of reserved labels, or `undefined` when not a crabbox box. */
export function ownerOf(labels: Labels | undefined): BoxOwner | undefined {
  const facts = decodeLabels(labels);
  return facts ? { crew: facts.crew, leaseId: facts.leaseId } : undefined;
}

/**
 * Name of the per-crew resources (key, security group): `crabbox-crew-<crew>`,
 * or `crabbox-<lease id>` for a lease without crew.
 *
 * @example
 * ```ts
 * import { sharedResourceName } from "./common.ts";
 * sharedResourceName({ crew: "pr-42", leaseId: "cbx-0123456789ab" }); // "crabbox-crew-pr-42"
 * ```
 */
export function sharedResourceName(owner: BoxOwner): string {
  return owner.crew ? `crabbox-crew-${owner.crew}` : `crabbox-${owner.leaseId}`;
}

/** Labels identifying per-crew resources: `crabbox=true` plus `crew` or `crabbox-lease`. */
export function sharedResourceLabels(owner: BoxOwner): Labels {
  return owner.crew
    ? { crabbox: "true", crew: owner.crew }
    : { crabbox: "true", "crabbox-lease": owner.leaseId };
}

/** Throws a usage error unless `crew` is a valid label value (keeps selectors injection-free). */
export function assertSelectorValue(what: string, value: string): string {
  if (value === "" || !isValidLabelValue(value)) {
    throw new CrabboxError(
      "usage",
      "bad_selector",
      `${what} ${JSON.stringify(value)} is not a valid label value`,
    );
  }
  return value;
}

/**
 * A string config value; wrong types are config errors naming `provider.key`.
 *
 * @example
 * ```ts
 * import { configString } from "./common.ts";
 * configString({ image: "ubuntu-24.04" }, "hetzner", "image"); // "ubuntu-24.04"
 * ```
 */
export function configString(
  config: Record<string, unknown>,
  provider: string,
  key: string,
): string | undefined {
  const v = config[key];
  if (v === undefined || v === null) return undefined;
  // deno-lint-ignore no-control-regex
  if (typeof v !== "string" || v.trim() === "" || /[\s\x00-\x1f\x7f]/.test(v.trim())) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      `${provider}.${key} must be a non-empty string without spaces`,
    );
  }
  return v.trim();
}

/**
 * A list of non-empty strings (spaces allowed inside an item, e.g. GPU type
 * names); a single string is a one-item list.
 *
 * @example
 * ```ts
 * import { configStringList } from "./common.ts";
 * configStringList({ gpuTypeIds: ["NVIDIA L4"] }, "runpod", "gpuTypeIds", []); // ["NVIDIA L4"]
 * ```
 */
export function configStringList(
  config: Record<string, unknown>,
  provider: string,
  key: string,
  fallback: string[],
): string[] {
  const v = config[key];
  if (v === undefined || v === null) return fallback;
  const list = typeof v === "string" ? [v] : v;
  // deno-lint-ignore no-control-regex
  const ok = (x: unknown) => typeof x === "string" && x.trim() !== "" && !/[\x00-\x1f\x7f]/.test(x);
  if (!Array.isArray(list) || list.length === 0 || !list.every(ok)) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      `${provider}.${key} must be a non-empty list of strings`,
    );
  }
  return list.map((x) => (x as string).trim());
}

/** An integer config value in `[min, max]`. */
export function configInt(
  config: Record<string, unknown>,
  provider: string,
  key: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      `${provider}.${key} must be ${min}..${max}`,
    );
  }
  return v;
}

/** A TCP port config value (1..65535). */
export function configPort(
  config: Record<string, unknown>,
  provider: string,
  key: string,
  fallback: number,
): number {
  const v = config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new CrabboxError("config", "bad_config_value", `${provider}.${key} must be 1..65535`);
  }
  return v;
}

/**
 * Parse an API base URL from the environment or config. `http:` is allowed
 * only for loopback hosts (fakes, tunnels): credentials never travel in clear
 * text over a network.
 *
 * @example
 * ```ts
 * import { apiBaseUrl } from "./common.ts";
 * apiBaseUrl("CRABBOX_HETZNER_API_URL", "http://127.0.0.1:8080/v1").href; // "http://127.0.0.1:8080/v1"
 * ```
 */
export function apiBaseUrl(what: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CrabboxError(
      "usage",
      "bad_endpoint",
      `${what} ${JSON.stringify(value)} is not a URL`,
    );
  }
  const loopback = /^(127(\.\d{1,3}){3}|localhost|\[::1\])$/.test(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new CrabboxError(
      "usage",
      "bad_endpoint",
      `${what} must be an https URL (http only for 127.0.0.1/localhost), got ${url.protocol}//${url.host}`,
    );
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new CrabboxError(
      "usage",
      "bad_endpoint",
      `${what} must not contain credentials, a query or a fragment`,
    );
  }
  return url;
}

/**
 * Exponential backoff with equal jitter, capped: attempt 0 → 0.5–1 × base.
 *
 * @example
 * ```ts
 * import { backoffMs } from "./common.ts";
 * backoffMs(3, 500, 2000, () => 0); // 1000
 * ```
 */
export function backoffMs(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const full = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(full / 2 + random() * (full / 2));
}

/** True for a dotted-quad IPv4 address (each part 0..255). */
export function isIpv4(value: unknown): value is string {
  if (typeof value !== "string") return false;
  const parts = value.split(".");
  return parts.length === 4 &&
    parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** A provider error for a deadline that passed while waiting for `what`. */
export function timeoutError(provider: string, what: string, ms: number): CrabboxError {
  return new CrabboxError(
    "provider",
    `${provider}_timeout`,
    `${provider}: ${what} did not happen within ${Math.round(ms / 1000)}s`,
  );
}

/**
 * The error of a failed create, extended with what its rollback could not
 * remove (`left behind: …`), so the user knows exactly what still costs
 * money. Returns `e` unchanged when nothing was left or it is not a
 * {@link CrabboxError}.
 *
 * @example
 * ```ts
 * import { withLeftBehind } from "./common.ts";
 * import { CrabboxError } from "@crabbox/crabbox";
 * withLeftBehind(new CrabboxError("provider", "x", "create failed"), ["server 42"]);
 * // message: "create failed; left behind: server 42"
 * ```
 */
export function withLeftBehind(e: unknown, left: readonly string[]): unknown {
  if (left.length === 0 || !(e instanceof CrabboxError)) return e;
  return new CrabboxError(e.kind, e.code, `${e.message}; left behind: ${left.join(", ")}`, {
    hint: e.hint,
    details: { ...e.details, leftBehind: [...left] },
  });
}

/** What {@link finishCreate} needs. */
export interface FinishCreate {
  /** Provider name (`runpod`). */
  provider: string;
  /** What was made, for log lines (`pod crabbox-api-0123456789ab`). */
  what: string;
  /** Context (home, log). */
  ctx: ProviderContext;
  /** Runtime (SSH wait and its budget). */
  rt: CloudRuntime;
  /** The create spec (crew, for the known_hosts file). */
  spec: CreateSpec;
  /** Waits until the resource is up and returns its lease, with an SSH target. */
  ready: () => Promise<ProviderLease>;
  /** Removes what was made (after any failure). */
  remove: () => Promise<void>;
  /** Abort signal. */
  signal?: AbortSignal;
}

/**
 * The end of a create, once the provider made its resource: wait until it
 * is up, wait for SSH, and on any failure remove what was made (logging a
 * removal that fails) before rethrowing.
 */
export async function finishCreate(o: FinishCreate): Promise<ProviderLease> {
  const { ctx, rt } = o;
  try {
    const lease = await o.ready();
    if (!lease.ssh) {
      throw new CrabboxError(
        "provider",
        `${o.provider}_bad_response`,
        `${o.provider}: ${o.what} is up but has no SSH endpoint`,
      );
    }
    if (rt.waitForSsh) {
      ctx.log(
        `${o.provider}: ${o.what} is up; waiting for ssh at ${lease.ssh.host}:${lease.ssh.port}`,
      );
      await rt.waitForSsh(lease.ssh, {
        knownHostsFile: knownHostsPath(ctx.home, o.spec),
        timeoutMs: rt.sshTimeoutMs,
        signal: o.signal,
      });
    }
    return lease;
  } catch (e) {
    ctx.log(`${o.provider}: create of ${o.what} failed; removing it`);
    await o.remove().catch((d) =>
      ctx.log(`${o.provider}: could not remove ${o.what}: ${(d as Error).message}`)
    );
    throw e;
  }
}

/**
 * Refuse `--tailscale` in a provider without the feature (the lease layer
 * checks the registry first; this guards direct library use), with why.
 *
 * @example
 * ```ts
 * import { refuseTailscale } from "./common.ts";
 * refuseTailscale("runpod", { tailscale: false }, "pods have no TUN device"); // no error
 * ```
 */
export function refuseTailscale(
  provider: string,
  spec: { tailscale?: boolean },
  why: string,
): void {
  if (spec.tailscale) {
    throw new CrabboxError(
      "usage",
      "no_tailscale",
      `provider ${provider} cannot join a tailnet (${why}); drop --tailscale`,
    );
  }
}

/**
 * The labels a list selector asks for (`crew`, `crabbox-owner`), each
 * validated as a label value, for providers that filter on labels.
 *
 * @example
 * ```ts
 * import { selectorLabels } from "./common.ts";
 * selectorLabels({ crew: "pr-42", owner: "alice" }); // { crew: "pr-42", "crabbox-owner": "alice" }
 * ```
 */
export function selectorLabels(selector: { crew?: string; owner?: string }): Labels {
  const want: Labels = {};
  if (selector.crew !== undefined) want.crew = assertSelectorValue("crew", selector.crew);
  if (selector.owner !== undefined) {
    want["crabbox-owner"] = assertSelectorValue("owner", selector.owner);
  }
  return want;
}

/** True when `labels` carry every wanted label value. */
export function hasLabels(labels: Labels, want: Labels): boolean {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}
