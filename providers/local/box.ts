/**
 * A local box on disk: its record (`box.json`), directory, loopback address and
 * host name.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { joinPath, readJsonFile, writeJsonAtomic } from "../../lib/core/fs.ts";
import { isLeaseId } from "../../lib/core/names.ts";
import type { Labels } from "../../lib/core/labels.ts";

/** Path of the sshd binary the local provider runs. */
export const SSHD_PATH = "/usr/sbin/sshd";

/** How long `create` waits for ssh to the new box to work. */
export const SSH_READY_TIMEOUT_MS = 30_000;

/** How long to wait for a started process to listen. */
export const LISTEN_TIMEOUT_MS = 10_000;

/** A process crabbox started, identified by pid and kernel start time. */
export interface ProcRef {
  /** Process id. */
  pid: number;
  /** Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot). */
  startTime: string;
}

/** A box's place on its crew network, as recorded in `box.json`. */
export interface CrewNetAddress {
  /** The crew namespace holding the bridge (`cbxc-<12 hex>`). */
  ns: string;
  /** The box's address on the crew network (`10.x.y.n`). */
  ip: string;
  /** Prefix length of the crew subnet (always 24). */
  prefix: 24;
  /** The bridge-side end of the box's veth pair (`vb-<12 hex>`). */
  veth: string;
}

/** What `box.json` in a box directory records. */
export interface LocalBoxRecord {
  /** Record format version. */
  version: 1;
  /** Lease id; also the network namespace name. */
  leaseId: string;
  /** Normalized slug. */
  slug: string;
  /** Host name inside the box (`crabbox-<slug>`). */
  hostname: string;
  /** Reserved labels of the lease. */
  labels: Labels;
  /** Creation time, ISO 8601. */
  createdAt: string;
  /** True once ssh works and the init script (if any) succeeded. */
  ready: boolean;
  /** The host-side loopback address and port of the relay. */
  loopback: { ip: string; port: number };
  /**
   * Test mode: the box gets its own copy-on-write `/etc`, `/usr/local`,
   * `/var` and `/run` (so a stand-in cloud-init or tailscale can be installed
   * in it and what it writes stays in the box).
   */
  privateSystem?: boolean;
  /** The box's place on its crew network (boxes in a crew only). */
  crewNet?: CrewNetAddress;
  /** The box's sshd host public key (`ssh-ed25519 AAAA…`), once generated. */
  hostKey?: string;
  /** Private key path of the crew's client key. */
  keyPath: string;
  /** The process that is creating the box (to tell a live create from a crashed one). */
  creator: ProcRef;
  /** The box's listening sshd. */
  sshd?: ProcRef;
  /** The host-side relay (socat). */
  relay?: ProcRef;
}

/** A path safe to write into sshd_config (absolute, no quotes, `%` or control characters). */
// deno-lint-ignore no-control-regex
export const SAFE_PATH = /^\/[^"%\\\x00-\x1f\x7f]*$/;
const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;
/** One public key line (`ssh-… AAAA… [comment]`). */
export const PUBLIC_KEY =
  /^(ssh-[a-z0-9-]+|ecdsa-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\r\n]*)?$/;

/** The box directory of a lease: `<home>/local/<lease-id>`. */
export function localBoxDir(home: string, leaseId: string): string {
  return joinPath(absolutePath(home), "local", requireLeaseId(leaseId));
}

/** `path` made absolute against the current directory. */
export function absolutePath(path: string): string {
  return path.startsWith("/") ? path : joinPath(Deno.cwd(), path);
}

/** `leaseId` when it is a lease id; otherwise a usage error. */
export function requireLeaseId(leaseId: string): string {
  if (!isLeaseId(leaseId)) {
    throw new CrabboxError("usage", "bad_lease_id", `${JSON.stringify(leaseId)} is not a lease id`);
  }
  return leaseId;
}

