/**
 * The built-in providers: one entry per provider, the only list of them.
 * Config validation (allowed keys and their types), `doctor` (prerequisites,
 * credentials) and the CLI read this table; nothing in `lib/` names a
 * provider. A provider's module is imported only when it is used, so
 * `crabbox --help` stays fast.
 *
 * Adding a provider: one folder under `providers/` (with a `mod.ts` that
 * exports its factory) and one entry here.
 *
 * @module
 */

import { CrabboxError } from "../lib/core/errors.ts";
import type { ConfigKeyType, ProviderConfigSchemas } from "../lib/core/config.ts";
import type { EnvReader } from "../lib/core/fs.ts";
import type { ShapeRules } from "../lib/core/shape.ts";
import type { Feature, Provider, ProviderContext, ProviderFactory } from "./types.ts";

/** What a provider is missing on this machine, as `doctor` reports it. */
export interface PrerequisiteReport {
  /** What is missing (`root`, program names, …). */
  missing: string[];
  /** One line that says what to run. */
  message: string;
}

/** A registry entry: everything known about a provider without loading it. */
export interface ProviderEntry {
  /** Registry name (`local`, `hetzner`, …); also its config section. */
  name: string;
  /** Feature flags, the same the loaded provider reports. */
  features: ReadonlySet<Feature>;
  /** One-line description for `--help` and errors. */
  description: string;
  /** Allowed keys of its config section and their types. */
  config: Readonly<Record<string, ConfigKeyType>>;
  /** Loads the module lazily. */
  load: () => Promise<ProviderFactory>;
  /**
   * Default lease lifetime in seconds (`--ttl`, `--idle-timeout`) when neither
   * the flag nor config sets one; absent: none (the box lives until released).
   */
  lifetime?: { ttl: number; idleTimeout: number };
  /**
   * What `--type`, `--location`, `--image` and `--arch` accept (checked before
   * anything is created; the provider receives them in `CreateSpec.shape`);
   * absent: the provider takes none of them.
   */
  shape?: ShapeRules;
  /**
   * What is missing to use the provider (credentials, inventory), judged from
   * the environment and its config section without any network call;
   * `undefined` when nothing is.
   */
  credentials?: (env: EnvReader, config: Record<string, unknown>) => string | undefined;
  /**
   * What this machine lacks to run the provider's boxes (programs, root);
   * `undefined` when nothing is. Loads what it needs lazily.
   */
  prerequisites?: () => Promise<PrerequisiteReport | undefined>;
  /**
   * Check the provider's config section (an inventory, say) and throw the
   * error a create would hit, without writing anything; creates run it before
   * their first write. Loads what it needs lazily.
   */
  checkConfig?: (env: EnvReader, config: Record<string, unknown>) => Promise<void>;
}

const f = (...features: Feature[]): ReadonlySet<Feature> => new Set(features);

