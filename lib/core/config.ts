/**
 * `$CRABBOX_HOME/config.yaml` plus `CRABBOX_*` environment overrides.
 * Bad YAML and unknown keys are errors that name `file:line`.
 *
 * @module
 */

import { CrabboxError } from "./errors.ts";
import { type EnvReader, joinPath } from "./fs.ts";
import { parseSeconds } from "./duration.ts";
import { readCachedConfig, writeCachedConfig } from "./config_cache.ts";

/** One entry of a config key of type `hosts` (a static host inventory). */
export interface StaticHost {
  /** Unique name of the host in the inventory. */
  name: string;
  /** Host name or address. */
  host: string;
  /** sshd port (default 22). */
  port?: number;
  /** Login user (default `root`). */
  user?: string;
  /** Private key path. */
  identityFile?: string;
  /** Pinned host key line. */
  hostKey?: string;
}

/** The parsed configuration. */
export interface Config {
  /** Default provider (`CRABBOX_PROVIDER` overrides; default `local`). */
  provider: string;
  /** Tailscale settings. */
  tailscale: {
    /** Tags every tailnet member advertises (besides the crew tag). */
    tags: string[];
    /** A self-hosted control server (Headscale): `tailscale up --login-server=<url>`. */
    loginServer?: string;
    /** Tailnet host name template: `{crew}`, `{slug}`, `{owner}` (default `crabbox-{slug}`). */
    hostname?: string;
  };
  /** How ssh/run/crew connect reach tailnet members: `auto` (default), `tailscale`, `public`. */
  network?: "auto" | "tailscale" | "public";
  /**
   * Lease lifetime defaults in seconds (`ttl`, `idleTimeout`; env
   * `CRABBOX_TTL`, `CRABBOX_IDLE_TIMEOUT`); unset: the provider's default, 0: none.
   */
  lifetime: { ttl?: number; idleTimeout?: number };
  /** Per-provider sections, keyed by provider name. */
  providers: Record<string, Record<string, unknown>>;
  /** Where the config was read from (may not exist). */
  path: string;
}

/**
 * The type of a provider config key: `string`, `strings` (a list),
 * `integer` and `port` values are checked by the provider when it reads them;
 * `hosts` (a list of {@link StaticHost}) is checked here, with `file:line`.
 */
export type ConfigKeyType = "string" | "strings" | "integer" | "port" | "hosts";

/**
 * Provider config sections: section name → allowed key → type. The provider
 * registry (`providers/registry.ts`) supplies it; config knows no provider.
 */
export type ProviderConfigSchemas = Readonly<
  Record<string, Readonly<Record<string, ConfigKeyType>>>
>;

const STATIC_HOST_KEYS = ["name", "host", "port", "user", "identityFile", "hostKey"];

/** Path of the config file. */
export function configPath(home: string): string {
  return joinPath(home, "config.yaml");
}

/**
 * Load the config file (missing file → defaults) and apply env overrides.
 * Provider sections are checked against `schemas`. While the file is
 * unchanged its parsed form comes from `cache/config.json` in the home when
 * {@link rememberConfig} kept it (see `config_cache.ts`), so the YAML parser
 * is loaded only after an edit. Never writes.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const config = await loadConfig("/tmp/cbx-none", () => undefined, {});
 * config.provider; // "local"
 * ```
 */
export async function loadConfig(
  home: string,
  env: EnvReader,
  schemas: ProviderConfigSchemas,
): Promise<Config> {
  const path = configPath(home);
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    // No config, or a home that is not a directory (reported by its own check).
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return await parseConfig("", path, env, schemas);
    }
    const why = e instanceof Deno.errors.IsADirectory || (await isDirectory(path))
      ? "is a directory, not a file"
      : `cannot be read (${(e as Error).message.split("\n")[0]})`;
    throw new CrabboxError("config", "config_unreadable", `${path} ${why}`, {
      hint: "config.yaml must be a readable YAML file (or absent)",
    });
  }
  if (text.trim() === "") return await parseConfig(text, path, env, schemas);
  const cached = await readCachedConfig(home, { path, text, schemas });
  if (isConfigShape(cached)) {
    servedFromCache.set(home, text);
    return applyConfigEnv(cached, env);
  }
  return applyConfigEnv(await parseConfigFile(text, path, schemas), env);
}

/**
 * Keep the parsed `config.yaml` of `home` in `cache/config.json` for
 * {@link loadConfig} (nothing when it is absent, empty, invalid or already
 * cached; failures are ignored). Never called by the library itself: the CLI
 * calls it after a command succeeded, so a refused command writes nothing.
 *
 * @example
 * ```ts
 * import { rememberConfig } from "./config.ts";
 * await rememberConfig("/tmp/cbx-none", {});
 * ```
 */
export async function rememberConfig(home: string, schemas: ProviderConfigSchemas): Promise<void> {
  const path = configPath(home);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return;
  }
  if (text.trim() === "" || servedFromCache.get(home) === text) return;
  const key = { path, text, schemas };
  if (isConfigShape(await readCachedConfig(home, key))) return;
  let config: Config;
  try {
    config = await parseConfigFile(text, path, schemas);
  } catch {
    return;
  }
  await writeCachedConfig(home, key, config);
}

