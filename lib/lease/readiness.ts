/**
 * Readiness of a cloud box: ssh answers, then its first boot finishes
 * (`cloud-init status --wait`, read over ssh), then — for a tailnet member —
 * its tailnet facts are read from `tailscale status --json` on the box.
 * Pure parsers decide; the thin shell runs ssh through the injected runner.
 *
 * @module
 */

import type { TailnetFacts } from "../../providers/types.ts";
import { CrabboxError } from "../core/errors.ts";
import { redact } from "../core/redact.ts";

/** Default bound of the first-boot wait (`--wait-timeout`): 10 minutes. */
export const DEFAULT_WAIT_TIMEOUT_MS = 10 * 60_000;

/** How many lines of the box's cloud-init output log a failure shows. */
export const LOG_TAIL_LINES = 15;

/** Where cloud-init writes the output of every module and runcmd on the box. */
export const CLOUD_INIT_OUTPUT_LOG = "/var/log/cloud-init-output.log";

/** The first line of a step failure written by the guarded runcmd steps. */
export const STEP_FAILED_PREFIX = "crabbox: step ";

/** What `cloud-init status --wait` said. */
export interface FirstBootStatus {
  /** `done` (also "degraded done"), `error`, or `unknown` (not cloud-init's words). */
  status: "done" | "error" | "unknown";
  /** cloud-init's own status word(s), e.g. `done`, `degraded done`, `error`. */
  reported: string;
}

/**
 * Read `cloud-init status --wait` (exit code and text). Exit 0 with
 * `status: done` is done; exit 2 is cloud-init's "recoverable error"
 * (`degraded done`): the boot finished, with warnings, so it counts as done;
 * exit 1 or `status: error` is an error.
 *
 * @example
 * ```ts
 * import { parseCloudInitStatus } from "./readiness.ts";
 * parseCloudInitStatus(0, "status: done\n"); // { status: "done", reported: "done" }
 * parseCloudInitStatus(1, "status: error\n"); // { status: "error", reported: "error" }
 * ```
 */
export function parseCloudInitStatus(code: number, stdout: string): FirstBootStatus {
  const m = /^status:\s*(.+?)\s*$/m.exec(stdout);
  const reported = m ? m[1] : "";
  if (code === 1 || reported === "error") return { status: "error", reported: reported || "error" };
  if ((code === 0 || code === 2) && /^(degraded )?done$/.test(reported)) {
    return { status: "done", reported };
  }
  return { status: "unknown", reported: reported || `exit ${code}` };
}

/**
 * The step named by the last `crabbox: step <name> failed` line of a log,
 * if any.
 *
 * @example
 * ```ts
 * import { failedStep } from "./readiness.ts";
 * failedStep("x\ncrabbox: step tailscale-join failed (exit 1)\n"); // "tailscale-join"
 * ```
 */
export function failedStep(log: string): string | undefined {
  let step: string | undefined;
  for (const line of log.split("\n")) {
    const m = /^crabbox: step ([a-z0-9-]+) failed\b/.exec(line.trim());
    if (m) step = m[1];
  }
  return step;
}

/**
 * The last `lines` lines of a log, secrets redacted (`tskey-…` always, and
 * every string in `secrets`), control characters other than tab removed.
 *
 * @example
 * ```ts
 * import { logTail } from "./readiness.ts";
 * logTail("a\nb\nkey tskey-auth-k1-abc\n", 2); // "b\nkey [redacted]"
 * ```
 */
export function logTail(log: string, lines = LOG_TAIL_LINES, secrets: string[] = []): string {
  // deno-lint-ignore no-control-regex
  const clean = log.replace(/\r/g, "").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
  return redact(clean.trimEnd().split("\n").slice(-lines).join("\n"), secrets);
}

/** What `tailscale status --json` says about the box itself. */
export interface TailnetSelf {
  /** `BackendState` (`Running`, `NeedsLogin`, `Starting`, …). */
  backendState: string;
  /** The facts to record (only when `Running` and an address is known). */
  facts?: TailnetFacts;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-f:]+$/i;
const DNS_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const TAG = /^tag:[A-Za-z][A-Za-z0-9-]*$/;

