/**
 * Paths under `$CRABBOX_HOME` that more than one area needs: a crew's
 * directory (mesh files, known_hosts, logs) and the known_hosts file of a
 * lease.
 *
 * @module
 */

import { joinPath } from "./fs.ts";

/** Where a crew's mesh files live. */
export interface MeshPaths {
  /** `<home>/crew/<name>` */
  dir: string;
  /** `<dir>/hosts` */
  hosts: string;
  /** `<dir>/env` */
  env: string;
  /** `<dir>/daemon.json` */
  daemon: string;
  /** `<dir>/known_hosts` */
  knownHosts: string;
  /** `<dir>/log` — one ssh `-E` log per member. */
  logDir: string;
  /** `<dir>/peers.json` — the live peer tables of a `connect --peers` (the ssh-peer plane). */
  peers: string;
}

/**
 * Paths of a crew's mesh files.
 *
 * @example
 * ```ts
 * import { meshPaths } from "./home.ts";
 * meshPaths("/home/a/.crabbox", "pr-42").env; // "/home/a/.crabbox/crew/pr-42/env"
 * ```
 */
export function meshPaths(home: string, crew: string): MeshPaths {
  const dir = joinPath(home, "crew", crew);
  return {
    dir,
    hosts: joinPath(dir, "hosts"),
    env: joinPath(dir, "env"),
    daemon: joinPath(dir, "daemon.json"),
    knownHosts: knownHostsPath(home, { crew }),
    logDir: joinPath(dir, "log"),
    peers: joinPath(dir, "peers.json"),
  };
}

/**
 * The known_hosts file crabbox uses for a lease: `<home>/crew/<crew>/known_hosts`
 * for crew members, `<home>/known_hosts` otherwise.
 *
 * @example
 * ```ts
 * import { knownHostsPath } from "./home.ts";
 * knownHostsPath("/home/a/.crabbox", { crew: "pr-42" }); // "/home/a/.crabbox/crew/pr-42/known_hosts"
 * ```
 */
export function knownHostsPath(home: string, lease: { crew?: string }): string {
  return lease.crew
    ? joinPath(home, "crew", lease.crew, "known_hosts")
    : joinPath(home, "known_hosts");
}
