/**
 * Running a user's `--init` script on a box over ssh, the way cloud-init's
 * runcmd would: `bash -s` with the script on stdin (never in argv).
 *
 * @module
 */

import type { SshTarget } from "./args.ts";
import { CrabboxError } from "../core/mod.ts";
import { runSsh, sshCommandArgs } from "./args.ts";
import type { EnvReader } from "../core/mod.ts";

/**
 * Run `script` on the target with `bash -s`; throws a provider error with the
 * script's exit status and last stderr line when it fails.
 *
 * @example
 * ```ts
 * import { runInitScript } from "./init_script.ts";
 * await runInitScript({ host: "127.0.0.1", port: 2222, user: "root" }, "/tmp/kh", "touch /tmp/ready\n");
 * ```
 */
export async function runInitScript(
  target: SshTarget,
  knownHostsFile: string,
  script: string,
  options: { env?: EnvReader; signal?: AbortSignal } = {},
): Promise<void> {
  const r = await runSsh(sshCommandArgs(target, ["bash", "-s"], { knownHostsFile }), {
    ...options,
    stdin: script,
  });
  if (r.code !== 0) {
    const last = r.stderr.trim().split("\n").pop() ?? "";
    throw new CrabboxError(
      "provider",
      "init_failed",
      `--init script failed on ${target.host} with exit status ${r.code}${last ? `: ${last}` : ""}`,
    );
  }
}
