/**
 * Which address ssh uses to reach a lease: `--network auto|tailscale|public`
 * (and the `network` config key). `auto` takes the member's recorded tailnet
 * address when this machine is on the same tailnet and sees the peer online
 * (local `tailscale status --json`), else the public address; `tailscale`
 * insists and says why it cannot; `public` never looks. Pure decisions; the
 * local status is read through the injected process runner.
 *
 * @module
 */

import type { Lease } from "./claims.ts";
import { CrabboxError, usageError } from "../core/errors.ts";
import type { ProcessRunner } from "../process/run.ts";

/** How to reach a tailnet member. */
export type NetworkMode = "auto" | "tailscale" | "public";

/** The network modes, in help order. */
export const NETWORK_MODES: readonly NetworkMode[] = ["auto", "tailscale", "public"];

/**
 * A `--network` value, or a usage error naming it.
 *
 * @example
 * ```ts
 * import { parseNetworkMode } from "./network.ts";
 * parseNetworkMode("tailscale"); // "tailscale"
 * ```
 */
export function parseNetworkMode(text: string): NetworkMode {
  const v = text.trim().toLowerCase();
  if ((NETWORK_MODES as readonly string[]).includes(v)) return v as NetworkMode;
  throw usageError(
    "bad_network",
    `--network ${JSON.stringify(text.slice(0, 40))} must be auto, tailscale or public`,
  );
}

/** This machine's view of its tailnet. */
export interface LocalTailnetView {
  /** `BackendState` is `Running`. */
  running: boolean;
  /** Tailscale IPs of peers this machine sees online. */
  online: ReadonlySet<string>;
  /** Why this machine is not usable on the tailnet (when not running). */
  reason?: string;
}

/**
 * Read this machine's `tailscale status --json`: running or not, and the
 * addresses of the peers it sees online.
 *
 * @example
 * ```ts
 * import { parseLocalTailnetStatus } from "./network.ts";
 * parseLocalTailnetStatus(JSON.stringify({
 *   BackendState: "Running",
 *   Peer: { "nodekey:1": { TailscaleIPs: ["100.64.0.2"], Online: true } },
 * })).online.has("100.64.0.2"); // true
 * ```
 */
export function parseLocalTailnetStatus(text: string): LocalTailnetView {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
    if (typeof doc !== "object" || doc === null) throw new Error("not an object");
  } catch {
    return { running: false, online: new Set(), reason: "tailscale status --json is unreadable" };
  }
  const state = typeof doc.BackendState === "string" ? doc.BackendState : "unknown";
  if (state !== "Running") {
    return { running: false, online: new Set(), reason: `tailscale here is ${state}` };
  }
  const online = new Set<string>();
  const peers = typeof doc.Peer === "object" && doc.Peer !== null ? Object.values(doc.Peer) : [];
  for (const p of peers) {
    if (typeof p !== "object" || p === null) continue;
    const peer = p as { TailscaleIPs?: unknown; Online?: unknown };
    if (peer.Online !== true || !Array.isArray(peer.TailscaleIPs)) continue;
    for (const ip of peer.TailscaleIPs) if (typeof ip === "string") online.add(ip);
  }
  return { running: true, online };
}

/** How long the local `tailscale status --json` may take. */
export const LOCAL_STATUS_TIMEOUT_MS = 5_000;

/**
 * This machine's tailnet view through `runner` (`tailscale status --json`,
 * bounded). No tailscale here, or a failure, is "not running" with the reason.
 */
export async function localTailnetView(runner: ProcessRunner): Promise<LocalTailnetView> {
  try {
    const out = await runner.output("tailscale", {
      args: ["status", "--json"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(LOCAL_STATUS_TIMEOUT_MS),
    });
    if (!out.success) {
      const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
      // `tailscale status` exits 1 when logged out or stopped, still printing JSON.
      const view = parseLocalTailnetStatus(new TextDecoder().decode(out.stdout));
      return view.running ? view : {
        running: false,
        online: new Set(),
        reason: view.reason ?? `tailscale status failed${why ? `: ${why}` : ""}`,
      };
    }
    return parseLocalTailnetStatus(new TextDecoder().decode(out.stdout));
  } catch (e) {
    return {
      running: false,
      online: new Set(),
      reason: e instanceof Deno.errors.NotFound
        ? "tailscale is not installed on this machine"
        : `tailscale status failed: ${(e as Error).message.split("\n")[0]}`,
    };
  }
}

/** Where ssh goes for a lease, and why. */
export interface Route {
  /** The host ssh connects to. */
  host: string;
  /** `tailnet` (the member's tailnet address) or `public` (its ssh endpoint). */
  via: "tailnet" | "public";
}

/** Whether choosing a route for this lease needs the local tailnet view at all. */
export function needsTailnetView(lease: Lease, mode: NetworkMode): boolean {
  return mode !== "public" && lease.tailscale && lease.tailnet?.ipv4 !== undefined;
}

/**
 * Pick the route for a lease (pure). `tailscale` mode throws an `ssh` error
 * that says exactly why the tailnet cannot be used.
 *
 * @example
 * ```ts
 * import { pickRoute } from "./network.ts";
 * // pickRoute(lease, "auto", { running: true, online: new Set(["100.64.0.2"]) })
 * ```
 */
export function pickRoute(
  lease: Lease,
  mode: NetworkMode,
  view: LocalTailnetView | undefined,
): Route {
  const pub = lease.ssh?.host;
  const who = `${lease.crew ? `${lease.crew}/` : ""}${lease.slug}`;
  const fail = (why: string): never => {
    throw new CrabboxError("ssh", "tailnet_unreachable", `--network tailscale: ${who} ${why}`, {
      hint: "use --network auto or public to reach it over its public address",
    });
  };
  const fallback = (why: string): Route => {
    if (mode === "tailscale") fail(why);
    if (pub === undefined) {
      throw new CrabboxError("ssh", "no_ssh_endpoint", `lease ${lease.id} has no SSH endpoint`);
    }
    return { host: pub, via: "public" };
  };
  if (mode === "public") return fallback("");
  if (!lease.tailscale) return fallback("is not a tailnet member");
  const ip = lease.tailnet?.ipv4;
  if (!ip) return fallback("has no recorded tailnet address yet (pending)");
  if (!view || !view.running) {
    return fallback(
      `cannot be reached: this machine is not on the tailnet (${
        view?.reason ?? "no local tailscale status"
      })`,
    );
  }
  if (!view.online.has(ip)) {
    return fallback(`(${ip}) is not online in this machine's tailnet view`);
  }
  return { host: ip, via: "tailnet" };
}

/**
 * The lease with its ssh host set to the chosen route (the port, user and
 * key stay). Reads the local tailnet view only when it matters. A lease
 * without an ssh endpoint is returned as it is.
 */
export async function routeLease(
  lease: Lease,
  mode: NetworkMode,
  runner: ProcessRunner,
): Promise<Lease> {
  if (!lease.ssh) return lease;
  const view = needsTailnetView(lease, mode) ? await localTailnetView(runner) : undefined;
  const route = pickRoute(lease, mode, view);
  if (!lease.ssh || route.host === lease.ssh.host) return lease;
  return { ...lease, ssh: { ...lease.ssh, host: route.host } };
}