/**
 * Read `tailscale status --json`: `BackendState`, and from `Self` the first
 * IPv4 and IPv6 of `TailscaleIPs`, `DNSName` (without its trailing dot),
 * `ID` (the stable node id the API's device calls take), `HostName` and
 * `Tags`. Values that are not well-formed are left out, never passed on.
 * Unparsable text is a provider error.
 *
 * @example
 * ```ts
 * import { parseTailscaleSelf } from "./readiness.ts";
 * parseTailscaleSelf(JSON.stringify({
 *   BackendState: "Running",
 *   Self: { ID: "n1", HostName: "crabbox-api", DNSName: "crabbox-api.t.ts.net.",
 *     TailscaleIPs: ["100.64.0.1", "fd7a:115c:a1e0::1"] },
 * })).facts?.ipv4; // "100.64.0.1"
 * ```
 */
export function parseTailscaleSelf(text: string): TailnetSelf {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CrabboxError(
      "provider",
      "tailscale_status_unreadable",
      "tailscale status --json on the box did not print JSON",
    );
  }
  if (typeof doc !== "object" || doc === null) {
    throw new CrabboxError(
      "provider",
      "tailscale_status_unreadable",
      "tailscale status --json on the box did not print an object",
    );
  }
  const d = doc as Record<string, unknown>;
  const backendState = typeof d.BackendState === "string" ? d.BackendState : "unknown";
  const self = (typeof d.Self === "object" && d.Self !== null ? d.Self : {}) as Record<
    string,
    unknown
  >;
  const ips = Array.isArray(self.TailscaleIPs)
    ? self.TailscaleIPs.filter((x): x is string => typeof x === "string")
    : [];
  const ipv4 = ips.find((ip) => IPV4.test(ip));
  const ipv6 = ips.find((ip) => ip.includes(":") && IPV6.test(ip));
  const dns = typeof self.DNSName === "string" ? self.DNSName.replace(/\.$/, "").toLowerCase() : "";
  const id = typeof self.ID === "string" ? self.ID : "";
  const host = typeof self.HostName === "string" ? self.HostName : "";
  const tags = Array.isArray(self.Tags)
    ? self.Tags.filter((t): t is string => typeof t === "string" && TAG.test(t))
    : undefined;
  if (backendState !== "Running" || (!ipv4 && !ipv6)) return { backendState };
  const facts: TailnetFacts = {};
  if (ipv4) facts.ipv4 = ipv4;
  if (ipv6) facts.ipv6 = ipv6;
  if (DNS_NAME.test(dns)) facts.fqdn = dns;
  if (NODE_ID.test(id)) facts.nodeId = id;
  if (HOSTNAME.test(host)) facts.hostname = host;
  if (tags && tags.length > 0) facts.tags = tags;
  return { backendState, facts };
}

/**
 * The error for a first boot that failed: exit 4, the failing step (when a
 * guarded step named itself), the last log lines (redacted) as the hint, and
 * how to release the box, which is kept.
 */
export function firstBootError(
  who: string,
  leaseId: string,
  reported: string,
  log: string,
  secrets: string[] = [],
): CrabboxError {
  const step = failedStep(log);
  const tail = logTail(log, LOG_TAIL_LINES, secrets);
  return new CrabboxError(
    "provider",
    "first_boot_failed",
    `${who} (${leaseId}) failed its first boot${step ? `: step ${step} failed` : ""} ` +
      `(cloud-init status: ${reported}); the box is kept: release it with ` +
      `crabbox release --id ${leaseId}`,
    {
      hint: tail
        ? `last lines of ${CLOUD_INIT_OUTPUT_LOG}:\n${tail}`
        : `${CLOUD_INIT_OUTPUT_LOG} was empty or unreadable`,
    },
  );
}

/** How long to wait for the first boot, or not at all. */
export interface WaitOptions {
  /** Skip the first-boot wait and the tailnet read (`--no-wait`). */
  noWait?: boolean;
  /** Bound of the wait in milliseconds (`--wait-timeout`; default 10 min). */
  waitTimeoutMs?: number;
}

/** What waiting for a box found. */
export interface Readiness {
  /** cloud-init's status word(s), when it was waited for. */
  firstBoot?: string;
  /** Tailnet facts read from the box, for a tailnet member. */
  tailnet?: TailnetFacts;
}

