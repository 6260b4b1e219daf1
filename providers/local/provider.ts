/**
 * The embedded default provider: every box is a Linux network namespace on
 * this machine with its own loopback, its own UTS namespace (host name
 * `crabbox-<slug>`) and its own `sshd` on the namespace's `127.0.0.1:22`.
 *
 * The host reaches a box through a relay: a `socat` listening on a loopback
 * address of its own (`127.77.<a>.<b>`, no host interface or route is
 * touched) that runs `ip netns exec <ns> socat STDIO TCP:127.0.0.1:22` per
 * connection. Box state lives in `$CRABBOX_HOME/local/<lease-id>/`; the
 * processes are started in their own sessions and outlive the CLI — a box is
 * real until it is deleted.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { Labels } from "../../lib/core/labels.ts";
import { isLeaseId } from "../../lib/core/names.ts";
import type {
  CreateSpec,
  Feature,
  LeaseSelector,
  Provider,
  ProviderContext,
  ProviderLease,
  SshTarget,
} from "../types.ts";
import {
  absolutePath,
  boxIds,
  localBoxDir,
  readBox,
  readBoxesSync,
  requireLeaseId,
  writeBox,
} from "./box.ts";
import { checkLocalPrerequisites, localPrerequisiteError } from "./prerequisites.ts";
import { createBox, destroyBox, leaseOf, validateSpec, wrapError } from "./lifecycle.ts";
import { netnsExists } from "./netns.ts";

/**
 * Build the local provider. Boxes live under `ctx.home/local/`. With
 * `ctx.config.privateSystem === true` (a test mode for scripts and tests; not
 * a config.yaml key) every box gets its own copy-on-write `/etc`,
 * `/usr/local`, `/var` and `/run`, so stand-in programs can be installed in
 * it and what cloud-init-like scripts write stays in the box.
 *
 * @example
 * ```ts
 * import { createLocalProvider } from "./provider.ts";
 * const local = createLocalProvider({
 *   home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {},
 * });
 * const leases = await local.list({ crew: "pr-42" });
 * ```
 */
export function createLocalProvider(ctx: ProviderContext): Provider {
  const home = absolutePath(ctx.home);
  // Test mode (not a config.yaml key): boxes with their own /etc, /usr/local, /var and /run.
  const privateSystem = ctx.config.privateSystem === true;
  let checked = false;
  const requirePrerequisites = () => {
    if (checked) return;
    const missing = checkLocalPrerequisites();
    if (missing.length > 0) throw localPrerequisiteError(missing);
    checked = true;
  };

  return {
    name: "local",
    features: new Set<Feature>(["ssh"]),

    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      requirePrerequisites();
      validateSpec(spec);
      signal?.throwIfAborted();
      const started = Date.now();
      try {
        const lease = await createBox(home, spec, signal, privateSystem);
        ctx.log(`local: ${spec.leaseId} (crabbox-${spec.slug}) up in ${Date.now() - started} ms`);
        return lease;
      } catch (e) {
        if (e instanceof CrabboxError && e.code === "local_box_exists") throw e;
        await destroyBox(home, spec.leaseId).catch((cleanup) =>
          ctx.log(`local: cleanup of ${spec.leaseId} failed: ${String(cleanup)}`)
        );
        throw wrapError(e, `creating local box ${spec.leaseId}`);
      }
    },

    async list(selector: LeaseSelector): Promise<ProviderLease[]> {
      // Every record is read, but only the crew's boxes are judged (netns +
      // process checks): a home with many crews stays cheap.
      const ids = await boxIds(home);
      const boxes = readBoxesSync(home, ids);
      const leases: ProviderLease[] = [];
      for (const [i, id] of ids.entries()) {
        const box = boxes[i];
        if (selector.crew !== undefined && box && box.labels.crew !== selector.crew) continue;
        const lease = box
          ? leaseOf(localBoxDir(home, id), { ...box, leaseId: id })
          : await this.get(id);
        if (!lease) continue;
        if (selector.crew !== undefined && lease.labels.crew !== selector.crew) continue;
        leases.push(lease);
      }
      return leases;
    },

    async get(providerId: string): Promise<ProviderLease | undefined> {
      if (!isLeaseId(providerId)) return undefined;
      const boxDir = localBoxDir(home, providerId);
      const box = await readBox(boxDir);
      if (box) return leaseOf(boxDir, { ...box, leaseId: providerId });
      try {
        await Deno.stat(boxDir);
      } catch {
        return undefined;
      }
      // A box dir without a record: a create that crashed early. Listed so it can be deleted.
      return {
        providerId,
        leaseId: providerId,
        labels: { crabbox: "true", "crabbox-lease": providerId },
        state: "stopped",
        data: { netns: providerId, boxDir },
      };
    },

    async updateLabels(lease: ProviderLease, labels: Labels): Promise<void> {
      const boxDir = localBoxDir(home, requireLeaseId(lease.providerId));
      const box = await readBox(boxDir);
      if (!box) {
        throw new CrabboxError(
          "notFound",
          "local_box_gone",
          `local box ${lease.providerId} is gone`,
        );
      }
      await writeBox(boxDir, { ...box, labels: { ...labels } });
    },

    async delete(lease: ProviderLease): Promise<void> {
      const id = requireLeaseId(lease.providerId);
      const present = netnsExists(id) || (await Deno.stat(localBoxDir(home, id)).then(
        () => true,
        () => false,
      ));
      if (!present) return;
      requirePrerequisites();
      try {
        await destroyBox(home, id);
      } catch (e) {
        throw wrapError(e, `deleting local box ${id}`);
      }
    },

    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh;
    },
  };
}
