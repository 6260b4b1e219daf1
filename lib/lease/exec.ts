/**
 * Running commands on a leased box over ssh, reusing the crew's
 * ControlMaster when `crew connect` holds one (see `controlForLease`).
 *
 * @module
 */

import type { Lease } from "./claims.ts";
import { withFreshSsh } from "./refresh.ts";
import { type NetworkMode, routeLease } from "./network.ts";
import { CrabboxError } from "../core/errors.ts";
import { knownHostsPath } from "../core/home.ts";
import { type CrabboxOptions, resolveRuntime } from "../runtime.ts";
import {
  type RemoteCommand,
  runSsh,
  runSshInteractive,
  sshCommandArgs,
  type SshResult,
} from "../ssh/args.ts";
import { controlForLease } from "../ssh/control.ts";
import { prepareKnownHosts } from "../ssh/known_hosts.ts";

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

/** True for an empty argv: an interactive shell. */
function isInteractive(command: RemoteCommand): boolean {
  return !("shell" in command) && (command as readonly string[]).length === 0;
}

/**
 * The full ssh argv (without the program) for running `command` on a lease;
 * prepares the crew's known_hosts file. Each argv word reaches the remote
 * program intact (it is quoted for the remote shell); `{ shell: "…" }` runs a
 * shell string as written. An empty command means an interactive shell
 * (`tty` is then set).
 *
 * @example
 * ```ts
 * import { findLease, leaseSshArgs } from "@crabbox/crabbox";
 * const argv = await leaseSshArgs(await findLease("pr-42/api"), ["uptime"]);
 * ```
 */
export async function leaseSshArgs(
  lease: Lease,
  command: RemoteCommand,
  options: CrabboxOptions & { tty?: boolean; reuseMaster?: boolean; network?: NetworkMode } = {},
): Promise<string[]> {
  const rt = await resolveRuntime(options);
  lease = await withFreshSsh(lease, rt);
  lease = await routeLease(lease, options.network ?? rt.config.network ?? "auto", rt.process);
  const target = requireSsh(lease);
  const knownHostsFile = knownHostsPath(rt.home, lease);
  await prepareKnownHosts(target, knownHostsFile);
  const control = options.reuseMaster === false
    ? { master: "none" as const }
    : await controlForLease(rt.home, lease, { env: rt.env, process: rt.process });
  return sshCommandArgs(target, command, {
    knownHostsFile,
    control,
    tty: options.tty ?? isInteractive(command),
  });
}

/**
 * Run a command on a lease and capture its output. argv words arrive intact
 * (`["sh", "-c", "exit 7"]` exits 7); pass `{ shell: "a && b" }` for a shell
 * string.
 *
 * @example
 * ```ts
 * import { findLease, runOnLease } from "@crabbox/crabbox";
 * const { code, stdout } = await runOnLease(await findLease("pr-42/api"), ["hostname"]);
 * ```
 */
export async function runOnLease(
  lease: Lease,
  command: RemoteCommand,
  options: CrabboxOptions & { stdin?: string; network?: NetworkMode } = {},
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
 * argv words arrive intact; `{ shell: "…" }` runs a shell string.
 *
 * @example
 * ```ts
 * import { attachToLease, findLease } from "../../mod.ts";
 * const code = await attachToLease(await findLease("pr-42/api"), ["ls", "-l", "my file"]);
 * ```
 */
export async function attachToLease(
  lease: Lease,
  command: RemoteCommand,
  options: CrabboxOptions & { network?: NetworkMode } = {},
): Promise<number> {
  const rt = await resolveRuntime(options);
  const args = await leaseSshArgs(lease, command, {
    ...options,
    tty: isInteractive(command) && Deno.stdin.isTerminal(),
  });
  return await runSshInteractive(args, { env: rt.env, process: rt.process });
}