/**
 * The config.yaml text per home that this process last read from the cache:
 * {@link rememberConfig} has nothing to write for it (saves reading and
 * comparing the cache entry again at the end of every command).
 */
const servedFromCache = new Map<string, string>();

/** Whether a cached value has the shape of a {@link Config}. */
function isConfigShape(c: unknown): c is Config {
  const o = c as Config | null | undefined;
  return typeof o === "object" && o !== null && typeof o.provider === "string" &&
    typeof o.path === "string" && typeof o.tailscale === "object" && o.tailscale !== null &&
    Array.isArray(o.tailscale.tags) && typeof o.lifetime === "object" && o.lifetime !== null &&
    typeof o.providers === "object" && o.providers !== null;
}

async function isDirectory(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isDirectory, () => false);
}

/**
 * Parse config text (pure apart from the lazy YAML import); provider
 * sections are checked against `schemas` (unknown sections and keys are
 * errors).
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const c = await parseConfig("provider: ssh\n", "config.yaml", () => undefined, {});
 * c.provider; // "ssh"
 * ```
 */
export async function parseConfig(
  text: string,
  path: string,
  env: EnvReader,
  schemas: ProviderConfigSchemas,
): Promise<Config> {
  return applyConfigEnv(await parseConfigFile(text, path, schemas), env);
}

/** The file part of {@link parseConfig}: the YAML text without environment overrides. */
async function parseConfigFile(
  text: string,
  path: string,
  schemas: ProviderConfigSchemas,
): Promise<Config> {
  const config: Config = {
    provider: "local",
    tailscale: { tags: [] },
    lifetime: {},
    providers: {},
    path,
  };
  if (text.trim() !== "") {
    const { YAML, root, where } = await parseYamlSource(text, path, configError);
    for (const pair of root?.items ?? []) {
      const key = YAML.isScalar(pair.key) ? String(pair.key.value) : "";
      const at = where(YAML.isNode(pair.key) ? pair.key.range?.[0] : undefined);
      const value = YAML.isNode(pair.value) ? pair.value.toJSON() : pair.value;
      if (key === "provider") {
        if (typeof value !== "string") throw configError(`${at}: provider must be a string`);
        config.provider = value;
      } else if (key === "network") {
        if (value !== "auto" && value !== "tailscale" && value !== "public") {
          throw configError(`${at}: network must be auto, tailscale or public`);
        }
        config.network = value;
      } else if (key === "ttl" || key === "idleTimeout") {
        if (typeof value !== "string" && typeof value !== "number") {
          throw configError(`${at}: ${key} must be a duration like 90m (0 = none)`);
        }
        config.lifetime[key] = durationIn(String(value), `${at}: ${key}`);
      } else if (key === "tailscale") {
        checkKeys(YAML, pair.value, ["tags", "loginServer", "hostname"], where, "tailscale");
        const ts = (value ?? {}) as { tags?: unknown; loginServer?: unknown; hostname?: unknown };
        const tags = ts.tags ?? [];
        if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string" || !isTag(t))) {
          throw configError(`${at}: tailscale.tags must be a list of tags like tag:ci`);
        }
        config.tailscale.tags = tags as string[];
        if (ts.loginServer !== undefined) {
          if (typeof ts.loginServer !== "string" || !LOGIN_SERVER_URL.test(ts.loginServer)) {
            throw configError(
              `${at}: tailscale.loginServer must be an http(s) URL like https://headscale.example.com`,
            );
          }
          config.tailscale.loginServer = ts.loginServer;
        }
        if (ts.hostname !== undefined) {
          if (typeof ts.hostname !== "string" || !HOSTNAME_TEMPLATE.test(ts.hostname)) {
            throw configError(
              `${at}: tailscale.hostname must be a template of [a-z0-9-] and {crew}, {slug}, {owner}`,
            );
          }
          config.tailscale.hostname = ts.hostname;
        }
      } else if (Object.hasOwn(schemas, key)) {
        const schema = schemas[key];
        checkKeys(YAML, pair.value, Object.keys(schema), where, key);
        for (const [name, type] of Object.entries(schema)) {
          if (type === "hosts") checkStaticHosts(YAML, pair.value, where, key, name);
        }
        config.providers[key] = (value ?? {}) as Record<string, unknown>;
      } else {
        throw configError(`${at}: unknown key ${JSON.stringify(key)}`);
      }
    }
  }
  return config;
}

/** Apply the `CRABBOX_*` overrides to a parsed config (in place; returns it). */
function applyConfigEnv(config: Config, env: EnvReader): Config {
  const envProvider = env("CRABBOX_PROVIDER")?.trim();
  if (envProvider) config.provider = envProvider;
  for (
    const [name, key] of [["CRABBOX_TTL", "ttl"], ["CRABBOX_IDLE_TIMEOUT", "idleTimeout"]] as const
  ) {
    const v = env(name)?.trim();
    if (v) config.lifetime[key] = durationIn(v, name);
  }
  const envTags = env("CRABBOX_TAILSCALE_TAGS")?.trim();
  if (envTags) {
    const tags = envTags.split(",").map((t) => t.trim()).filter(Boolean);
    const bad = tags.find((t) => !isTag(t));
    if (bad) throw configError(`CRABBOX_TAILSCALE_TAGS: ${JSON.stringify(bad)} is not a tag`);
    config.tailscale.tags = tags;
  }
  return config;
}

