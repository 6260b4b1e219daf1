/**
 * The provider seam, types only: what every provider implements, its feature
 * flags and what it receives. The built-in providers are listed in
 * `registry.ts`.
 *
 * @module
 */

import type { EnvReader } from "../lib/core/fs.ts";
import type { Labels } from "../lib/core/labels.ts";
import type { Shape } from "../lib/core/shape.ts";
import type { SshTarget } from "../lib/ssh/args.ts";
import type { ProcessRunner } from "../lib/process/run.ts";

export type { SshTarget };

/**
 * What a provider can do: `ssh` (boxes are reached over SSH), `tailscale`
 * (boxes can join a tailnet), `cloud-init` (boxes take user-data). One flag
 * declares a limit instead: `no-port-forward` — the provider's SSH path
 * cannot forward ports (e.g. a proxy that refuses `-L`), so `crew connect`
 * and `doctor` report its members instead of failing obscurely.
 */
export type Feature = "ssh" | "tailscale" | "cloud-init" | "no-port-forward";

/** A byte stream both ways (a tunnel to a box's TCP port). */
export interface ByteTunnel {
  /** Bytes from the box. */
  readable: ReadableStream<Uint8Array>;
  /** Bytes to the box; closing it ends the tunnel. */
  writable: WritableStream<Uint8Array>;
}

/** Tailnet facts of a box, once it joined. Never holds an auth key. */
export interface TailnetFacts {
  /** Tailscale IPv4 address. */
  ipv4?: string;
  /** Tailscale IPv6 address. */
  ipv6?: string;
  /** Stable node id (`Self.ID`; what the API's device calls take). */
  nodeId?: string;
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
  /** Machine type, location, image, arch for this box (validated against the registry's rules). */
  shape?: Shape;
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
  /**
   * Only leases whose `crabbox-owner` label is this owner segment. Providers
   * that filter server-side add it to their selector; `listLeases` filters
   * again, so a provider may ignore it.
   */
  owner?: string;
}

/**
 * A place boxes come from.
 *
 * @example
 * ```ts
 * import type { Provider } from "@crabbox/crabbox";
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
  /**
   * Open a tunnel to TCP `port` on the box through the provider's proxy
   * (providers whose SSH target has a `proxyCommand`; `crabbox proxy` uses it).
   */
  openTunnel?(lease: ProviderLease, port: number, signal?: AbortSignal): Promise<ByteTunnel>;
  /**
   * A renewed SSH target for a lease whose target carries an `expiresAt`
   * (e.g. a new gateway token). Only providers with expiring targets.
   */
  refreshSsh?(lease: ProviderLease, signal?: AbortSignal): Promise<SshTarget>;
  /**
   * Replace the labels of a box (providers whose labels can change after
   * create): crabbox records the tailnet address there so other machines
   * listing the crew see it.
   */
  updateLabels?(lease: ProviderLease, labels: Labels, signal?: AbortSignal): Promise<void>;
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
  /** Starts programs (default: real programs); tests inject a fake. */
  process?: ProcessRunner;
}

/** Builds a provider from its context. */
export type ProviderFactory = (ctx: ProviderContext) => Provider;
