/**
 * The crabbox home directory: where it is, atomic 0600 writes under 0700
 * directories, and a cross-process lock.
 *
 * @module
 */

import { CrabboxError } from "./errors.ts";

/** Reads an environment variable; injected so tests never touch `Deno.env`. */
export type EnvReader = (name: string) => string | undefined;

/** The process environment as an {@link EnvReader}. */
export const processEnv: EnvReader = (name) => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};

/**
 * The crabbox home: `CRABBOX_HOME`, else `~/.crabbox`.
 *
 * @example
 * ```ts
 * import { crabboxHome } from "./fs.ts";
 * crabboxHome((k) => (k === "CRABBOX_HOME" ? "/tmp/cbx" : undefined)); // "/tmp/cbx"
 * ```
 */
export function crabboxHome(env: EnvReader = processEnv): string {
  const explicit = env("CRABBOX_HOME")?.trim();
  if (explicit) return explicit;
  const home = env("HOME")?.trim();
  if (!home) {
    throw new CrabboxError("state", "no_home", "cannot find the home directory", {
      hint: "set HOME or CRABBOX_HOME",
    });
  }
  return `${home}/.crabbox`;
}

/** Join path segments with `/` (crabbox is Unix-only). */
export function joinPath(...parts: string[]): string {
  return parts.join("/").replace(/\/{2,}/g, "/");
}

/** The directory part of a path. */
export function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/**
 * Create `dir` and any missing parents with mode 0700. Directories that
 * already exist are left exactly as they are (a shared parent such as `/tmp`
 * must never be tightened); `doctor` reports a crabbox home that is too open.
 *
 * @example
 * ```ts
 * import { ensurePrivateDir } from "./fs.ts";
 * await ensurePrivateDir("/tmp/cbx-example/claims");
 * ```
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; d !== "/" && d !== "" && d !== "."; d = dirOf(d)) {
    try {
      if ((await Deno.stat(d)).isDirectory) break;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    missing.unshift(d);
  }
  for (const d of missing) {
    try {
      await Deno.mkdir(d, { mode: 0o700 });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      continue; // created concurrently by someone else: theirs, not ours to chmod
    }
    await Deno.chmod(d, 0o700);
  }
}

/**
 * Write a file atomically: a 0600 temp file in the same directory, fsync,
 * rename over the target. The parent dir is created 0700. Readers never see
 * a half-written file.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./fs.ts";
 * await writeFileAtomic("/tmp/cbx-example/hello.txt", "hi\n");
 * ```
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirOf(path);
  await ensurePrivateDir(dir);
  const rand = crypto.getRandomValues(new Uint32Array(2)).join("");
  const tmp = `${path}.${Deno.pid}.${rand}.tmp`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.chmod(tmp, 0o600);
    await Deno.rename(tmp, path);
  } catch (e) {
    // Any failure (a short disk, a rename onto a directory) leaves the old file and no temp.
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Write JSON atomically (pretty, trailing newline). */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Read and parse a JSON file; `undefined` when it does not exist. */
export async function readJsonFile<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CrabboxError("state", "corrupt_state", `state file ${path} is not valid JSON`, {
      hint: "remove the file if the lease it describes is gone",
    });
  }
}

/** Remove a file; a missing file is not an error. */
export async function removeFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Run `fn` while holding an exclusive `flock` on `lockPath` (created 0600).
 * The kernel drops the lock if the process dies, so a crash never leaves a
 * stale lock behind.
 *
 * @example
 * ```ts
 * import { withLock } from "./fs.ts";
 * await withLock("/tmp/cbx-example/.lock", async () => {});
 * ```
 */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  await ensurePrivateDir(dirOf(lockPath));
  const file = await Deno.open(lockPath, { read: true, write: true, create: true, mode: 0o600 });
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close();
  }
}
