/**
 * The provider seam: what every provider implements, its feature flags, and
 * the lazy registry the CLI and toolkit select providers from.
 *
 * @module
 */

import { CrabboxError } from "../lib/core/errors.ts";
import type { Labels } from "../lib/core/labels.ts";
import type { EnvReader } from "../lib/core/fs.ts";

/** What a provider can do. */
export type Feature = "ssh" | "tailscale" | "cloud-init";

/** How to reach a box over SSH. */
export interface SshTarget {
  /** Host name or IP address. */
  host: string;
  /** TCP port of sshd. */
  port: number;
  /** Login user. */
  user: string;
  /** Private key path (passed with `-i` and `IdentitiesOnly=yes`). */
  keyPath?: string;
  /** Pinned host key line (`ssh-ed25519 AAAA…`), when the provider knows it. */
  hostKey?: string;
}

/** Tailnet facts of a box, once it joined. Never holds an auth key. */
export interface TailnetFacts {
  /** Tailscale IPv4 address. */
  ipv4?: string;
  /** MagicDNS name. */
  fqdn?: string;
  /** Tailnet host name (`crabbox-<slug>`). */
  hostname?: string;
  /** Tags the node advertises. */
  tags?: string[];
}

/** Everything a provider needs to create one box. */
export interface CreateSpec {
  /** Lease id, `cbx-<12 hex>`. */
  leaseId: string;
  /** Normalized crew name, if any. */
  crew?: string;
  /** Normalized slug. */
  slug: string;
  /** Role (slug without a trailing `-<digits>`). */
  role: string;
  /** Exposed ports, sorted. */
  expose: number[];
  /** The reserved labels (and nothing else) to put on the resource. */
  labels: Labels;
  /** The crew's client public key (`ssh-ed25519 …`) to authorize on the box. */
  sshPublicKey: string;
  /** Path of the matching private key. */
  sshKeyPath: string;
  /** A shell script to run on the box once it is up (`--init`). */
  init?: string;
  /** Rendered `#cloud-config` user-data, for providers with `cloud-init`. */
  userData?: string;
  /** Whether the box joins the tailnet. */
  tailscale?: boolean;
}

/** A box as the provider sees it. */
export interface ProviderLease {
  /** The provider's own id for the resource (server id, instance id, netns). */
  providerId: string;
  /** Lease id from the labels. */
  leaseId: string;
  /** Labels as stored on the resource (or in the provider's own records). */
  labels: Labels;
  /** Provider-reported state, normalized. */
  state: "creating" | "running" | "stopped" | "deleting" | "unknown";
  /** SSH endpoint, once known. */
  ssh?: SshTarget;
  /** Tailnet facts, if known. */
  tailnet?: TailnetFacts;
  /** Creation time (ISO 8601). */
  createdAt?: string;
  /** Small provider-specific facts to keep in the claim (no secrets). */
  data?: Record<string, unknown>;
}

/** Which leases to list. */
export interface LeaseSelector {
  /** Only leases of this normalized crew. */
  crew?: string;
}

/**
 * A place boxes come from.
 *
 * @example
 * ```ts
 * import type { Provider } from "./types.ts";
 * function canMesh(p: Provider): boolean {
 *   return p.features.has("ssh");
 * }
 * ```
 */
export interface Provider {
  /** Registry name (`local`, `hetzner`, …). */
  readonly name: string;
  /** Feature flags. */
  readonly features: ReadonlySet<Feature>;
  /** Create a box; resolves when it is reachable over SSH (if it has the `ssh` feature). */
  create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease>;
  /** List crabbox boxes, filtered by the selector. */
  list(selector: LeaseSelector, signal?: AbortSignal): Promise<ProviderLease[]>;
  /** One box by provider id; `undefined` when it is gone. */
  get(providerId: string, signal?: AbortSignal): Promise<ProviderLease | undefined>;
  /** Delete a box and everything crabbox made for it; deleting a gone box succeeds. */
  delete(lease: ProviderLease, signal?: AbortSignal): Promise<void>;
  /** The SSH endpoint of a box, if it has one. */
  sshTarget(lease: ProviderLease): SshTarget | undefined;
}

