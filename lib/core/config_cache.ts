/**
 * The parsed form of `config.yaml`, kept next to it (`cache/config.json`)
 * so a command does not load the YAML parser while the file is unchanged:
 * the `yaml` package is CommonJS and loading it starts Deno's Node
 * compatibility layer (~40 ms). An entry is used only for exactly the same
 * text, path and provider schemas; anything else (no entry, unreadable,
 * another text) parses the YAML again. Writing it is best effort: a
 * read-only home or a short disk only costs the next run the parse.
 *
 * @module
 */

import { joinPath, writeJsonAtomic } from "./fs.ts";

/** Bumped when the entry's meaning changes. */
const VERSION = 1;

/** What a cached config is valid for: exactly this file text at this path, these schemas. */
export interface ConfigCacheKey {
  /** Path of config.yaml. */
  path: string;
  /** Its whole text. */
  text: string;
  /** The provider schemas it was checked against. */
  schemas: unknown;
}

interface Entry extends ConfigCacheKey {
  version: number;
  config: unknown;
}

/** Path of the cache entry in `home`. */
export function configCachePath(home: string): string {
  return joinPath(home, "cache", "config.json");
}

/**
 * The cached parsed config for exactly `key`; `undefined` when there is none
 * (the caller checks its shape).
 */
export async function readCachedConfig(home: string, key: ConfigCacheKey): Promise<unknown> {
  let entry: Partial<Entry> | null;
  try {
    entry = JSON.parse(await Deno.readTextFile(configCachePath(home)));
  } catch {
    return undefined;
  }
  if (
    entry?.version !== VERSION || entry.path !== key.path || entry.text !== key.text ||
    JSON.stringify(entry.schemas) !== JSON.stringify(key.schemas)
  ) {
    return undefined;
  }
  return entry.config;
}

/** Remember the parsed file part of the config; failures are ignored. */
export async function writeCachedConfig(
  home: string,
  key: ConfigCacheKey,
  config: unknown,
): Promise<void> {
  // Only values JSON keeps as they are (no Infinity, NaN, dates, undefined in lists).
  if (!isPlainJson(config)) return;
  // Without write permission (ssh's ProxyCommand runs read-only): no entry, and no prompt.
  const path = configCachePath(home);
  if (Deno.permissions.querySync({ name: "write", path }).state !== "granted") return;
  const entry: Entry = { version: VERSION, ...key, config };
  await writeJsonAtomic(path, entry).catch(() => {});
}

/**
 * Whether `value` survives a JSON round trip unchanged (finite numbers,
 * strings, booleans, null, arrays and plain objects; `undefined` only as an
 * object member, which JSON drops like an absent one).
 */
export function isPlainJson(value: unknown): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => v !== undefined && isPlainJson(v));
  if (typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value).every((v) => v === undefined || isPlainJson(v));
}
