/**
 * Running a user's `--init` script on a box over ssh, the way cloud-init's
 * runcmd would: `bash -s` with the script on stdin (never in argv).
 *
 * @module
 */

import type { SshTarget } from "./args.ts";
import { CrabboxError } from "../core/errors.ts";
import { runSsh, sshCommandArgs, type SshResult } from "./args.ts";
import type { ProcessRunner } from "../process/run.ts";
import type { EnvReader } from "../core/fs.ts";

/**
 * The one `--init` runner: `script` on stdin of `bash -s` on the target,
 * over ssh; resolves the finished ssh (the script's exit status, or 255 when
 * ssh itself failed) without judging it.
 *
 * @example
 * ```ts
 * import { execInitScript } from "./init_script.ts";
 * const r = await execInitScript({ host: "127.0.0.1", port: 2222, user: "root" }, "/tmp/kh", "true\n");
 * r.code; // 0
 * ```
 */
export function execInitScript(
  target: SshTarget,
  knownHostsFile: string,
  script: string,
  options: { env?: EnvReader; signal?: AbortSignal; process?: ProcessRunner } = {},
): Promise<SshResult> {
  return runSsh(sshCommandArgs(target, ["bash", "-s"], { knownHostsFile }), {
    ...options,
    stdin: script,
  });
}

/**
 * Run `script` on the target with `bash -s` ({@link execInitScript}); throws a
 * provider error with the script's exit status and last stderr line when it
 * fails.
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
  options: { env?: EnvReader; signal?: AbortSignal; process?: ProcessRunner } = {},
): Promise<void> {
  const r = await execInitScript(target, knownHostsFile, script, options);
  if (r.code !== 0) {
    const last = r.stderr.trim().split("\n").pop() ?? "";
    throw new CrabboxError(
      "provider",
      "init_failed",
      `--init script failed on ${target.host} with exit status ${r.code}${last ? `: ${last}` : ""}`,
    );
  }
}