/** An http(s) URL safe as one argv word: no spaces, quotes or shell metacharacters. */
export const LOGIN_SERVER_URL: RegExp =
  /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~\/-]*)?$/;

/** A host name template: lowercase letters, digits, `-` and the known placeholders. */
const HOSTNAME_TEMPLATE = /^([a-z0-9-]|\{(crew|slug|owner)\})+$/;
/** A YAML document parsed with positions (see {@link parseYamlSource}). */
export interface YamlSource {
  /** The `yaml` module (loaded lazily). */
  YAML: YamlModule;
  /** The root mapping (`null` for an empty document). */
  root: import("yaml").YAMLMap | null;
  /** `file:line` of a source offset (line 1 when unknown). */
  where(offset: number | undefined): string;
}

/**
 * Parse YAML text whose root must be a mapping, keeping positions so errors
 * can name `file:line`. Syntax errors, duplicate keys and a non-mapping root
 * are thrown through `fail`. Loads the `yaml` module lazily (the CLI loads
 * core for every command, yaml only when a YAML file is read; tools/layers.ts
 * allows exactly this one lazy import).
 *
 * @example
 * ```ts
 * import { parseYamlSource } from "./config.ts";
 * import { usageError } from "./errors.ts";
 * const { root } = await parseYamlSource("crew: pr-42\n", "crew.yaml", (m) => usageError("bad", m));
 * root?.get("crew"); // "pr-42"
 * ```
 */
export async function parseYamlSource(
  text: string,
  path: string,
  fail: (message: string) => Error,
): Promise<YamlSource> {
  const YAML = await import("yaml");
  const lines = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const where = (offset: number | undefined) =>
    `${path}:${offset === undefined ? 1 : lines.linePos(offset).line}`;
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    throw fail(`${where(err.pos[0])}: ${err.message.split("\n")[0]}`);
  }
  const root = doc.contents;
  if (root !== null && !YAML.isMap(root)) throw fail(`${where(0)}: must be a mapping`);
  return { YAML, root: root as import("yaml").YAMLMap | null, where };
}

/** True for a valid tailnet tag name (`tag:` + letter + letters/digits/dashes). */
export function isTag(value: string): boolean {
  return /^tag:[A-Za-z][A-Za-z0-9-]*$/.test(value);
}

type YamlModule = typeof import("yaml");

function checkKeys(
  YAML: YamlModule,
  node: unknown,
  allowed: readonly string[],
  where: (offset: number | undefined) => string,
  section: string,
): void {
  if (node === null || node === undefined || (YAML.isScalar(node) && node.value === null)) return;
  if (!YAML.isMap(node)) {
    throw configError(
      `${where(YAML.isNode(node) ? node.range?.[0] : undefined)}: ${section} must be a mapping`,
    );
  }
  for (const pair of node.items) {
    const key = YAML.isScalar(pair.key) ? String(pair.key.value) : "";
    if (!allowed.includes(key)) {
      throw configError(
        `${where(YAML.isNode(pair.key) ? pair.key.range?.[0] : undefined)}: unknown key ${
          JSON.stringify(`${section}.${key}`)
        } (allowed: ${allowed.join(", ")})`,
      );
    }
  }
}

function checkStaticHosts(
  YAML: YamlModule,
  section: unknown,
  where: (offset: number | undefined) => string,
  sectionName: string,
  key: string,
): void {
  if (!YAML.isMap(section)) return;
  const hosts = section.get(key, true);
  const at = `${sectionName}.${key}`;
  if (hosts === undefined) return;
  if (!YAML.isSeq(hosts)) {
    throw configError(
      `${where(YAML.isNode(hosts) ? hosts.range?.[0] : undefined)}: ${at} must be a list`,
    );
  }
  for (const item of hosts.items) {
    checkKeys(YAML, item, STATIC_HOST_KEYS, where, `${at}[]`);
    const host = YAML.isNode(item) ? item.toJSON() as Partial<StaticHost> : undefined;
    const line = where(YAML.isNode(item) ? item.range?.[0] : undefined);
    if (!host || typeof host.name !== "string" || typeof host.host !== "string") {
      throw configError(`${line}: every ${at} entry needs a name and a host`);
    }
    if (
      host.port !== undefined &&
      !(Number.isInteger(host.port) && host.port >= 1 && host.port <= 65535)
    ) {
      throw configError(`${line}: ${at} port must be 1..65535`);
    }
  }
}

function durationIn(text: string, what: string): number {
  try {
    return parseSeconds(text, what);
  } catch (e) {
    throw configError((e as Error).message);
  }
}

function configError(message: string): CrabboxError {
  return new CrabboxError("config", "bad_config", message, {
    hint: "fix the file or remove the offending key",
  });
}
