/**
 * Client key pairs crabbox generates: one ed25519 key per crew (or per
 * crewless lease) under `$CRABBOX_HOME/keys/<name>/id_ed25519`.
 *
 * @module
 */

import { CrabboxError, ensurePrivateDir, joinPath, withLock } from "../core/mod.ts";
import { type CommandOutput, output, type ProcessRunner } from "../process/mod.ts";

/** A client key pair on disk. */
export interface ClientKey {
  /** Private key path (0600). */
  keyPath: string;
  /** Public key line (`ssh-ed25519 AAAA… comment`). */
  publicKey: string;
}

/** Directory holding the key for a crew (`crew-<name>`) or a crewless lease (`<lease-id>`). */
export function clientKeyDir(home: string, owner: { crew?: string; leaseId: string }): string {
  return joinPath(home, "keys", owner.crew ? `crew-${owner.crew}` : owner.leaseId);
}

/** Private key path for a crew or a crewless lease: `<key dir>/id_ed25519`. */
export function clientKeyPath(home: string, owner: { crew?: string; leaseId: string }): string {
  return joinPath(clientKeyDir(home, owner), "id_ed25519");
}

/**
 * Return the client key for a crew or lease, generating it with `ssh-keygen`
 * on first use. Safe under concurrent callers (a lock guards generation).
 *
 * @example
 * ```ts
 * import { ensureClientKey } from "./keys.ts";
 * const key = await ensureClientKey("/tmp/cbx", { crew: "t1", leaseId: "cbx-000000000000" });
 * ```
 */
export async function ensureClientKey(
  home: string,
  owner: { crew?: string; leaseId: string },
  options: { process?: ProcessRunner } = {},
): Promise<ClientKey> {
  const dir = clientKeyDir(home, owner);
  const keyPath = clientKeyPath(home, owner);
  await ensurePrivateDir(dir);
  return await withLock(joinPath(dir, ".lock"), async () => {
    try {
      return { keyPath, publicKey: (await Deno.readTextFile(`${keyPath}.pub`)).trim() };
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    let out: CommandOutput;
    try {
      out = await output("ssh-keygen", {
        args: [
          "-q",
          "-t",
          "ed25519",
          "-N",
          "",
          "-C",
          `crabbox-${owner.crew ?? owner.leaseId}`,
          "-f",
          keyPath,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }, options.process);
    } catch (e) {
      throw new CrabboxError("prerequisite", "no_ssh_keygen", "ssh-keygen is not installed", {
        hint: "apt-get install -y openssh-client",
        cause: e,
      });
    }
    if (!out.success) {
      throw new CrabboxError(
        "state",
        "keygen_failed",
        `ssh-keygen failed: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
    await Deno.chmod(keyPath, 0o600);
    return { keyPath, publicKey: (await Deno.readTextFile(`${keyPath}.pub`)).trim() };
  });
}