/** Seams of {@link awaitReady}: run a command on the box (ssh, captured). */
export interface ReadinessShell {
  /** Run `command` on the box; `signal` bounds it. */
  run(
    command: readonly string[],
    signal: AbortSignal,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

function timeoutError(who: string, leaseId: string, what: string, ms: number): CrabboxError {
  return new CrabboxError(
    "provider",
    "first_boot_timeout",
    `${who} (${leaseId}): ${what} did not finish within ${Math.round(ms / 1000)}s; ` +
      `the box is kept: release it with crabbox release --id ${leaseId}`,
    { hint: "raise --wait-timeout, or pass --no-wait to return as soon as ssh answers" },
  );
}

/**
 * Wait until a box is ready: `cloud-init status --wait` over ssh (retried
 * while ssh drops, e.g. across a reboot), bounded by `waitTimeoutMs`; a
 * failed first boot is a {@link firstBootError} with the log tail. For a
 * tailnet member, then read `tailscale status --json` and return its facts;
 * a box whose backend is not `Running` is a provider error (the join failed).
 * `secrets` are redacted from every log line shown.
 */
export async function awaitReady(
  shell: ReadinessShell,
  box: { who: string; leaseId: string; cloudInit: boolean; tailnet: boolean },
  options: WaitOptions & { signal?: AbortSignal; secrets?: string[] } = {},
): Promise<Readiness> {
  if (options.noWait) return {};
  const ms = options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(ms);
  const signal = options.signal ? AbortSignal.any([deadline, options.signal]) : deadline;
  const secrets = options.secrets ?? [];
  const out: Readiness = {};
  const readLog = async () =>
    (await shell.run(["tail", "-n", "200", CLOUD_INIT_OUTPUT_LOG], signal).catch(() => ({
      stdout: "",
    }))).stdout;
  if (box.cloudInit) {
    let r: { code: number; stdout: string; stderr: string };
    while (true) {
      try {
        r = await shell.run(["cloud-init", "status", "--wait"], signal);
      } catch (e) {
        if (deadline.aborted) throw timeoutError(box.who, box.leaseId, "cloud-init", ms);
        throw e;
      }
      if (deadline.aborted) throw timeoutError(box.who, box.leaseId, "cloud-init", ms);
      options.signal?.throwIfAborted();
      if (r.code !== 255) break;
      await new Promise((res) => setTimeout(res, 2000));
    }
    const status = parseCloudInitStatus(r.code, r.stdout);
    if (status.status === "error") {
      throw firstBootError(box.who, box.leaseId, status.reported, await readLog(), secrets);
    }
    if (status.status === "unknown") {
      throw new CrabboxError(
        "provider",
        "first_boot_unknown",
        `${box.who} (${box.leaseId}): cloud-init status --wait gave no result (${
          redact(status.reported, secrets)
        }${r.stderr.trim() ? `: ${redact(r.stderr.trim().split("\n").pop()!, secrets)}` : ""}); ` +
          `the box is kept: release it with crabbox release --id ${box.leaseId}`,
      );
    }
    out.firstBoot = status.reported;
  }
  if (box.tailnet) {
    let r: { code: number; stdout: string; stderr: string };
    try {
      r = await shell.run(["tailscale", "status", "--json"], signal);
    } catch (e) {
      if (deadline.aborted) throw timeoutError(box.who, box.leaseId, "tailscale status", ms);
      throw e;
    }
    const self = r.code === 0 ? parseTailscaleSelf(r.stdout) : { backendState: `exit ${r.code}` };
    if (!self.facts) {
      throw new CrabboxError(
        "provider",
        "tailnet_join_failed",
        `${box.who} (${box.leaseId}) did not join the tailnet (tailscale: ${
          redact(self.backendState, secrets)
        }); the box is kept: release it with crabbox release --id ${box.leaseId}`,
        {
          hint: box.cloudInit
            ? `last lines of ${CLOUD_INIT_OUTPUT_LOG}:\n${
              logTail(await readLog(), LOG_TAIL_LINES, secrets)
            }`
            : undefined,
        },
      );
    }
    out.tailnet = self.facts;
  }
  return out;
}
