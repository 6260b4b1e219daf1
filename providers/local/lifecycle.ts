/**
 * Creating and deleting a local box: network namespace, host key, sshd,
 * relay, first ssh and the `--init` script.
 *
 * @module
 */

import { sleep } from "../../lib/core/async.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { ensurePrivateDir, joinPath, withLock, writeFileAtomic } from "../../lib/core/fs.ts";
import { waitForSsh } from "../../lib/ssh/args.ts";
import { execInitScript } from "../../lib/ssh/init_script.ts";
import { prepareKnownHosts } from "../../lib/ssh/known_hosts.ts";
import type { CreateSpec, ProviderLease, SshTarget } from "../types.ts";
import {
  absolutePath,
  boxHostname,
  localBoxDir,
  type LocalBoxRecord,
  loopbackAddressFor,
  PUBLIC_KEY,
  readBox,
  requireLeaseId,
  SSH_READY_TIMEOUT_MS,
  usedAddresses,
  writeBox,
} from "./box.ts";
import { createNetns, netnsExists, netnsPids } from "./netns.ts";
import {
  allocateCrewAddress,
  attachCrewNet,
  releaseCrewNet,
  removeBoxEtc,
  writeBoxHosts,
} from "./crew_net.ts";
import { killPid, killRef, run, waitGone } from "./procs.ts";
import { renderSshdConfig, startSshd } from "./sshd.ts";
import { startRelay } from "./relay.ts";
import { procAlive, procStartTime } from "../../lib/process/identity.ts";
import { output } from "../../lib/process/run.ts";

function targetOf(box: LocalBoxRecord): SshTarget {
  return {
    host: box.loopback.ip,
    port: box.loopback.port,
    user: "root",
    keyPath: box.keyPath,
    hostKey: box.hostKey,
  };
}

/** The provider lease of a box record, with its state judged from its live processes. */
export function leaseOf(boxDir: string, box: LocalBoxRecord): ProviderLease {
  const netns = netnsExists(box.leaseId);
  let state: ProviderLease["state"];
  if (!box.ready) {
    state = procAlive(box.creator) ? "creating" : "stopped";
  } else {
    state = netns && procAlive(box.sshd) && procAlive(box.relay) ? "running" : "stopped";
  }
  return {
    providerId: box.leaseId,
    leaseId: box.leaseId,
    labels: { ...box.labels },
    state,
    ssh: box.hostKey ? targetOf(box) : undefined,
    createdAt: box.createdAt,
    data: {
      netns: box.leaseId,
      boxDir,
      loopback: `${box.loopback.ip}:${box.loopback.port}`,
      hostname: box.hostname,
      ...(box.crewNet ? { crewAddress: box.crewNet.ip } : {}),
    },
  };
}

/** Reject a create spec whose values could reach sshd_config or a shell unsafely. */
export function validateSpec(spec: CreateSpec): void {
  requireLeaseId(spec.leaseId);
  boxHostname(spec.slug);
  if (!PUBLIC_KEY.test(spec.sshPublicKey.trim())) {
    throw new CrabboxError(
      "usage",
      "bad_public_key",
      "sshPublicKey must be one 'ssh-… AAAA…' line",
    );
  }
  // deno-lint-ignore no-control-regex
  if (!spec.sshKeyPath.startsWith("/") || /[\s\x00-\x1f]/.test(spec.sshKeyPath)) {
    throw new CrabboxError(
      "usage",
      "bad_key_path",
      `sshKeyPath ${JSON.stringify(spec.sshKeyPath)} must be an absolute path without whitespace`,
    );
  }
}

async function generateHostKey(boxDir: string): Promise<string> {
  const key = joinPath(boxDir, "ssh_host_ed25519_key");
  await run(
    "ssh-keygen",
    ["-q", "-t", "ed25519", "-N", "", "-C", "crabbox-local-host", "-f", key],
    "host key generation",
  );
  const [type, blob] = (await Deno.readTextFile(`${key}.pub`)).trim().split(" ");
  return `${type} ${blob}`;
}

/** Reserve the box dir and a loopback address under the home-wide lock. */
async function reserveBox(
  home: string,
  spec: CreateSpec,
  boxDir: string,
  privateSystem: boolean,
): Promise<LocalBoxRecord> {
  const root = joinPath(absolutePath(home), "local");
  await ensurePrivateDir(root);
  return await withLock(joinPath(root, ".lock"), async () => {
    try {
      await Deno.mkdir(boxDir, { mode: 0o700 });
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new CrabboxError(
          "provider",
          "local_box_exists",
          `local box ${spec.leaseId} already exists`,
        );
      }
      throw e;
    }
    const ip = await loopbackAddressFor(spec.leaseId, await usedAddresses(home, spec.leaseId));
    const box: LocalBoxRecord = {
      version: 1,
      leaseId: spec.leaseId,
      slug: spec.slug,
      hostname: boxHostname(spec.slug),
      labels: { ...spec.labels },
      createdAt: new Date().toISOString(),
      ready: false,
      loopback: { ip, port: 22 },
      keyPath: spec.sshKeyPath,
      creator: { pid: Deno.pid, startTime: procStartTime(Deno.pid) ?? "" },
      ...(privateSystem ? { privateSystem } : {}),
    };
    if (spec.crew !== undefined) {
      box.crewNet = await allocateCrewAddress(home, spec.leaseId, spec.crew);
    }
    await writeBox(boxDir, box);
    return box;
  });
}

