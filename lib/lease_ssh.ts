/**
 * Running commands on a leased box over ssh, reusing the crew's
 * ControlMaster when `crew connect` holds one.
 *
 * @module
 */

import type { Lease } from "./claims.ts";
import { CrabboxError } from "./errors.ts";
import { type CrabboxOptions, resolveRuntime } from "./context.ts";
import {
  type ControlMode,
  controlPathFor,
  knownHostsPath,
  prepareKnownHosts,
  runSsh,
  runSshInteractive,
  sshCommandArgs,
  sshProgram,
  type SshResult,
} from "./ssh.ts";

/**
 * The ControlMaster to use for a lease: the live master of `crew connect`
 * (`ControlMaster=no` + its path) when its socket answers `ssh -O check`,
 * else none (a fresh connection).
 */
export async function liveControl(
  home: string,
  lease: Lease,
  options: CrabboxOptions = {},
): Promise<ControlMode> {
  if (!lease.ssh) return { master: "none" };
  const path = await controlPathFor(home, lease.id);
  try {
    const st = await Deno.stat(path);
    if (!st.isSocket) return { master: "none" };
  } catch {
    return { master: "none" };
  }
  const { env } = await resolveRuntime(options);
  const check = await new Deno.Command(sshProgram(env), {
    args: [
      "-F",
      "none",
      "-o",
      `ControlPath=${path}`,
      "-O",
      "check",
      "--",
      `${lease.ssh.user}@${lease.ssh.host}`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return check.success ? { master: "no", path } : { master: "none" };
}

function requireSsh(lease: Lease) {
  if (!lease.ssh) {
    throw new CrabboxError(
      "ssh",
      "no_ssh_endpoint",
      `lease ${lease.id} (${lease.provider}) has no SSH endpoint`,
    );
  }
  return lease.ssh;
}

/**
 * The full ssh argv (without the program) for running `command` on a lease;
 * prepares the crew's known_hosts file. An empty command means an interactive
 * shell (`tty` is then set).
 *
 * @example
 * ```ts
 * import { findLease, leaseSshArgs } from "../mod.ts";
 * const argv = await leaseSshArgs(await findLease("pr-42/api"), ["uptime"]);
 * ```
 */
export async function leaseSshArgs(
  lease: Lease,
  command: readonly string[],
  options: CrabboxOptions & { tty?: boolean; reuseMaster?: boolean } = {},
): Promise<string[]> {
  const rt = await resolveRuntime(options);
  const target = requireSsh(lease);
  const knownHostsFile = knownHostsPath(rt.home, lease);
  await prepareKnownHosts(target, knownHostsFile);
  const control = options.reuseMaster === false
    ? { master: "none" as const }
    : await liveControl(rt.home, lease, options);
  return sshCommandArgs(target, command, {
    knownHostsFile,
    control,
    tty: options.tty ?? command.length === 0,
  });
}

/**
 * Run a command on a lease and capture its output.
 *
 * @example
 * ```ts
 * import { findLease, runOnLease } from "../mod.ts";
 * const { code, stdout } = await runOnLease(await findLease("pr-42/api"), ["hostname"]);
 * ```
 */
export async function runOnLease(
  lease: Lease,
  command: readonly string[],
  options: CrabboxOptions & { stdin?: string } = {},
): Promise<SshResult> {
  const rt = await resolveRuntime(options);
  const args = await leaseSshArgs(lease, command, { ...options, tty: false });
  return await runSsh(args, { env: rt.env, signal: rt.signal, stdin: options.stdin });
}

/**
 * Run a command (or an interactive shell when `command` is empty) with the
 * terminal attached; resolves to the remote exit code (255: ssh failed).
 */
export async function attachToLease(
  lease: Lease,
  command: readonly string[],
  options: CrabboxOptions = {},
): Promise<number> {
  const rt = await resolveRuntime(options);
  const args = await leaseSshArgs(lease, command, {
    ...options,
    tty: command.length === 0 && Deno.stdin.isTerminal(),
  });
  return await runSshInteractive(args, { env: rt.env });
}