/** What a provider factory receives. */
export interface ProviderContext {
  /** The crabbox home directory. */
  home: string;
  /** Environment reader (credentials, endpoint overrides). */
  env: EnvReader;
  /** This provider's section of the config file (may be empty). */
  config: Record<string, unknown>;
  /** fetch, injectable for tests. */
  fetch: typeof fetch;
  /** Progress messages (stderr in the CLI). Never receives secrets. */
  log: (message: string) => void;
}

/** Builds a provider from its context. */
export type ProviderFactory = (ctx: ProviderContext) => Provider;

/** A registry entry: features known without loading the module. */
export interface ProviderEntry {
  /** Feature flags, the same the loaded provider reports. */
  features: ReadonlySet<Feature>;
  /** One-line description for `--help` and errors. */
  description: string;
  /** Loads the module lazily. */
  load: () => Promise<ProviderFactory>;
  /**
   * What is missing to use the provider (credentials, inventory), judged from
   * the environment and its config section without any network call;
   * `undefined` when nothing is.
   */
  credentials?: (env: EnvReader, config: Record<string, unknown>) => string | undefined;
}

const f = (...features: Feature[]): ReadonlySet<Feature> => new Set(features);

/**
 * The built-in providers. Modules are imported only when a provider is used,
 * so `crabbox --help` stays fast.
 */
export const providerRegistry: Readonly<Record<string, ProviderEntry>> = {
  local: {
    features: f("ssh"),
    description: "boxes are Linux network namespaces with their own sshd on this machine",
    load: async () => (await import("./local/provider.ts")).createLocalProvider,
  },
  ssh: {
    features: f("ssh"),
    description: "static hosts you already own, listed in config.yaml",
    load: async () => (await import("./ssh_hosts/provider.ts")).createSshProvider,
    credentials: (_env, config) =>
      Array.isArray(config.hosts) && config.hosts.length > 0
        ? undefined
        : "no hosts listed under ssh.hosts in config.yaml",
  },
  hetzner: {
    features: f("ssh", "tailscale", "cloud-init"),
    description: "Hetzner Cloud servers over the Hetzner Cloud API (HCLOUD_TOKEN)",
    load: async () => (await import("./hetzner/provider.ts")).createHetznerProvider,
    credentials: (env) => env("HCLOUD_TOKEN")?.trim() ? undefined : "HCLOUD_TOKEN is not set",
  },
  aws: {
    features: f("ssh", "tailscale", "cloud-init"),
    description: "AWS EC2 instances over the EC2 Query API (AWS_ACCESS_KEY_ID… or AWS_PROFILE)",
    load: async () => (await import("./aws/provider.ts")).createAwsProvider,
    credentials: (env) => {
      if ((env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) || env("AWS_PROFILE")) {
        return undefined;
      }
      try {
        Deno.statSync(env("AWS_SHARED_CREDENTIALS_FILE") || `${env("HOME")}/.aws/credentials`);
        return undefined;
      } catch {
        return "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and there is no AWS profile";
      }
    },
  },
};

/** Names of the registered providers, sorted. */
export function providerNames(): string[] {
  return Object.keys(providerRegistry).sort();
}

/**
 * Look up a provider entry; unknown names are a usage error that lists the
 * known ones.
 *
 * @example
 * ```ts
 * import { providerEntry } from "./types.ts";
 * providerEntry("local").features.has("ssh"); // true
 * ```
 */
export function providerEntry(name: string): ProviderEntry {
  const entry = Object.hasOwn(providerRegistry, name) ? providerRegistry[name] : undefined;
  if (!entry) {
    throw new CrabboxError(
      "usage",
      "unknown_provider",
      `unknown provider ${JSON.stringify(name)} (known: ${providerNames().join(", ")})`,
    );
  }
  return entry;
}

/** Providers that have a feature, sorted by name. */
export function providersWith(feature: Feature): string[] {
  return providerNames().filter((n) => providerRegistry[n].features.has(feature));
}

/**
 * Load and build a provider by name.
 *
 * @example
 * ```ts
 * import { loadProvider } from "./types.ts";
 * const local = await loadProvider("local", {
 *   home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {},
 * });
 * ```
 */
export async function loadProvider(name: string, ctx: ProviderContext): Promise<Provider> {
  const factory = await providerEntry(name).load();
  return factory(ctx);
}