/** Run the `--init` script in the box through ssh (`bash -s`, script on stdin). */
async function runInit(
  boxDir: string,
  box: LocalBoxRecord,
  script: string,
  signal?: AbortSignal,
): Promise<void> {
  const knownHostsFile = joinPath(boxDir, "known_hosts");
  const r = await execInitScript(targetOf(box), knownHostsFile, script, { signal });
  await writeFileAtomic(joinPath(boxDir, "init.log"), r.stdout + r.stderr);
  if (r.code !== 0) {
    const last = r.stderr.trim().split("\n").slice(-3).join(" | ");
    throw new CrabboxError(
      r.code === 255 ? "ssh" : "provider",
      "local_init_failed",
      `--init script failed on ${box.hostname} (${box.leaseId}) with exit status ${r.code}` +
        (last ? `: ${last}` : ""),
    );
  }
}

/**
 * Create a box: record, network namespace (plugged into the crew network for
 * a crew member), its own /etc/hosts, host key, sshd, relay, first ssh,
 * `--init`.
 */
export async function createBox(
  home: string,
  spec: CreateSpec,
  signal?: AbortSignal,
  privateSystem = false,
): Promise<ProviderLease> {
  const boxDir = localBoxDir(home, spec.leaseId);
  const box = await reserveBox(home, spec, boxDir, privateSystem);
  const [hostKey] = await Promise.all([
    generateHostKey(boxDir),
    createNetns(spec.leaseId).then(() => attachCrewNet(home, box)),
    writeBoxHosts(box),
    writeFileAtomic(joinPath(boxDir, "authorized_keys"), spec.sshPublicKey.trim() + "\n"),
    writeFileAtomic(joinPath(boxDir, "sshd_config"), renderSshdConfig(boxDir)),
  ]);
  box.hostKey = hostKey;
  signal?.throwIfAborted();
  const sshd = startSshd(boxDir, box);
  const relay = startRelay(boxDir, box);
  const [sshdRef, relayRef] = await Promise.allSettled([sshd, relay]);
  if (sshdRef.status === "fulfilled") box.sshd = sshdRef.value;
  if (relayRef.status === "fulfilled") box.relay = relayRef.value;
  await writeBox(boxDir, box);
  if (sshdRef.status === "rejected") throw sshdRef.reason;
  if (relayRef.status === "rejected") throw relayRef.reason;
  const target = targetOf(box);
  const knownHostsFile = joinPath(boxDir, "known_hosts");
  await prepareKnownHosts(target, knownHostsFile);
  await waitForSsh(target, knownHostsFile, SSH_READY_TIMEOUT_MS, { signal });
  if (spec.init) await runInit(boxDir, box, spec.init, signal);
  box.ready = true;
  await writeBox(boxDir, box);
  return leaseOf(boxDir, box);
}

/**
 * Delete everything of a box: its processes, its namespace (its veth goes
 * with it), its /etc/netns dir, its directory, and the crew namespace when it
 * was the crew's last box.
 */
export async function destroyBox(home: string, leaseId: string): Promise<void> {
  const boxDir = localBoxDir(home, leaseId);
  const box = await readBox(boxDir);
  killRef(box?.relay, true);
  killRef(box?.sshd, false);
  const killed: number[] = [box?.relay?.pid, box?.sshd?.pid].filter((p) => p !== undefined);
  for (let round = 0; round < 50; round++) {
    const pids = await netnsPids(leaseId);
    if (pids.length === 0) break;
    for (const p of pids) killPid(p);
    killed.push(...pids);
    await sleep(20);
  }
  await waitGone(killed);
  if (netnsExists(leaseId)) {
    const out = await output("ip", {
      args: ["netns", "del", leaseId],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    });
    if (!out.success && netnsExists(leaseId)) {
      throw new CrabboxError(
        "provider",
        "local_netns_del_failed",
        `ip netns del ${leaseId} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
  }
  await removeBoxEtc(leaseId);
  await Deno.remove(boxDir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  if (box?.crewNet) await releaseCrewNet(home, leaseId, box.crewNet.ns);
}

/** A provider error for a failed local operation (CrabboxErrors pass through). */
export function wrapError(e: unknown, what: string): CrabboxError {
  if (e instanceof CrabboxError) return e;
  if (e instanceof DOMException && e.name === "AbortError") {
    return new CrabboxError("interrupted", "interrupted", `${what} was interrupted`, { cause: e });
  }
  return new CrabboxError("provider", "local_failed", `${what} failed: ${String(e)}`, { cause: e });
}
