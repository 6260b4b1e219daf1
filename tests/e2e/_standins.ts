/**
 * Stand-ins for what a cloud VM has and a local box does not: `cloud-init`,
 * `systemctl` and `tailscale` (see the comment at the top of each file in
 * `standins/`). They are installed into a local box that runs in the local
 * provider's `privateSystem` test mode, so they exist only inside that box.
 *
 * @module
 */

import type { SshTarget } from "../../providers/types.ts";
import { boxSsh } from "./_local.ts";

/** Names of the stand-in programs (files in `tests/e2e/standins/`). */
export const STANDINS = ["cloud-init", "systemctl", "tailscale"] as const;

/** What the stand-ins read from `/etc/crabbox-standin.json` in the box. */
export interface StandinConfig {
  /** Host path where the harness puts the box's user-data (the fake cloud received it). */
  userData: string;
  /** Host directory shared with the fake Tailscale API (keys, devices, calls). */
  control?: string;
  /** MagicDNS suffix the stand-in tailscale uses. */
  magicDnsSuffix?: string;
}

function b64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * Install the stand-ins in `/usr/local/bin` of a box and write its
 * `/etc/crabbox-standin.json`. Throws when the box does not run in
 * privateSystem mode (the install would reach the host).
 *
 * @example
 * ```ts
 * import { installStandins } from "./_standins.ts";
 * // await installStandins(lease.ssh!, "/tmp/kh", { userData: "/tmp/ud" });
 * ```
 */
export async function installStandins(
  target: SshTarget,
  knownHostsFile: string,
  config: StandinConfig,
): Promise<void> {
  const parts = [
    "set -eu",
    // Refuse to install on the host's /usr/local: the box's must be an overlay.
    `findmnt -n -o FSTYPE /usr/local | grep -qx overlay`,
  ];
  for (const name of STANDINS) {
    const text = await Deno.readFile(new URL(`./standins/${name}`, import.meta.url));
    parts.push(
      `echo '${b64(text)}' | base64 -d > /usr/local/bin/${name}`,
      `chmod 755 /usr/local/bin/${name}`,
    );
  }
  // A fresh VM's root has no rc files of this machine's root (pyenv's rehash
  // in ~/.bashrc can block every ssh session for a minute): give root /bin/sh
  // as its shell in the box's own /etc/passwd.
  parts.push(`sed -i 's#^\\(root:[^:]*:0:0:[^:]*:[^:]*:\\)/bin/bash$#\\1/bin/sh#' /etc/passwd`);
  const conf = b64(new TextEncoder().encode(JSON.stringify(config)));
  parts.push(`echo '${conf}' | base64 -d > /etc/crabbox-standin.json`);
  const r = await boxSsh(target, ["sh", "-s"], knownHostsFile, parts.join("\n") + "\n");
  if (r.code !== 0) throw new Error(`installing stand-ins failed (${r.code}): ${r.stderr.trim()}`);
}

/**
 * Copy a fake cloud's user-data to `path` as soon as `read` returns it (the
 * box's stand-in cloud-init waits for it), until `signal` aborts.
 */
export async function feedUserData(
  read: () => string | undefined,
  path: string,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    const text = read();
    if (text !== undefined) {
      await Deno.writeTextFile(`${path}.tmp`, text, { mode: 0o600 });
      await Deno.rename(`${path}.tmp`, path);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
