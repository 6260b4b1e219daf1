/**
 * `doctor --crew NAME --online`, the tailnet plane measured: log into each
 * tailnet member over ssh and check, from inside it, that `/etc/hosts.cbx`
 * holds every other member at its recorded address, that `<peer>.cbx` and
 * `<role>.cbx` resolve (`getent hosts`), and that a TCP connection to each
 * exposed port of each peer succeeds (bounded). The probe is a fixed bash
 * script; peers reach it as validated argv words, never as shell text.
 *
 * @module
 */

import type { Lease } from "../lease/leases.ts";

/** How long one TCP connect may take on the box (seconds). */
export const DIAL_CONNECT_TIMEOUT_S = 3;

/** One peer as the probe receives it. */
export interface DialPeer {
  /** Slug (`<slug>.cbx`). */
  slug: string;
  /** Role (`<role>.cbx`). */
  role: string;
  /** The peer's recorded tailnet IPv4. */
  ip: string;
  /** Exposed ports. */
  ports: number[];
}

/** One measured cell: `from` dialed `to`. */
export interface DialCell {
  /** Source member (slug). */
  from: string;
  /** Destination member (slug). */
  to: string;
  /** `/etc/hosts.cbx` on `from` maps `<to>.cbx` to its recorded address. */
  hosts: boolean;
  /** `getent hosts <to>.cbx` on `from` answers the recorded address. */
  resolves: boolean;
  /** `getent hosts <role>.cbx` on `from` includes the recorded address. */
  role: boolean;
  /** TCP connects to each exposed port of `to`, by `<to>.cbx`. */
  ports: { port: number; ok: boolean }[];
  /** `ok` when everything above holds; else `no`. */
  verdict: "ok" | "no";
  /** What failed (empty when ok), or why the cell was not measured. */
  reason: string;
}

/**
 * The probe (bash, on the box): args are `slug role ip ports` quadruples
 * (`ports` comma-joined or `-`). Prints one line per fact:
 * `hosts <slug> <ip|->`, `resolve <name> <ips…>`, `tcp <slug> <port> ok|fail`.
 */
export const DIAL_PROBE_SCRIPT = `set -u
while [ "$#" -ge 4 ]; do
  slug=$1 role=$2 ip=$3 ports=$4
  shift 4
  got=$(awk -v n="$slug.cbx" '{ for (i = 2; i <= NF; i++) if ($i == n) { print $1; exit } }' /etc/hosts.cbx 2>/dev/null)
  echo "hosts $slug \${got:--}"
  for name in "$slug.cbx" "$role.cbx"; do
    echo "resolve $name $(getent ahostsv4 "$name" 2>/dev/null | awk '{ print $1 }' | sort -u | tr '\\n' ' ')"
  done
  if [ "$ports" != - ]; then
    for port in $(echo "$ports" | tr ',' ' '); do
      if timeout ${DIAL_CONNECT_TIMEOUT_S} bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$slug.cbx" "$port" 2>/dev/null; then
        echo "tcp $slug $port ok"
      else
        echo "tcp $slug $port fail"
      fi
    done
  fi
done
`;

const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * The probe's argv words for `peers` (members with a recorded tailnet IPv4;
 * values that are not well-formed are left out).
 *
 * @example
 * ```ts
 * import { dialProbeArgs } from "./tailnet_dial.ts";
 * dialProbeArgs([{ slug: "db", role: "db", ip: "100.64.0.2", ports: [5432] }]);
 * // ["db", "db", "100.64.0.2", "5432"]
 * ```
 */
export function dialProbeArgs(peers: readonly DialPeer[]): string[] {
  return peers.filter((p) => SLUG.test(p.slug) && SLUG.test(p.role) && IPV4.test(p.ip))
    .flatMap((p) => [
      p.slug,
      p.role,
      p.ip,
      p.ports.filter((n) => Number.isInteger(n) && n > 0 && n < 65536).join(",") || "-",
    ]);
}

