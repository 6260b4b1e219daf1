/**
 * Helpers for end-to-end tests that run real boxes through the `local`
 * provider: the e2e gate, a TCP service inside a box, and sshd kill/restart
 * for reconnect tests. Everything goes through ssh, the way a user would.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { encodeLabels } from "../../lib/core/labels.ts";
import { newLeaseId, roleOf } from "../../lib/core/names.ts";
import { runSsh, sshCommandArgs } from "../../lib/ssh/args.ts";
import { type ClientKey, ensureClientKey } from "../../lib/ssh/keys.ts";
import {
  checkLocalPrerequisites,
  createLocalProvider,
  restartSshd,
  stopSshd,
} from "../../providers/local/mod.ts";
import type { CreateSpec, Provider, ProviderLease, SshTarget } from "../../providers/types.ts";
import { prepareKnownHosts } from "../../lib/ssh/known_hosts.ts";
import type { Lease } from "../../lib/lease/claims.ts";

/**
 * Whether e2e tests can run here (root and every local-provider
 * prerequisite). When they cannot: with `CRABBOX_E2E=required` this throws,
 * so the suite fails; otherwise it prints a loud `E2E SKIPPED: <reason>` line
 * to stderr and returns false.
 *
 * @example
 * ```ts
 * import { requireE2E } from "./_local.ts";
 * const e2e = requireE2E();
 * Deno.test({ name: "boxes", ignore: !e2e, fn: async () => {} });
 * ```
 */
export function requireE2E(): boolean {
  const missing = checkLocalPrerequisites();
  if (missing.length === 0) return true;
  const reason = `local provider prerequisites missing: ${missing.join(", ")}`;
  if (Deno.env.get("CRABBOX_E2E") === "required") {
    throw new Error(`E2E REQUIRED but cannot run: ${reason}`);
  }
  console.error(`\n*** E2E SKIPPED: ${reason} (set CRABBOX_E2E=required to fail instead) ***\n`);
  return false;
}

/** A temp crabbox home, a local provider on it, and a crew client key. */
export interface LocalFixture {
  /** The temp CRABBOX_HOME. */
  home: string;
  /** The crew name used for specs. */
  crew: string;
  /** The provider instance. */
  provider: Provider;
  /** The crew's client key. */
  key: ClientKey;
  /** A known_hosts file for test ssh calls. */
  knownHostsFile: string;
}

/**
 * Make a temp home with a local provider and a crew key.
 *
 * @example
 * ```ts
 * import { localFixture } from "./_local.ts";
 * const fx = await localFixture("t1");
 * ```
 */
export async function localFixture(crew: string): Promise<LocalFixture> {
  const home = await Deno.makeTempDir({ prefix: "cbx-e2e-" });
  const provider = createLocalProvider({
    home,
    env: () => undefined,
    config: {},
    fetch,
    log: () => {},
  });
  const key = await ensureClientKey(home, { crew, leaseId: newLeaseId() });
  return { home, crew, provider, key, knownHostsFile: `${home}/test_known_hosts` };
}

/**
 * A create spec for a member of the fixture's crew (new lease id).
 *
 * @example
 * ```ts
 * import { localFixture, memberSpec } from "./_local.ts";
 * const fx = await localFixture("t1");
 * await fx.provider.create(memberSpec(fx, "api"));
 * ```
 */
export function memberSpec(fx: LocalFixture, slug: string, init?: string): CreateSpec {
  const leaseId = newLeaseId();
  return {
    leaseId,
    crew: fx.crew,
    slug,
    role: roleOf(slug),
    expose: [],
    labels: encodeLabels({ leaseId, crew: fx.crew, slug }),
    sshPublicKey: fx.key.publicKey,
    sshKeyPath: fx.key.keyPath,
    init,
  };
}

/**
 * Write the target's pinned host key into `knownHostsFile` (lib's
 * `prepareKnownHosts` serializes callers sharing a file with a lock).
 *
 * @example
 * ```ts
 * import { pinHostKey } from "./_local.ts";
 * // await pinHostKey(lease.ssh!, "/tmp/kh");
 * ```
 */
export function pinHostKey(target: SshTarget, knownHostsFile: string): Promise<void> {
  return prepareKnownHosts(target, knownHostsFile);
}

/**
 * Run a command on a box through ssh; returns code, stdout, stderr.
 *
 * @example
 * ```ts
 * import { boxSsh } from "./_local.ts";
 * // const r = await boxSsh(lease.ssh!, ["hostname"], "/tmp/kh");
 * ```
 */
export async function boxSsh(
  target: SshTarget,
  command: readonly string[],
  knownHostsFile: string,
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  await pinHostKey(target, knownHostsFile);
  return await runSsh(sshCommandArgs(target, command, { knownHostsFile }), { stdin });
}