/** Hetzner's documented locations and server type families (cax = Arm64, the rest x86). */
const HETZNER_SHAPE: ShapeRules = {
  flags: {
    type: { pattern: /^(cx|cpx|cax|ccx)[0-9]{2}$/, example: "cpx22" },
    location: { known: ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"], example: "fsn1" },
    image: { pattern: /^[a-z0-9][a-z0-9.-]{0,62}$/, example: "ubuntu-24.04" },
    arch: { known: ["x86", "arm"], example: "arm" },
  },
  consistent: ({ type, arch }) =>
    type && arch && (type.startsWith("cax") ? "arm" : "x86") !== arch
      ? `--type ${type} is ${type.startsWith("cax") ? "arm" : "x86"}, not --arch ${arch}`
      : undefined,
};

/** Cloud boxes bill by the hour: 90 minutes of life, 30 idle, unless told otherwise. */
const CLOUD_LIFETIME = { ttl: 90 * 60, idleTimeout: 30 * 60 };

/** The built-in providers, keyed by name. */
export const providerRegistry: Readonly<Record<string, ProviderEntry>> = {
  local: {
    name: "local",
    features: f("ssh"),
    description: "boxes are Linux network namespaces with their own sshd on this machine",
    config: { subnet: "string" },
    load: async () => (await import("./local/mod.ts")).createLocalProvider,
    prerequisites: async () => {
      const { checkLocalPrerequisites, localPrerequisiteError } = await import("./local/mod.ts");
      const missing = checkLocalPrerequisites();
      return missing.length > 0
        ? { missing, message: localPrerequisiteError(missing).message }
        : undefined;
    },
  },
  ssh: {
    name: "ssh",
    features: f("ssh"),
    description: "static hosts you already own, listed in config.yaml",
    config: { hosts: "hosts" },
    load: async () => (await import("./ssh_hosts/mod.ts")).createSshProvider,
    credentials: (_env, config) =>
      Array.isArray(config.hosts) && config.hosts.length > 0
        ? undefined
        : "no hosts listed under ssh.hosts in config.yaml",
    checkConfig: async (env, config) =>
      (await import("./ssh_hosts/mod.ts")).checkSshHosts(config, env),
  },
  hetzner: {
    name: "hetzner",
    features: f("ssh", "tailscale", "cloud-init"),
    description: "Hetzner Cloud servers over the Hetzner Cloud API (HCLOUD_TOKEN)",
    config: {
      serverType: "string",
      image: "string",
      location: "string",
      sshPort: "port",
      sshUser: "string",
    },
    lifetime: CLOUD_LIFETIME,
    shape: HETZNER_SHAPE,
    load: async () => (await import("./hetzner/mod.ts")).createHetznerProvider,
    credentials: (env) => env("HCLOUD_TOKEN")?.trim() ? undefined : "HCLOUD_TOKEN is not set",
  },
  aws: {
    name: "aws",
    features: f("ssh", "tailscale", "cloud-init"),
    description: "AWS EC2 instances over the EC2 Query API (AWS_ACCESS_KEY_ID… or AWS_PROFILE)",
    config: {
      region: "string",
      instanceType: "string",
      ami: "string",
      sshUser: "string",
      sshPort: "port",
      subnetId: "string",
      sshCidrs: "strings",
      ipEchoUrl: "string",
    },
    lifetime: CLOUD_LIFETIME,
    load: async () => (await import("./aws/mod.ts")).createAwsProvider,
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
  gcp: {
    name: "gcp",
    features: f("ssh", "tailscale", "cloud-init"),
    description:
      "Google Compute Engine instances over the Compute REST API (GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_OAUTH_ACCESS_TOKEN)",
    config: {
      project: "string",
      zone: "string",
      machineType: "string",
      image: "string",
      network: "string",
      subnetwork: "string",
      sshUser: "string",
      sshPort: "port",
      credentialsFile: "string",
    },
    lifetime: CLOUD_LIFETIME,
    load: async () => (await import("./gcp/mod.ts")).createGcpProvider,
    credentials: (env, config) => {
      const creds = env("GOOGLE_OAUTH_ACCESS_TOKEN")?.trim() ||
        env("GOOGLE_APPLICATION_CREDENTIALS")?.trim() ||
        (typeof config.credentialsFile === "string" && config.credentialsFile.trim());
      if (!creds) return "GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_OAUTH_ACCESS_TOKEN) is not set";
      // A key file carries its project_id; a bare access token needs the project named.
      const project = ["CRABBOX_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT_ID"]
        .some((k) => env(k)?.trim()) || typeof config.project === "string";
      return project || !env("GOOGLE_OAUTH_ACCESS_TOKEN")?.trim()
        ? undefined
        : "no GCP project: set CRABBOX_GCP_PROJECT or gcp.project";
    },
  },
  azure: {
    name: "azure",
    features: f("ssh", "tailscale", "cloud-init"),
    description:
      "Azure virtual machines over Azure Resource Manager (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_SUBSCRIPTION_ID)",
    config: {
      subscriptionId: "string",
      location: "string",
      resourceGroup: "string",
      vmSize: "string",
      image: "string",
      sshUser: "string",
      sshPort: "port",
    },
    lifetime: CLOUD_LIFETIME,
    load: async () => (await import("./azure/mod.ts")).createAzureProvider,
    credentials: (env, config) => {
      const missing = ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"]
        .filter((k) => !env(k)?.trim());
      if (
        !env("AZURE_SUBSCRIPTION_ID")?.trim() && !env("CRABBOX_AZURE_SUBSCRIPTION_ID")?.trim() &&
        typeof config.subscriptionId !== "string"
      ) missing.push("AZURE_SUBSCRIPTION_ID");
      return missing.length > 0 ? `${missing.join(", ")} not set` : undefined;
    },
  },
  "exe-dev": {
    name: "exe-dev",
    features: f("ssh"),
    description:
      "exe.dev VMs over exe.dev's HTTPS API (EXE_TOKEN); SSH with your own exe.dev-registered key",
    config: {
      image: "string",
      cpu: "string",
      memory: "string",
      disk: "string",
      sshUser: "string",
      sshPort: "port",
      identityFile: "string",
    },
    load: async () => (await import("./exedev/mod.ts")).createExedevProvider,
    credentials: (env) =>
      ["CRABBOX_EXEDEV_TOKEN", "EXE_TOKEN"].some((k) => env(k)?.trim())
        ? undefined
        : "EXE_TOKEN (or CRABBOX_EXEDEV_TOKEN) is not set",
  },
  sprites: {
    name: "sprites",
    features: f("ssh"),
    description:
      "Fly.io Sprites over the Sprites API; SSH through its WebSocket proxy (SPRITES_TOKEN)",
    config: { sshUser: "string" },
    load: async () => (await import("./sprites/mod.ts")).createSpritesProvider,
    credentials: (env) =>
      ["CRABBOX_SPRITES_TOKEN", "SPRITES_TOKEN", "SPRITE_TOKEN", "SETUP_SPRITE_TOKEN"]
          .some((k) => env(k)?.trim())
        ? undefined
        : "CRABBOX_SPRITES_TOKEN (or SPRITES_TOKEN) is not set",
  },
  namespace: {
    name: "namespace",
    features: f("ssh"),
    description:
      "Namespace instances over the Compute API (Connect JSON); SSH through its WebSocket ingress (NSC_TOKEN_FILE)",
    config: {
      region: "string",
      virtualCpu: "integer",
      memoryMegabytes: "integer",
      machineArch: "string",
      durationMinutes: "integer",
      sshUser: "string",
    },
    load: async () => (await import("./namespace/mod.ts")).createNamespaceProvider,
    credentials: (env) => {
      const path = env("NSC_TOKEN_FILE")?.trim() || `${env("HOME")}/.config/ns/token.json`;
      try {
        Deno.statSync(path);
        return undefined;
      } catch {
        return `no Namespace token file (NSC_TOKEN_FILE or ${path})`;
      }
    },
  },
  proxmox: {
    name: "proxmox",
    features: f("ssh"),
    description:
      "Proxmox VE VMs cloned from a cloud-init template, SSH to the guest-agent IPv4 (CRABBOX_PROXMOX_TOKEN_ID/_SECRET)",
    config: {
      apiUrl: "string",
      node: "string",
      templateId: "integer",
      storage: "string",
      pool: "string",
      bridge: "string",
      user: "string",
      caCert: "string",
    },
    load: async () => (await import("./proxmox/mod.ts")).createProxmoxProvider,
    credentials: (env, config) => {
      const missing = ["CRABBOX_PROXMOX_TOKEN_ID", "CRABBOX_PROXMOX_TOKEN_SECRET"]
        .filter((k) => !env(k)?.trim());
      if (!env("CRABBOX_PROXMOX_API_URL")?.trim() && typeof config.apiUrl !== "string") {
        missing.unshift("CRABBOX_PROXMOX_API_URL");
      }
      return missing.length > 0 ? `${missing.join(", ")} not set` : undefined;
    },
  },
  runpod: {
    name: "runpod",
    features: f("ssh"),
    description:
      "RunPod pods over the REST API v1, SSH as root on the mapped public port (RUNPOD_API_KEY)",
    config: {
      imageName: "string",
      computeType: "string",
      cpuFlavorIds: "strings",
      vcpuCount: "integer",
      gpuTypeIds: "strings",
      gpuCount: "integer",
      cloudType: "string",
      containerDiskInGb: "integer",
      volumeInGb: "integer",
    },
    load: async () => (await import("./runpod/mod.ts")).createRunpodProvider,
    credentials: (env) =>
      env("CRABBOX_RUNPOD_API_KEY")?.trim() || env("RUNPOD_API_KEY")?.trim()
        ? undefined
        : "RUNPOD_API_KEY is not set",
  },
  daytona: {
    name: "daytona",
    features: f("ssh"),
    description:
      "Daytona sandboxes, SSH through Daytona's gateway with an access token as the user (DAYTONA_API_KEY)",
    config: { snapshot: "string", target: "string", user: "string", sshAccessMinutes: "integer" },
    load: async () => (await import("./daytona/mod.ts")).createDaytonaProvider,
    credentials: (env, config) => {
      const keys = [
        "CRABBOX_DAYTONA_API_KEY",
        "DAYTONA_API_KEY",
        "CRABBOX_DAYTONA_JWT_TOKEN",
        "DAYTONA_JWT_TOKEN",
      ];
      if (!keys.some((k) => env(k)?.trim())) return "DAYTONA_API_KEY is not set";
      const snapshot = env("CRABBOX_DAYTONA_SNAPSHOT")?.trim() || env("DAYTONA_SNAPSHOT")?.trim() ||
        typeof config.snapshot === "string";
      return snapshot ? undefined : "no Daytona snapshot: set DAYTONA_SNAPSHOT or daytona.snapshot";
    },
  },
  semaphore: {
    name: "semaphore",
    features: f("ssh"),
    description:
      "Semaphore CI debug jobs kept alive, SSH as semaphore with the job's handed-out key (SEMAPHORE_API_TOKEN)",
    config: {
      host: "string",
      project: "string",
      machine: "string",
      osImage: "string",
      idleTimeout: "string",
    },
    load: async () => (await import("./semaphore/mod.ts")).createSemaphoreProvider,
    credentials: (env, config) => {
      const missing: string[] = [];
      if (!env("CRABBOX_SEMAPHORE_TOKEN")?.trim() && !env("SEMAPHORE_API_TOKEN")?.trim()) {
        missing.push("SEMAPHORE_API_TOKEN");
      }
      if (
        !["CRABBOX_SEMAPHORE_API_URL", "CRABBOX_SEMAPHORE_HOST", "SEMAPHORE_HOST"].some((k) =>
          env(k)?.trim()
        ) && typeof config.host !== "string"
      ) missing.push("SEMAPHORE_HOST");
      if (
        !env("CRABBOX_SEMAPHORE_PROJECT")?.trim() && !env("SEMAPHORE_PROJECT")?.trim() &&
        typeof config.project !== "string"
      ) missing.push("SEMAPHORE_PROJECT");
      return missing.length > 0 ? `${missing.join(", ")} not set` : undefined;
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
 * import { providerEntry } from "./registry.ts";
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
 * The config schema of every registered provider (section name → key → type),
 * what config validation checks a config file against.
 *
 * @example
 * ```ts
 * import { providerConfigSchemas } from "./registry.ts";
 * providerConfigSchemas().hetzner.sshPort; // "port"
 * ```
 */
export function providerConfigSchemas(): ProviderConfigSchemas {
  return Object.fromEntries(
    Object.values(providerRegistry).map((e) => [e.name, e.config]),
  );
}

/**
 * Load and build a provider by name.
 *
 * @example
 * ```ts
 * import { loadProvider } from "./registry.ts";
 * const local = await loadProvider("local", {
 *   home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {},
 * });
 * ```
 */
export async function loadProvider(name: string, ctx: ProviderContext): Promise<Provider> {
  const factory = await providerEntry(name).load();
  return factory(ctx);
}
