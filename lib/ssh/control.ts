/**
 * ssh ControlMaster sockets: where they live, whether one answers
 * (`ssh -O check`), and the control mode a lease's ssh should use (reuse a
 * crew member's live master, else none).
 *
 * @module
 */

import { joinPath, meshPaths, processEnv } from "../core/mod.ts";
import type { EnvReader } from "../core/mod.ts";
import {
  type ControlMode,
  MAX_CONTROL_PATH,
  sshDestination,
  sshProgram,
  type SshTarget,
} from "./args.ts";
import { output, type ProcessRunner } from "../process/mod.ts";

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

/** ControlMaster socket path of a crew member: `<home>/crew/<crew>/cm/<lease>` (or a short /tmp path). */
export function memberControlPath(home: string, crew: string, leaseId: string): Promise<string> {
  return controlPathFor(meshPaths(home, crew).dir, leaseId);
}

/** Whether ControlMaster `controlPath` answers `ssh -O check` for `dest`. */
export async function sshAnswers(
  env: EnvReader,
  controlPath: string,
  dest: string,
  runner?: ProcessRunner,
): Promise<boolean> {
  const out = await output(sshProgram(env), {
    args: ["-F", "none", "-o", `ControlPath=${controlPath}`, "-O", "check", "--", dest],
    stdin: "null",
    stdout: "null",
    stderr: "null",
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
  const env = options.env ?? processEnv;
  return await sshAnswers(env, path, sshDestination(lease.ssh), options.process)
    ? { master: "no", path }
    : { master: "none" };
}
