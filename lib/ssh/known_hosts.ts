/**
 * The one known_hosts editor: the host id ssh uses for a target, pinning
 * host keys (one locked read-modify-write for any number of targets) and
 * forgetting a host. Files are 0600 under 0700 dirs, written atomically.
 *
 * @module
 */

import { dirOf, ensurePrivateDir, withLock, writeFileAtomic } from "../core/fs.ts";
import type { SshTarget } from "./args.ts";
import { validateHostKey } from "./host_key.ts";

/**
 * The host id of a known_hosts line: `host` on port 22, else `[host]:port`.
 *
 * @example
 * ```ts
 * import { knownHostId } from "./known_hosts.ts";
 * knownHostId("10.0.0.5", 2222); // "[10.0.0.5]:2222"
 * ```
 */
export function knownHostId(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The host ids a known_hosts line is for (its first field, comma-separated). */
function lineHostIds(line: string): string[] {
  return line.split(" ")[0].split(",");
}

/**
 * Make sure `knownHostsFile` exists (0600) and, for every target that pins a
 * host key, contains exactly that key for its host id: a re-pinned host's old
 * lines go, other hosts' lines stay. Every key is checked with
 * {@link validateHostKey} before anything is written. Serialized with a lock
 * file, so concurrent members of one crew never lose each other's keys; a
 * whole crew is pinned in one write.
 */
export async function pinHostKeys(
  targets: readonly SshTarget[],
  knownHostsFile: string,
): Promise<void> {
  for (const t of targets) if (t.hostKey !== undefined) validateHostKey(t.hostKey);
  await ensurePrivateDir(dirOf(knownHostsFile));
  await withLock(`${knownHostsFile}.lock`, async () => {
    let current = "";
    try {
      current = await Deno.readTextFile(knownHostsFile);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const pinned = new Map<string, string>();
    for (const t of targets) if (t.hostKey) pinned.set(knownHostId(t.host, t.port), t.hostKey);
    let next = current;
    if (pinned.size > 0) {
      const kept = current.split("\n").filter((l) =>
        l !== "" && !lineHostIds(l).some((id) => pinned.has(id))
      );
      next = [...kept, ...[...pinned].map(([id, key]) => `${id} ${key}`)].join("\n") + "\n";
    }
    if (next !== current || current === "") await writeFileAtomic(knownHostsFile, next);
  });
}

/**
 * {@link pinHostKeys} for one target.
 *
 * @example
 * ```ts
 * import { prepareKnownHosts } from "./known_hosts.ts";
 * await prepareKnownHosts({ host: "127.0.0.1", port: 2222, user: "root" }, "/tmp/cbx/known_hosts");
 * ```
 */
export function prepareKnownHosts(target: SshTarget, knownHostsFile: string): Promise<void> {
  return pinHostKeys([target], knownHostsFile);
}

/**
 * Remove `host`'s entries from a known_hosts file (under a lock), because a
 * new cloud box may reuse the address of an old one with another host key.
 */
export async function forgetHostKey(file: string, host: string, port: number): Promise<void> {
  const hostId = knownHostId(host, port);
  await withLock(`${file}.lock`, async () => {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    const lines = text.split("\n");
    const kept = lines.filter((l) => !lineHostIds(l).includes(hostId));
    if (kept.length !== lines.length) await writeFileAtomic(file, kept.join("\n"));
  });
}
