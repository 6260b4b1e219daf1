/**
 * The effectful context every toolkit function runs in: home directory,
 * environment, config, fetch, logging and provider instances. Tests inject
 * each piece; scripts usually pass nothing.
 *
 * @module
 */

import { type Config, loadConfig } from "./core/config.ts";
import { crabboxHome, type EnvReader, processEnv } from "./core/fs.ts";
import type { ShapeRules } from "./core/shape.ts";
import {
  loadProvider,
  providerConfigSchemas,
  providerEntry,
  providerRegistry,
} from "../providers/registry.ts";
import type { Feature, Provider } from "../providers/types.ts";
import { type ProcessRunner, systemProcess } from "./process/run.ts";

/** Options accepted by every toolkit function. All optional. */
export interface CrabboxOptions {
  /** Crabbox home (default `CRABBOX_HOME` or `~/.crabbox`). */
  home?: string;
  /** Environment reader (default: the process environment). */
  env?: EnvReader;
  /** Already-parsed config (default: read `<home>/config.yaml`). */
  config?: Config;
  /** fetch used by cloud providers and the Tailscale client. */
  fetch?: typeof fetch;
  /** Progress messages; never receives secrets (default: silent). */
  log?: (message: string) => void;
  /** Provider instances to use instead of the registry (tests, custom providers). */
  providers?: Record<string, Provider>;
  /** Cancels long operations. */
  signal?: AbortSignal;
  /** Starts programs (ssh, ssh-keygen, git, …); tests inject a fake (default: real programs). */
  process?: ProcessRunner;
}

/** A resolved context. */
export interface Runtime {
  /** Crabbox home directory. */
  home: string;
  /** Environment reader. */
  env: EnvReader;
  /** Parsed config. */
  config: Config;
  /** fetch. */
  fetch: typeof fetch;
  /** Progress logger. */
  log: (message: string) => void;
  /** Cancellation. */
  signal?: AbortSignal;
  /** Starts programs. */
  process: ProcessRunner;
  /** Provider instance by name, loaded lazily and cached. */
  provider(name: string): Promise<Provider>;
}

const runtimes = new WeakMap<CrabboxOptions, Promise<Runtime>>();

/**
 * Resolve options into a {@link Runtime}. Resolving the same options object
 * twice returns the same runtime (and the same provider instances).
 *
 * @example
 * ```ts
 * import { resolveRuntime } from "./runtime.ts";
 * const rt = await resolveRuntime({ home: "/tmp/cbx-example" });
 * rt.config.provider; // "local" unless configured
 * ```
 */
export function resolveRuntime(options: CrabboxOptions = {}): Promise<Runtime> {
  let rt = runtimes.get(options);
  if (!rt) {
    rt = buildRuntime(options);
    runtimes.set(options, rt);
  }
  return rt;
}

async function buildRuntime(options: CrabboxOptions): Promise<Runtime> {
  const env = options.env ?? processEnv;
  const home = options.home ?? crabboxHome(env);
  const config = options.config ?? await loadConfig(home, env, providerConfigSchemas());
  const log = options.log ?? (() => {});
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  const cache = new Map<string, Promise<Provider>>();
  const injected = options.providers ?? {};
  return {
    home,
    env,
    config,
    fetch: fetchFn,
    log,
    signal: options.signal,
    process: options.process ?? systemProcess,
    provider(name: string): Promise<Provider> {
      if (Object.hasOwn(injected, name)) return Promise.resolve(injected[name]);
      let p = cache.get(name);
      if (!p) {
        p = loadProvider(name, {
          home,
          env,
          config: config.providers[name] ?? {},
          fetch: fetchFn,
          log,
          process: options.process ?? systemProcess,
        });
        cache.set(name, p);
        p.catch(() => cache.delete(name));
      }
      return p;
    },
  };
}

/**
 * The features of a provider: an injected instance's own, else the
 * registry's (an unknown name is a usage error that lists the known ones).
 *
 * @example
 * ```ts
 * import { providerFeatures } from "./runtime.ts";
 * providerFeatures({}, "local").has("ssh"); // true
 * ```
 */
export function providerFeatures(options: CrabboxOptions, name: string): ReadonlySet<Feature> {
  const injected = options.providers;
  if (injected && Object.hasOwn(injected, name)) return injected[name].features;
  return providerEntry(name).features;
}

/**
 * {@link providerFeatures}, but an unknown provider (say, in an old claim)
 * has no features instead of being an error.
 *
 * @example
 * ```ts
 * import { providerFeaturesOrNone } from "./runtime.ts";
 * providerFeaturesOrNone({}, "no-such-provider").size; // 0
 * ```
 */
export function providerFeaturesOrNone(
  options: CrabboxOptions,
  name: string,
): ReadonlySet<Feature> {
  try {
    return providerFeatures(options, name);
  } catch {
    return new Set();
  }
}

/**
 * The lifetime a new lease of provider `name` gets when its spec sets none:
 * config (`ttl`, `idleTimeout`, env `CRABBOX_TTL`/`CRABBOX_IDLE_TIMEOUT`)
 * first, then the provider's registry default (cloud providers: 90m and 30m),
 * else none (0). Seconds.
 *
 * @example
 * ```ts
 * import { lifetimeDefaults, resolveRuntime } from "./runtime.ts";
 * const rt = await resolveRuntime({ home: "/tmp/cbx-example" });
 * lifetimeDefaults(rt.config, "hetzner"); // { ttl: 5400, idleTimeout: 1800 } unless configured
 * ```
 */
export function lifetimeDefaults(
  config: Config,
  name: string,
): { ttl: number; idleTimeout: number } {
  const entry = Object.hasOwn(providerRegistry, name) ? providerRegistry[name] : undefined;
  return {
    ttl: config.lifetime.ttl ?? entry?.lifetime?.ttl ?? 0,
    idleTimeout: config.lifetime.idleTimeout ?? entry?.lifetime?.idleTimeout ?? 0,
  };
}

/**
 * The shape rules of provider `name` from the registry (`undefined`: it takes
 * no `--type`/`--location`/`--image`/`--arch`).
 *
 * @example
 * ```ts
 * import { providerShapeRules } from "./runtime.ts";
 * providerShapeRules("local"); // undefined
 * ```
 */
export function providerShapeRules(name: string): ShapeRules | undefined {
  return Object.hasOwn(providerRegistry, name) ? providerRegistry[name].shape : undefined;
}

/**
 * Check a registered provider's config section the way its create would
 * (see `ProviderEntry.checkConfig`), writing nothing; an injected provider
 * (tests) has nothing to check.
 *
 * @example
 * ```ts
 * import { checkProviderConfig, resolveRuntime } from "./runtime.ts";
 * await checkProviderConfig(await resolveRuntime({ home: "/tmp/cbx-example" }), {}, "local");
 * ```
 */
export async function checkProviderConfig(
  rt: Runtime,
  options: CrabboxOptions,
  name: string,
): Promise<void> {
  if (options.providers && Object.hasOwn(options.providers, name)) return;
  if (!Object.hasOwn(providerRegistry, name)) return;
  await providerRegistry[name].checkConfig?.(rt.env, rt.config.providers[name] ?? {});
}
