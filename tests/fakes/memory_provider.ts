/**
 * An in-memory provider for tests of the lease flow: it keeps boxes in a map,
 * records every create spec (including user-data), and lists by crew label
 * like a cloud would. It has the `tailscale` and `cloud-init` features but no
 * `ssh`, so nothing waits for a real sshd.
 *
 * @module
 */

import type { CreateSpec, Feature, Provider, ProviderLease } from "../../providers/types.ts";

/** A {@link Provider} that also exposes what it was asked to do. */
export interface MemoryProvider extends Provider {
  /** Every create spec, in order. */
  readonly creates: CreateSpec[];
  /** Live boxes by provider id. */
  readonly boxes: Map<string, ProviderLease>;
}

/**
 * Build a memory provider named `name` with the given features.
 *
 * @example
 * ```ts
 * import { memoryProvider } from "./memory_provider.ts";
 * const p = memoryProvider("cloudy", ["tailscale", "cloud-init"]);
 * ```
 */
export function memoryProvider(
  name: string,
  features: Feature[] = ["tailscale", "cloud-init"],
): MemoryProvider {
  const creates: CreateSpec[] = [];
  const boxes = new Map<string, ProviderLease>();
  let next = 1;
  return {
    name,
    features: new Set(features),
    creates,
    boxes,
    create(spec) {
      creates.push(spec);
      const lease: ProviderLease = {
        providerId: `srv-${next++}`,
        leaseId: spec.leaseId,
        labels: { ...spec.labels },
        state: "running",
        createdAt: new Date().toISOString(),
      };
      boxes.set(lease.providerId, lease);
      return Promise.resolve(lease);
    },
    list(selector) {
      return Promise.resolve(
        [...boxes.values()].filter((b) =>
          selector.crew === undefined || b.labels.crew === selector.crew
        ),
      );
    },
    get(id) {
      return Promise.resolve(boxes.get(id));
    },
    updateLabels(lease, labels) {
      const box = boxes.get(lease.providerId);
      if (!box) return Promise.reject(new Error(`memory box ${lease.providerId} is gone`));
      box.labels = { ...labels };
      return Promise.resolve();
    },
    delete(lease) {
      boxes.delete(lease.providerId);
      return Promise.resolve();
    },
    sshTarget(lease) {
      return lease.ssh;
    },
  };
}
