/**
 * `crabbox proxy`: join a byte stream pair (the process's stdin/stdout, when
 * ssh runs it as `ProxyCommand`) to a TCP port on a box through the box's
 * provider (its `openTunnel`).
 *
 * @module
 */

import { loadClaim } from "./claims.ts";
import { CrabboxError } from "../core/errors.ts";
import { isLeaseId } from "../core/names.ts";
import { type CrabboxOptions, resolveRuntime } from "../runtime.ts";
import type { ByteTunnel, ProviderLease } from "../../providers/types.ts";

/** Which box to reach; `provider`/`providerId` default to the lease's claim. */
export interface ProxyRequest {
  /** Lease id. */
  leaseId: string;
  /** Provider name (skips the claim lookup, for boxes still being created). */
  provider?: string;
  /** The provider's id of the box. */
  providerId?: string;
  /** TCP port on the box (default 22). */
  port?: number;
}

/**
 * True for the error of a write to an output whose reader is gone (ssh
 * exited and closed its end of the pipe).
 */
function readerGone(e: unknown): boolean {
  return e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset;
}

/**
 * Copy bytes both ways until either side ends, then end the other:
 * - `input` ends → the tunnel is closed (its close is bounded, see the
 *   provider's tunnel), the rest from the box is copied, `output` is closed;
 * - the box side ends → `output` is closed and `input` is no longer read;
 * - `output`'s reader is gone → the tunnel is closed and this resolves.
 *
 * Resolves when the box side is done; rejects with the tunnel's error when
 * the box side failed (e.g. the server dropped the connection).
 *
 * @example
 * ```ts
 * import { pipeTunnel } from "./proxy.ts";
 * declare const tunnel: import("../../providers/mod.ts").ByteTunnel;
 * await pipeTunnel(tunnel, Deno.stdin.readable, Deno.stdout.writable);
 * ```
 */
export async function pipeTunnel(
  tunnel: ByteTunnel,
  input: ReadableStream<Uint8Array>,
  output: WritableStream<Uint8Array>,
): Promise<void> {
  const stopInput = new AbortController();
  input.pipeTo(tunnel.writable, { signal: stopInput.signal }).catch(() => {});
  try {
    await tunnel.readable.pipeTo(output);
  } catch (e) {
    if (!readerGone(e)) throw e;
  } finally {
    stopInput.abort();
  }
}

/**
 * Open the provider's tunnel to the box of `request` and pipe `input`/`output`
 * through it.
 *
 * @example
 * ```ts
 * import { proxyToLease } from "./proxy.ts";
 * await proxyToLease({ leaseId: "cbx-0123456789ab" }, Deno.stdin.readable, Deno.stdout.writable);
 * ```
 */
export async function proxyToLease(
  request: ProxyRequest,
  input: ReadableStream<Uint8Array>,
  output: WritableStream<Uint8Array>,
  options: CrabboxOptions = {},
): Promise<void> {
  const rt = await resolveRuntime(options);
  const port = request.port ?? 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CrabboxError("usage", "bad_port", `--port ${port} must be 1..65535`);
  }
  if (!isLeaseId(request.leaseId)) {
    throw new CrabboxError(
      "usage",
      "bad_lease_id",
      `${JSON.stringify(request.leaseId)} is not a lease id`,
    );
  }
  let lease: ProviderLease;
  let providerName = request.provider;
  if (providerName !== undefined && request.providerId !== undefined) {
    lease = {
      providerId: request.providerId,
      leaseId: request.leaseId,
      labels: {},
      state: "unknown",
    };
  } else {
    const claim = await loadClaim(rt.home, request.leaseId);
    if (!claim) {
      throw new CrabboxError("notFound", "no_lease", `no lease ${request.leaseId} in ${rt.home}`);
    }
    providerName = claim.provider;
    lease = {
      providerId: claim.providerId,
      leaseId: claim.id,
      labels: claim.labels,
      state: "unknown",
      ssh: claim.ssh,
      data: claim.data,
    };
  }
  const provider = await rt.provider(providerName);
  if (!provider.openTunnel) {
    throw new CrabboxError(
      "usage",
      "no_proxy",
      `provider ${providerName} reaches its boxes directly; it has no proxy`,
    );
  }
  const tunnel = await provider.openTunnel(lease, port, rt.signal);
  await pipeTunnel(tunnel, input, output);
}
