/**
 * The `ssh` provider: static hosts you already own, listed under `ssh.hosts`
 * in `config.yaml`. Leasing claims a free host; releasing unclaims it. Labels
 * live in crabbox's own record of the claim, not on the host.
 *
 * @example
 * ```yaml
 * # ~/.crabbox/config.yaml
 * ssh:
 *   hosts:
 *     - { name: rack1, host: 10.0.0.5, user: ci, identityFile: ~/.ssh/id_ed25519 }
 * ```
 *
 * @module
 */

import type { StaticHost } from "../../lib/core/config.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import type { Labels } from "../../lib/core/labels.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import {
  joinPath,
  readJsonFile,
  removeFile,
  withLock,
  writeJsonAtomic,
} from "../../lib/core/fs.ts";
import { knownHostsPath } from "../../lib/core/home.ts";
import { validateSshTarget, waitForSsh } from "../../lib/ssh/args.ts";
import { runInitScript } from "../../lib/ssh/init_script.ts";
import { prepareKnownHosts } from "../../lib/ssh/known_hosts.ts";
import type { CreateSpec, Provider, ProviderContext, ProviderLease, SshTarget } from "../types.ts";

interface HostClaim {
  host: string;
  leaseId: string;
  labels: Labels;
  createdAt: string;
}

function hostsFrom(ctx: Pick<ProviderContext, "config">): StaticHost[] {
  const hosts = ctx.config.hosts;
  return Array.isArray(hosts) ? hosts as StaticHost[] : [];
}

function expandHome(path: string, ctx: Pick<ProviderContext, "env">): string {
  return path.startsWith("~/") ? joinPath(ctx.env("HOME") ?? "", path.slice(2)) : path;
}

function targetOf(host: StaticHost, ctx: Pick<ProviderContext, "env">): SshTarget {
  return validateSshTarget({
    host: host.host,
    port: host.port ?? 22,
    user: host.user ?? "root",
    keyPath: host.identityFile ? expandHome(host.identityFile, ctx) : undefined,
    hostKey: host.hostKey,
  });
}

const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * Check the `ssh.hosts` inventory without touching anything: at least one
 * host, every name usable as a file name, every host, user, port, identity
 * file and pinned host key acceptable to ssh. Runs before a create writes
 * anything (claims, crew key, known_hosts), so a bad inventory is one line
 * and an exit status with nothing created.
 *
 * @example
 * ```ts
 * import { checkSshHosts } from "./provider.ts";
 * checkSshHosts({ hosts: [{ name: "rack1", host: "10.0.0.5", user: "ci" }] }, () => undefined);
 * ```
 */
export function checkSshHosts(config: Record<string, unknown>, env: EnvReader): void {
  const ctx = { config, env } as Pick<ProviderContext, "config" | "env">;
  const hosts = hostsFrom(ctx);
  if (hosts.length === 0) throw noHosts();
  for (const h of hosts) {
    if (typeof h.name !== "string" || !HOST_NAME.test(h.name)) throw badHostName(h.name);
    targetOf(h, ctx);
  }
}

function noHosts(): CrabboxError {
  return new CrabboxError("config", "no_static_hosts", "the ssh provider has no hosts", {
    hint: "list hosts under ssh.hosts in config.yaml",
  });
}

function badHostName(name: unknown): CrabboxError {
  return new CrabboxError(
    "config",
    "bad_host_name",
    `ssh host name ${JSON.stringify(name)} is invalid`,
  );
}

/**
 * Build the `ssh` provider.
 *
 * @example
 * ```ts
 * import { createSshProvider } from "./provider.ts";
 * const p = createSshProvider({
 *   home: "/tmp/cbx", env: () => undefined, fetch, log: () => {},
 *   config: { hosts: [{ name: "rack1", host: "127.0.0.1", port: 2222 }] },
 * });
 * p.features.has("ssh"); // true
 * ```
 */
export function createSshProvider(ctx: ProviderContext): Provider {
  const dir = joinPath(ctx.home, "ssh-hosts");
  const lock = joinPath(dir, ".lock");
  const claimPath = (name: string) => {
    if (!HOST_NAME.test(name)) throw badHostName(name);
    return joinPath(dir, `${name}.json`);
  };
  const toLease = (host: StaticHost, claim: HostClaim): ProviderLease => ({
    providerId: host.name,
    leaseId: claim.leaseId,
    labels: claim.labels,
    state: "running",
    ssh: targetOf(host, ctx),
    createdAt: claim.createdAt,
  });

  const claimed = async (): Promise<[StaticHost, HostClaim][]> => {
    const out: [StaticHost, HostClaim][] = [];
    for (const host of hostsFrom(ctx)) {
      const claim = await readJsonFile<HostClaim>(claimPath(host.name));
      if (claim) out.push([host, claim]);
    }
    return out;
  };

  return {
    name: "ssh",
    features: new Set(["ssh"]),
    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      checkSshHosts(ctx.config, ctx.env);
      const hosts = hostsFrom(ctx);
      const host = await withLock(lock, async () => {
        for (const h of hosts) {
          const path = claimPath(h.name);
          if (await readJsonFile<HostClaim>(path)) continue;
          await writeJsonAtomic(
            path,
            {
              host: h.name,
              leaseId: spec.leaseId,
              labels: spec.labels,
              createdAt: new Date().toISOString(),
            } satisfies HostClaim,
          );
          return h;
        }
        return undefined;
      });
      if (!host) {
        throw new CrabboxError(
          "provider",
          "no_free_host",
          `all ${hosts.length} ssh hosts are leased`,
          {
            hint: "release a lease or add hosts to ssh.hosts",
          },
        );
      }
      const target = targetOf(host, ctx);
      try {
        const knownHosts = knownHostsPath(ctx.home, spec);
        await prepareKnownHosts(target, knownHosts);
        await waitForSsh(target, knownHosts, 20_000, { env: ctx.env, signal });
        if (spec.init !== undefined) {
          await runInitScript(target, knownHosts, spec.init, { env: ctx.env, signal });
        }
      } catch (e) {
        await withLock(lock, () => removeFile(claimPath(host.name)));
        throw e;
      }
      ctx.log(`claimed static host ${host.name}`);
      return (await this.get(host.name))!;
    },
    async list(selector): Promise<ProviderLease[]> {
      return (await claimed())
        .filter(([, c]) => selector.crew === undefined || c.labels.crew === selector.crew)
        .map(([h, c]) => toLease(h, c));
    },
    async get(providerId: string): Promise<ProviderLease | undefined> {
      const host = hostsFrom(ctx).find((h) => h.name === providerId);
      if (!host) return undefined;
      const claim = await readJsonFile<HostClaim>(claimPath(host.name));
      return claim ? toLease(host, claim) : undefined;
    },
    async delete(lease: ProviderLease): Promise<void> {
      await withLock(lock, async () => {
        const path = claimPath(lease.providerId);
        const claim = await readJsonFile<HostClaim>(path);
        if (claim && claim.leaseId === lease.leaseId) await removeFile(path);
      });
    },
    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh;
    },
  };
}