/**
 * The loopback address for a box: `127.77.<a>.<b>` derived from the lease id
 * hash, probing onward past addresses in `used` (`b` stays in 1..254).
 *
 * @example
 * ```ts
 * import { loopbackAddressFor } from "./box.ts";
 * await loopbackAddressFor("cbx-0123456789ab", new Set()); // e.g. "127.77.18.203"
 * ```
 */
export async function loopbackAddressFor(
  leaseId: string,
  used: ReadonlySet<string>,
): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(leaseId)),
  );
  const slots = 256 * 254;
  const start = ((digest[0] << 8) | digest[1]) % slots;
  for (let i = 0; i < slots; i++) {
    const slot = (start + i) % slots;
    const ip = `127.77.${Math.floor(slot / 254)}.${(slot % 254) + 1}`;
    if (!used.has(ip)) return ip;
  }
  throw new CrabboxError("provider", "local_no_address", "no free 127.77.x.y address left");
}

/** The host name of a box: `crabbox-<slug>`. */
export function boxHostname(slug: string): string {
  if (!SLUG.test(slug) || slug.length > 41) {
    throw new CrabboxError("usage", "bad_slug", `slug ${JSON.stringify(slug)} is not normalized`);
  }
  return `crabbox-${slug}`;
}

function boxJsonPath(boxDir: string): string {
  return joinPath(boxDir, "box.json");
}

/** The `box.json` record of a box directory; `undefined` when there is none. */
export async function readBox(boxDir: string): Promise<LocalBoxRecord | undefined> {
  try {
    return await readJsonFile<LocalBoxRecord>(boxJsonPath(boxDir));
  } catch {
    return undefined;
  }
}

/**
 * The `box.json` records of boxes under `<home>/local/` (`undefined` where a
 * box has none or it is unreadable). Synchronous on purpose: a list reads one
 * small record per box, and a sync read costs a fraction of an async read's
 * thread-pool round trip.
 */
export function readBoxesSync(
  home: string,
  ids: readonly string[],
): (LocalBoxRecord | undefined)[] {
  return ids.map((id) => {
    try {
      return JSON.parse(Deno.readTextFileSync(boxJsonPath(localBoxDir(home, id))));
    } catch {
      return undefined;
    }
  });
}

/** Write the `box.json` record of a box directory (atomic, 0600). */
export async function writeBox(boxDir: string, box: LocalBoxRecord): Promise<void> {
  await writeJsonAtomic(boxJsonPath(boxDir), box);
}

/** Lease ids of the box directories under `<home>/local/`. */
export async function boxIds(home: string): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const e of Deno.readDir(joinPath(absolutePath(home), "local"))) {
      if (e.isDirectory && isLeaseId(e.name)) ids.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return ids.sort();
}

/** Loopback IPs in use: by other boxes in this home, or by any host listener. */
export async function usedAddresses(home: string, self: string): Promise<Set<string>> {
  const used = new Set<string>();
  for (const id of await boxIds(home)) {
    if (id === self) continue;
    const box = await readBox(localBoxDir(home, id));
    if (box?.loopback?.ip) used.add(box.loopback.ip);
  }
  try {
    for (const line of Deno.readTextFileSync("/proc/net/tcp").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== "0A" || !f[1]) continue;
      const hex = f[1].split(":")[0];
      const octets = [0, 1, 2, 3].map((i) => parseInt(hex.slice(6 - 2 * i, 8 - 2 * i), 16));
      used.add(octets.join("."));
    }
  } catch {
    // no /proc/net/tcp: rely on the bind probe
  }
  return used;
}

/** True when ip:port can be bound right now. */
export function bindable(ip: string, port: number): number | undefined {
  try {
    const l = Deno.listen({ hostname: ip, port, transport: "tcp" });
    const bound = (l.addr as Deno.NetAddr).port;
    l.close();
    return bound;
  } catch {
    return undefined;
  }
}
