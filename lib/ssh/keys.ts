/**
 * Client key pairs crabbox generates: one ed25519 key per crew (or per
 * crewless lease) under `$CRABBOX_HOME/keys/<name>/id_ed25519`.
 *
 * @module
 */

import { CrabboxError } from "../core/errors.ts";
import {
  dirOf,
  ensurePrivateDir,
  joinPath,
  removeFile,
  withLock,
  writeFileAtomic,
} from "../core/fs.ts";
import { isLeaseId } from "../core/names.ts";
import { type CommandOutput, output, type ProcessRunner } from "../process/run.ts";

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

/**
 * Path of a private key a provider handed out for one lease (e.g. a CI
 * job's debug key): `<home>/keys/<lease-id>/provider_key`.
 *
 * @example
 * ```ts
 * import { leaseKeyPath } from "./keys.ts";
 * leaseKeyPath("/tmp/cbx", "cbx-0123456789ab"); // "/tmp/cbx/keys/cbx-0123456789ab/provider_key"
 * ```
 */
export function leaseKeyPath(home: string, leaseId: string): string {
  if (!isLeaseId(leaseId)) {
    throw new CrabboxError("usage", "bad_lease_id", `${JSON.stringify(leaseId)} is not a lease id`);
  }
  return joinPath(home, "keys", leaseId, "provider_key");
}

/**
 * Store a private key a provider handed out for a lease: atomic, 0600 in a
 * 0700 dir, with a trailing newline (ssh refuses keys without one). Returns
 * the path.
 */
export async function storeLeaseKey(home: string, leaseId: string, pem: string): Promise<string> {
  const path = leaseKeyPath(home, leaseId);
  const text = pem.replace(/\r\n/g, "\n").trimEnd() + "\n";
  if (
    !/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\n[\s\S]+\n-----END [A-Z0-9 ]*PRIVATE KEY-----\n$/.test(
      text,
    )
  ) {
    throw new CrabboxError(
      "provider",
      "bad_lease_key",
      "the provider handed out a malformed private key",
    );
  }
  await writeFileAtomic(path, text);
  return path;
}

/** Delete a lease's handed-out key (and nothing else); a missing key is fine. */
export async function removeLeaseKey(home: string, leaseId: string): Promise<void> {
  await removeFile(leaseKeyPath(home, leaseId));
}

/**
 * Path of the ssh_config fragment that holds a lease's login user when the
 * user name is a credential (a gateway access token):
 * `<home>/keys/<lease-id>/ssh_user.conf`.
 */
export function leaseUserConfigPath(home: string, leaseId: string): string {
  return joinPath(dirOf(leaseKeyPath(home, leaseId)), "ssh_user.conf");
}

/**
 * Store a secret login user as an ssh_config fragment (`User <name>`), atomic
 * and 0600, so it reaches ssh through `-F` and never through argv, logs or
 * claims. Returns the path.
 */
export async function storeLeaseUser(home: string, leaseId: string, user: string): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/.test(user)) {
    throw new CrabboxError(
      "provider",
      "bad_lease_user",
      "the provider handed out a malformed SSH user",
    );
  }
  const path = leaseUserConfigPath(home, leaseId);
  await writeFileAtomic(path, `User ${user}\n`);
  return path;
}

/** Delete a lease's stored login user; a missing file is fine. */
export async function removeLeaseUser(home: string, leaseId: string): Promise<void> {
  await removeFile(leaseUserConfigPath(home, leaseId));
}
