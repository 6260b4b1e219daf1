/**
 * ssh ControlMaster sockets: where they live, whether one answers
 * (`ssh -O check`), and the control mode a lease's ssh should use (reuse a
 * crew member's live master, else none).
 *
 * @module
 */

import { CrabboxError } from "../core/errors.ts";
import { ensurePrivateDir, joinPath, processEnv } from "../core/fs.ts";
import { meshPaths } from "../core/home.ts";
import type { EnvReader } from "../core/fs.ts";
import {
  type ControlMode,
  MAX_CONTROL_PATH,
  sshDestination,
  sshProgram,
  type SshTarget,
} from "./args.ts";
import { output, type ProcessRunner } from "../process/run.ts";

/**
 * ControlPath for a lease: `<dir>/cm/<lease-id>` when it fits the socket
 * limit, else a short path under `/tmp/cbx-cm-<uid>/`. `dir` is the
 * directory that owns the sockets (a crew's directory for its members).
 */
export async function controlPathFor(dir: string, leaseId: string): Promise<string> {
  const preferred = joinPath(dir, "cm", leaseId);
  if (preferred.length <= MAX_CONTROL_PATH) return preferred;
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(preferred)),
  );
  const short = Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return `/tmp/cbx-cm-${Deno.uid() ?? 0}/${short}`;
}

/** The shared-`/tmp` directory short ControlMaster paths live in. */
const TMP_CONTROL_PREFIX = "/tmp/cbx-cm-";

/**
 * What is wrong with a `/tmp/cbx-cm-<uid>` directory, or `undefined` when it
 * is a real directory (not a symlink) owned by this user with mode 0700.
 * Pure: judges an `lstat` result.
 *
 * @example
 * ```ts
 * import { controlDirProblem } from "./control.ts";
 * controlDirProblem({ isDirectory: true, isSymlink: false, uid: 0, mode: 0o40777 } as Deno.FileInfo, 0);
 * // "has mode 777, not 700"
 * ```
 */
export function controlDirProblem(info: Deno.FileInfo, uid: number): string | undefined {
  if (info.isSymlink) return "is a symbolic link";
  if (!info.isDirectory) return "is not a directory";
  if (info.uid !== null && info.uid !== uid) return `is owned by uid ${info.uid}, not ${uid}`;
  const mode = (info.mode ?? 0) & 0o777;
  if (mode !== 0o700) return `has mode ${mode.toString(8)}, not 700`;
  return undefined;
}

/**
 * Create (0700) or check the directory of a ControlMaster socket. The shared
 * `/tmp/cbx-cm-<uid>` one must be a real directory owned by this user with
 * mode 0700, never a symlink: anything else is refused (exit 7) before a
 * socket is created or used through it.
 *
 * @example
 * ```ts
 * import { ensureControlDir } from "./control.ts";
 * await ensureControlDir("/home/a/.crabbox/crew/pr-42/cm");
 * ```
 */
export async function ensureControlDir(dir: string): Promise<void> {
  if (!dir.startsWith(TMP_CONTROL_PREFIX)) return await ensurePrivateDir(dir);
  try {
    await Deno.mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const problem = controlDirProblem(await Deno.lstat(dir), Deno.uid() ?? 0);
  if (problem) {
    throw new CrabboxError(
      "state",
      "unsafe_control_dir",
      `ControlMaster directory ${dir} ${problem}`,
      {
        hint: `remove it (it should be a directory only you own, mode 0700): rm -r ${dir}`,
      },
    );
  }
}

/** ControlMaster socket path of a crew member: `<home>/crew/<crew>/cm/<lease>` (or a short /tmp path). */
export function memberControlPath(home: string, crew: string, leaseId: string): Promise<string> {
  return controlPathFor(meshPaths(home, crew).dir, leaseId);
}

/** How long `ssh -O check` may take before the master counts as not answering. */
export const CONTROL_CHECK_TIMEOUT_MS = 5000;

/**
 * Whether ControlMaster `controlPath` answers `ssh -O check` for `dest`
 * within `timeoutMs`: a master that is stuck (stopped, or wedged on a dead
 * link) counts as not answering, and the check is killed, so neither
 * `crew connect` nor `run --id` waits on it forever.
 */
export async function sshAnswers(
  env: EnvReader,
  controlPath: string,
  dest: string,
  runner?: ProcessRunner,
  timeoutMs = CONTROL_CHECK_TIMEOUT_MS,
): Promise<boolean> {
  const out = await output(sshProgram(env), {
    args: ["-F", "none", "-o", `ControlPath=${controlPath}`, "-O", "check", "--", dest],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    signal: AbortSignal.timeout(timeoutMs),
  }, runner);
  return out.success;
}

/** Whether `path` exists and is a socket. */
export async function isSocket(path: string): Promise<boolean> {
  try {
    return (await Deno.lstat(path)).isSocket === true;
  } catch {
    return false;
  }
}

/**
 * The ControlMaster mode `crabbox run/ssh --id` should use for a lease: the
 * crew mesh's master (`ControlMaster=no` + its path) when the socket exists
 * and `ssh -O check` succeeds, else `{ master: "none" }` (a fresh connection).
 *
 * @example
 * ```ts
 * import { controlForLease } from "./control.ts";
 * import { sshCommandArgs } from "./args.ts";
 * import type { Lease } from "@crabbox/crabbox";
 * declare const lease: Lease;
 * const control = await controlForLease("/home/a/.crabbox", lease);
 * sshCommandArgs(lease.ssh!, ["true"], { knownHostsFile: "/home/a/.crabbox/crew/x/known_hosts", control });
 * ```
 */
export async function controlForLease(
  home: string,
  lease: { id: string; crew?: string; ssh?: SshTarget },
  options: { env?: EnvReader; process?: ProcessRunner } = {},
): Promise<ControlMode> {
  if (!lease.crew || !lease.ssh) return { master: "none" };
  const path = await memberControlPath(home, lease.crew, lease.id);
  if (!(await isSocket(path))) return { master: "none" };
  await ensureControlDir(path.slice(0, path.lastIndexOf("/")));
  const env = options.env ?? processEnv;
  return await sshAnswers(env, path, sshDestination(lease.ssh), options.process)
    ? { master: "no", path }
    : { master: "none" };
}
