/**
 * Running commands on a leased box over ssh, reusing the crew's
 * ControlMaster when `crew connect` holds one (see `controlForLease`).
 *
 * @module
 */

import type { Lease } from "./claims.ts";
import { CrabboxError, knownHostsPath } from "../core/mod.ts";
import { type CrabboxOptions, resolveRuntime } from "../runtime.ts";
import {
  controlForLease,
  prepareKnownHosts,
  runSsh,
  runSshInteractive,
  sshCommandArgs,
  type SshResult,
} from "../ssh/mod.ts";

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
 * import { findLease, leaseSshArgs } from "@crabbox/crabbox";
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
    : await controlForLease(rt.home, lease, { env: rt.env, process: rt.process });
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
 * import { findLease, runOnLease } from "@crabbox/crabbox";
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
  return await runSsh(args, {
    env: rt.env,
    signal: rt.signal,
    stdin: options.stdin,
    process: rt.process,
  });
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
  return await runSshInteractive(args, { env: rt.env, process: rt.process });
}