const NAME_TEXT = /^[A-Za-z0-9._-]{1,64}$/;

const NAME_SERVER_SCRIPT = `set -eu
port=$1; text=$2; bind=$3
setsid socat TCP-LISTEN:"$port",bind="$bind",reuseaddr,fork SYSTEM:"echo $text" \\
  </dev/null >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
  if ss -Hltn "sport = :$port" | grep -q .; then echo "$pid"; exit 0; fi
  sleep 0.05
done
echo "service on $bind:$port did not start" >&2
exit 1
`;

/**
 * Start, inside a box (via ssh, detached), a TCP service on the box's own
 * 127.0.0.1:`port` (or `bind`:`port`, e.g. `0.0.0.0` to be reachable on the
 * crew network) that answers every connection with `text` and a newline.
 * Returns the service's pid (a process inside the box; deleting the box ends
 * it). `text` must match `[A-Za-z0-9._-]{1,64}`.
 *
 * @example
 * ```ts
 * import { startNameServer } from "./_local.ts";
 * // await startNameServer(lease.ssh!, key.keyPath, 8080, "api");
 * ```
 */
export async function startNameServer(
  target: SshTarget,
  keyPath: string,
  port: number,
  text: string,
  bind = "127.0.0.1",
): Promise<number> {
  if (
    !Number.isInteger(port) || port < 1 || port > 65535 || !NAME_TEXT.test(text) ||
    !/^\d{1,3}(\.\d{1,3}){3}$/.test(bind)
  ) {
    throw new CrabboxError("usage", "bad_name_server", `bad name server ${port} ${text}`);
  }
  const dir = await Deno.makeTempDir({ prefix: "cbx-ns-" });
  try {
    const r = await boxSsh(
      { ...target, keyPath },
      ["bash", "-s", "--", String(port), text, bind],
      `${dir}/known_hosts`,
      NAME_SERVER_SCRIPT,
    );
    if (r.code !== 0) {
      throw new CrabboxError(
        "ssh",
        "name_server_failed",
        `starting the service on ${target.host}:${port} failed (${r.code}): ${r.stderr.trim()}`,
      );
    }
    return Number(r.stdout.trim());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function homeOf(lease: ProviderLease): string {
  const boxDir = String(lease.data?.boxDir ?? "");
  const suffix = `/local/${lease.providerId}`;
  if (!boxDir.endsWith(suffix)) {
    throw new CrabboxError("usage", "not_local", `${lease.leaseId} is not a local-provider lease`);
  }
  return boxDir.slice(0, -suffix.length);
}

/**
 * Kill every sshd process of a local box (listener and session processes),
 * so existing ssh connections and tunnels to it drop. Returns the killed pids.
 *
 * @example
 * ```ts
 * import { killBoxSshd } from "./_local.ts";
 * // await killBoxSshd(lease);
 * ```
 */
export function killBoxSshd(lease: ProviderLease): Promise<number[]> {
  return stopSshd(homeOf(lease), lease.providerId);
}

/**
 * Kill every sshd process of a local box, then start sshd again exactly as
 * `create` does; resolves when it listens.
 *
 * @example
 * ```ts
 * import { restartBoxSshd } from "./_local.ts";
 * // await restartBoxSshd(lease);
 * ```
 */
export function restartBoxSshd(lease: ProviderLease): Promise<void> {
  return restartSshd(homeOf(lease), lease.providerId);
}

/** Pids of processes whose command line mentions `needle` (e.g. a lease id). */
export function pidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmdline.includes(needle)) pids.push(Number(e.name));
    } catch {
      // gone
    }
  }
  return pids;
}

/** Names of the network namespaces on this machine (`ip netns list`). */
export async function netnsNames(): Promise<string[]> {
  const out = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0]).filter(
    Boolean,
  );
}

/** ssh processes crabbox started for `home` (their argv names the crew dir). */
export function meshPids(home: string): number[] {
  return pidsMentioning(`${home}/crew/`).filter((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0")[0].endsWith("ssh");
    } catch {
      return false;
    }
  });
}

/**
 * {@link meshPids} without the short warm-up sessions a master runs once
 * ready (`ssh … -- <dest> 'exit 0'`, see `lib/mesh/warm.ts`): the one
 * long-lived ssh per member.
 */
export function meshTunnelPids(home: string): number[] {
  return meshPids(home).filter((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").at(-2) !== "exit 0";
    } catch {
      return false;
    }
  });
}

/** The provider-side view of a lease (what `killBoxSshd`/`restartBoxSshd` take). */
export function providerLease(l: Lease): ProviderLease {
  return {
    providerId: l.providerId,
    leaseId: l.id,
    labels: l.labels,
    state: "running",
    ssh: l.ssh,
    data: l.data,
  };
}