/**
 * Turn the probe's output on `from` into one cell per peer.
 *
 * @example
 * ```ts
 * import { parseDialProbe } from "./tailnet_dial.ts";
 * parseDialProbe("api", [{ slug: "db", role: "db", ip: "10.1.2.3", ports: [5432] }],
 *   "hosts db 10.1.2.3\nresolve db.cbx 10.1.2.3 \nresolve db.cbx 10.1.2.3 \ntcp db 5432 ok\n",
 * )[0].verdict; // "ok"
 * ```
 */
export function parseDialProbe(from: string, peers: readonly DialPeer[], out: string): DialCell[] {
  const hosts = new Map<string, string>();
  const resolve = new Map<string, string[]>();
  const tcp = new Map<string, boolean>();
  for (const line of out.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[0] === "hosts" && f.length >= 3) hosts.set(f[1], f[2]);
    else if (f[0] === "resolve" && f.length >= 2) resolve.set(f[1], f.slice(2));
    else if (f[0] === "tcp" && f.length === 4) tcp.set(`${f[1]}:${f[2]}`, f[3] === "ok");
  }
  return peers.map((p) => {
    const cell: DialCell = {
      from,
      to: p.slug,
      hosts: hosts.get(p.slug) === p.ip,
      resolves: (resolve.get(`${p.slug}.cbx`) ?? []).includes(p.ip),
      role: (resolve.get(`${p.role}.cbx`) ?? []).includes(p.ip),
      ports: p.ports.map((port) => ({ port, ok: tcp.get(`${p.slug}:${port}`) === true })),
      verdict: "ok",
      reason: "",
    };
    const problems = [
      cell.hosts ? "" : `/etc/hosts.cbx has ${hosts.get(p.slug) ?? "-"} for ${p.slug}.cbx`,
      cell.resolves ? "" : `${p.slug}.cbx does not resolve to ${p.ip}`,
      cell.role ? "" : `${p.role}.cbx does not include ${p.ip}`,
      ...cell.ports.filter((x) => !x.ok).map((x) => `tcp ${p.slug}.cbx:${x.port} failed`),
    ].filter(Boolean);
    if (problems.length > 0) {
      cell.verdict = "no";
      cell.reason = problems.join("; ");
    }
    return cell;
  });
}

/** The tailnet members of a crew as probe peers (those with a recorded IPv4). */
export function dialPeers(members: readonly Lease[]): DialPeer[] {
  return members.filter((m) => m.tailscale && m.tailnet?.ipv4).map((m) => ({
    slug: m.slug,
    role: m.role,
    ip: m.tailnet!.ipv4!,
    ports: [...m.expose],
  }));
}

/** Seam: run the probe on a member (ssh in the real doctor). */
export type DialRunner = (
  member: Lease,
  args: string[],
) => Promise<{ code: number; stdout: string; stderr: string }>;

/**
 * Measure the member→member matrix: the probe runs on every tailnet member
 * with a recorded address (concurrently), each checking every other one.
 * A member whose probe cannot run gets `no` cells with the reason.
 */
export async function measureTailnet(
  members: readonly Lease[],
  run: DialRunner,
): Promise<DialCell[]> {
  const peers = dialPeers(members);
  const rows = await Promise.all(
    members.filter((m) => peers.some((p) => p.slug === m.slug)).map(async (m) => {
      const others = peers.filter((p) => p.slug !== m.slug);
      if (others.length === 0) return [];
      try {
        const r = await run(m, dialProbeArgs(others));
        if (r.code !== 0) {
          const why = r.stderr.trim().split("\n").pop() || `exit ${r.code}`;
          return others.map((p) => unmeasured(m.slug, p, `probe on ${m.slug} failed: ${why}`));
        }
        return parseDialProbe(m.slug, others, r.stdout);
      } catch (e) {
        const why = (e as Error).message.split("\n")[0];
        return others.map((p) => unmeasured(m.slug, p, `probe on ${m.slug} failed: ${why}`));
      }
    }),
  );
  return rows.flat();
}

function unmeasured(from: string, p: DialPeer, reason: string): DialCell {
  return {
    from,
    to: p.slug,
    hosts: false,
    resolves: false,
    role: false,
    ports: p.ports.map((port) => ({ port, ok: false })),
    verdict: "no",
    reason,
  };
}
