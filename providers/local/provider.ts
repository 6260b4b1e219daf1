/**
 * The embedded default provider: every box is a Linux network namespace on
 * this machine with its own loopback, its own UTS namespace (host name
 * `crabbox-<slug>`) and its own `sshd` on the namespace's `127.0.0.1:22`.
 *
 * The host reaches a box through a relay: a `socat` listening on a loopback
 * address of its own (`127.77.<a>.<b>`, no host interface or route is
 * touched) that runs `ip netns exec <ns> socat STDIO TCP:127.0.0.1:22` per
 * connection. Box state lives in `$CRABBOX_HOME/local/<lease-id>/`; the
 * processes are started in their own sessions and outlive the CLI — a box is
 * real until it is deleted.
 *
 * @module
 */

import { parseProcStat } from "../../lib/process/mod.ts";
import {
  CrabboxError,
  ensurePrivateDir,
  isLeaseId,
  joinPath,
  processEnv,
  readJsonFile,
  sleep,
  withLock,
  writeFileAtomic,
  writeJsonAtomic,
} from "../../lib/core/mod.ts";
import type { Labels } from "../../lib/core/mod.ts";
import { prepareKnownHosts, runSsh, sshCommandArgs, waitForSsh } from "../../lib/ssh/mod.ts";
import type {
  CreateSpec,
  Feature,
  LeaseSelector,
  Provider,
  ProviderContext,
  ProviderLease,
  SshTarget,
} from "../types.ts";

/** Path of the sshd binary the local provider runs. */
export const SSHD_PATH = "/usr/sbin/sshd";

/** How long `create` waits for ssh to the new box to work. */
const SSH_READY_TIMEOUT_MS = 30_000;

/** How long to wait for a started process to listen. */
const LISTEN_TIMEOUT_MS = 10_000;

/** A process crabbox started, identified by pid and kernel start time. */
export interface ProcRef {
  /** Process id. */
  pid: number;
  /** Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot). */
  startTime: string;
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

// ---------------------------------------------------------------------------
// Prerequisites

const COMMANDS: ReadonlyArray<{ name: string; pkg: string; path?: string }> = [
  { name: "ip", pkg: "iproute2" },
  { name: "sshd", pkg: "openssh-server", path: SSHD_PATH },
  { name: "socat", pkg: "socat" },
  { name: "unshare", pkg: "util-linux" },
  { name: "setsid", pkg: "util-linux" },
  { name: "ssh", pkg: "openssh-client" },
  { name: "ssh-keygen", pkg: "openssh-client" },
];

/** Seams for {@link checkLocalPrerequisites}; the defaults probe the real system. */
export interface PrerequisiteProbe {
  /** Effective uid (`null` when unknown). */
  euid: () => number | null;
  /** True when `path` is an executable file. */
  isExecutable: (path: string) => boolean;
  /** The `PATH` search list. */
  path: () => string;
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

const systemProbe: PrerequisiteProbe = {
  euid: () => {
    try {
      const status = Deno.readTextFileSync("/proc/self/status");
      const m = /^Uid:\s+\d+\s+(\d+)/m.exec(status);
      return m ? Number(m[1]) : Deno.uid();
    } catch {
      return Deno.uid();
    }
  },
  isExecutable: isExecutableFile,
  path: () => processEnv("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
};

/**
 * What the local provider is missing on this machine: `"root"` when not
 * running as euid 0, then the names of missing programs (`ip`, `sshd`,
 * `socat`, `unshare`, `setsid`, `ssh`, `ssh-keygen`). Empty when all is there.
 *
 * @example
 * ```ts
 * import { checkLocalPrerequisites } from "./provider.ts";
 * const missing = checkLocalPrerequisites(); // e.g. ["socat"]
 * ```
 */
export function checkLocalPrerequisites(probe: PrerequisiteProbe = systemProbe): string[] {
  const missing: string[] = [];
  if (probe.euid() !== 0) missing.push("root");
  const dirs = probe.path().split(":").filter((d) => d.startsWith("/"));
  for (const cmd of COMMANDS) {
    const found = cmd.path
      ? probe.isExecutable(cmd.path)
      : dirs.some((d) => probe.isExecutable(`${d}/${cmd.name}`));
    if (!found) missing.push(cmd.name);
  }
  return missing;
}

/**
 * The one error for missing prerequisites (kind `prerequisite`, exit 6); its
 * message says exactly what to run.
 *
 * @example
 * ```ts
 * import { localPrerequisiteError } from "./provider.ts";
 * localPrerequisiteError(["root", "socat"]).message;
 * // "local provider needs root and: apt-get install -y socat (missing: root, socat)"
 * ```
 */
export function localPrerequisiteError(missing: readonly string[]): CrabboxError {
  const needsRoot = missing.includes("root");
  const pkgs = [
    ...new Set(COMMANDS.filter((c) => missing.includes(c.name)).map((c) => c.pkg)),
  ];
  const install = pkgs.length > 0 ? `apt-get install -y ${pkgs.join(" ")}` : "";
  const what = needsRoot
    ? (install ? `root and: ${install}` : "root (run crabbox as root, e.g. with sudo)")
    : install;
  return new CrabboxError(
    "prerequisite",
    "local_prerequisites",
    `local provider needs ${what} (missing: ${missing.join(", ")})`,
    {
      hint: "local provider needs root and: " +
        "apt-get install -y openssh-server openssh-client iproute2 socat util-linux",
      details: { missing: [...missing] },
    },
  );
}

// ---------------------------------------------------------------------------
// Pure helpers

// deno-lint-ignore no-control-regex
const SAFE_PATH = /^\/[^"%\\\x00-\x1f\x7f]*$/;
const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const PUBLIC_KEY =
  /^(ssh-[a-z0-9-]+|ecdsa-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\r\n]*)?$/;

/** The box directory of a lease: `<home>/local/<lease-id>`. */
export function localBoxDir(home: string, leaseId: string): string {
  return joinPath(absolutePath(home), "local", requireLeaseId(leaseId));
}

function absolutePath(path: string): string {
  return path.startsWith("/") ? path : joinPath(Deno.cwd(), path);
}

function requireLeaseId(leaseId: string): string {
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
 * import { loopbackAddressFor } from "./provider.ts";
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

/**
 * The `sshd_config` of a box. Paths are quoted; they must be absolute and free
 * of `"`, `%`, `\` and control characters.
 *
 * @example
 * ```ts
 * import { renderSshdConfig } from "./provider.ts";
 * renderSshdConfig("/root/.crabbox/local/cbx-0123456789ab");
 * ```
 */
export function renderSshdConfig(boxDir: string): string {
  if (!SAFE_PATH.test(boxDir)) {
    throw new CrabboxError(
      "provider",
      "local_bad_home",
      `box directory ${JSON.stringify(boxDir)} cannot be used in sshd_config`,
      { hint: 'set CRABBOX_HOME to an absolute path without ", %, \\ or control characters' },
    );
  }
  return [
    "# generated by crabbox (local provider); do not edit",
    "ListenAddress 127.0.0.1:22",
    `HostKey "${boxDir}/ssh_host_ed25519_key"`,
    `AuthorizedKeysFile "${boxDir}/authorized_keys"`,
    "AuthorizedPrincipalsFile none",
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "HostbasedAuthentication no",
    "UsePAM no",
    // The box dir may sit under a world-writable dir (/tmp); our files are 0600 in a 0700 dir.
    "StrictModes no",
    "AllowTcpForwarding yes",
    "AllowAgentForwarding no",
    "X11Forwarding no",
    "PermitTunnel no",
    "PermitUserEnvironment no",
    "PrintMotd no",
    "PrintLastLog no",
    "UseDNS no",
    "PidFile none",
    "LoginGraceTime 30",
    "MaxStartups 100:30:200",
    "MaxSessions 50",
    "Subsystem sftp internal-sftp",
    "",
  ].join("\n");
}

/** The host name of a box: `crabbox-<slug>`. */
export function boxHostname(slug: string): string {
  if (!SLUG.test(slug) || slug.length > 41) {
    throw new CrabboxError("usage", "bad_slug", `slug ${JSON.stringify(slug)} is not normalized`);
  }
  return `crabbox-${slug}`;
}

/**
 * The relay's argv: socat on the host loopback address that, per connection,
 * runs `ip netns exec <ns> socat STDIO TCP:127.0.0.1:22` (socat's EXEC splits
 * on spaces; `:` and `,` of the inner address are escaped).
 */
export function relayArgv(leaseId: string, ip: string, port: number): string[] {
  requireLeaseId(leaseId);
  if (!/^127\.77\.\d{1,3}\.\d{1,3}$/.test(ip) || !Number.isInteger(port)) {
    throw new CrabboxError("provider", "local_bad_relay", `bad relay address ${ip}:${port}`);
  }
  return [
    "socat",
    `TCP-LISTEN:${port},bind=${ip},reuseaddr,fork,backlog=512,nodelay`,
    `EXEC:ip netns exec ${leaseId} socat STDIO TCP\\:127.0.0.1\\:22\\,nodelay`,
  ];
}

// ---------------------------------------------------------------------------
// Processes

/** Start time of a live (non-zombie) process, or `undefined` when it is gone. */
export function procStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  const parsed = parseProcStat(stat);
  return parsed && parsed.state !== "Z" && parsed.state !== "X" ? parsed.startTime : undefined;
}

/** True when the recorded process still runs (same pid and start time). */
export function procAlive(ref: ProcRef | undefined): boolean {
  return ref !== undefined && procStartTime(ref.pid) === ref.startTime;
}

function procComm(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
  } catch {
    return undefined;
  }
}

/**
 * Start `argv` as a daemon: `setsid -f` forks it into a session of its own
 * (Ctrl-C or a closed terminal never reach it), stdin from /dev/null, stdout
 * and stderr appended to `logFile`. The CLI keeps no handle on it (the
 * intermediate `setsid` exits at once), so the CLI can exit while the box
 * lives on. The returned ref is dead (empty start time) when the process
 * exited immediately.
 */
async function spawnDetached(argv: readonly string[], logFile: string): Promise<ProcRef> {
  const script = 'log=$1; shift; echo "$$"; exec "$@" >>"$log" 2>&1 </dev/null';
  const out = await new Deno.Command("setsid", {
    args: ["-f", "sh", "-c", script, "sh", logFile, ...argv],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const pid = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || !Number.isInteger(pid) || pid <= 0) {
    throw new CrabboxError(
      "provider",
      "local_spawn_failed",
      `could not start ${argv[0]}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return { pid, startTime: procStartTime(pid) ?? "" };
}

/** Run a short command; throws a provider error with its stderr on failure. */
async function run(cmd: string, args: string[], what: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new CrabboxError(
      "provider",
      "local_command_failed",
      `${what} failed (${cmd} ${args.join(" ")}): ${dec.decode(out.stderr).trim()}`,
    );
  }
  return dec.decode(out.stdout);
}

function hexPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}

function hexIp(ip: string): string {
  return ip.split(".").reverse().map((o) => Number(o).toString(16).toUpperCase().padStart(2, "0"))
    .join("");
}

/** True when `/proc/<pid>/net/tcp` (the pid's network namespace) has a listener on ip:port. */
function listening(pid: number, ip: string, port: number): boolean {
  let table: string;
  try {
    table = Deno.readTextFileSync(`/proc/${pid}/net/tcp`);
  } catch {
    return false;
  }
  const local = `${hexIp(ip)}:${hexPort(port)}`;
  return table.split("\n").some((line) => {
    const f = line.trim().split(/\s+/);
    return f[1] === local && f[3] === "0A";
  });
}

async function tailFile(path: string, lines = 5): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim().split("\n").slice(-lines).join(" | ");
  } catch {
    return "";
  }
}

/** Wait until `ref` listens on ip:port in its namespace; false when it died or timed out. */
async function waitListening(
  ref: ProcRef,
  ip: string,
  port: number,
  comm: string,
): Promise<boolean> {
  const deadline = Date.now() + LISTEN_TIMEOUT_MS;
  let delay = 5;
  while (Date.now() < deadline) {
    if (!procAlive(ref)) return false;
    if (procComm(ref.pid) === comm && listening(ref.pid, ip, port)) return true;
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
  return false;
}

/** Send SIGKILL; a process that is already gone is fine. */
function killPid(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // gone already
  }
}

/** Kill a recorded process (and, for session leaders, its process group) if it still matches. */
function killRef(ref: ProcRef | undefined, group: boolean): void {
  if (!ref || !procAlive(ref)) return;
  if (group) killPid(-ref.pid);
  killPid(ref.pid);
}

async function waitGone(pids: readonly number[], timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some((p) => procStartTime(p) !== undefined) && Date.now() < deadline) {
    await sleep(10);
  }
}

function netnsExists(ns: string): boolean {
  try {
    Deno.statSync(`/run/netns/${ns}`);
    return true;
  } catch {
    return false;
  }
}

/** Pids of every process in the box's network namespace. */
async function netnsPids(ns: string): Promise<number[]> {
  if (!netnsExists(ns)) return [];
  const out = await new Deno.Command("ip", {
    args: ["netns", "pids", ns],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).split(/\s+/).filter((s) => /^\d+$/.test(s)).map(
    Number,
  );
}

// ---------------------------------------------------------------------------
// Box records

function boxJsonPath(boxDir: string): string {
  return joinPath(boxDir, "box.json");
}

async function readBox(boxDir: string): Promise<LocalBoxRecord | undefined> {
  try {
    return await readJsonFile<LocalBoxRecord>(boxJsonPath(boxDir));
  } catch {
    return undefined;
  }
}

async function writeBox(boxDir: string, box: LocalBoxRecord): Promise<void> {
  await writeJsonAtomic(boxJsonPath(boxDir), box);
}

async function boxIds(home: string): Promise<string[]> {
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
async function usedAddresses(home: string, self: string): Promise<Set<string>> {
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
function bindable(ip: string, port: number): number | undefined {
  try {
    const l = Deno.listen({ hostname: ip, port, transport: "tcp" });
    const bound = (l.addr as Deno.NetAddr).port;
    l.close();
    return bound;
  } catch {
    return undefined;
  }
}

function targetOf(box: LocalBoxRecord): SshTarget {
  return {
    host: box.loopback.ip,
    port: box.loopback.port,
    user: "root",
    keyPath: box.keyPath,
    hostKey: box.hostKey,
  };
}

function leaseOf(boxDir: string, box: LocalBoxRecord): ProviderLease {
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
    },
  };
}

// ---------------------------------------------------------------------------
// sshd

async function ensurePrivsepDir(): Promise<void> {
  await Deno.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
}

/** Start sshd inside the box's network and UTS namespaces and wait until it listens. */
async function startSshd(boxDir: string, box: LocalBoxRecord): Promise<ProcRef> {
  await ensurePrivsepDir();
  const script = 'printf %s "$1" >/proc/sys/kernel/hostname && exec "$2" -D -e -f "$3"';
  const ref = await spawnDetached(
    [
      "ip",
      "netns",
      "exec",
      requireLeaseId(box.leaseId),
      "unshare",
      "--uts",
      "--",
      "sh",
      "-c",
      script,
      "sh",
      box.hostname,
      SSHD_PATH,
      joinPath(boxDir, "sshd_config"),
    ],
    joinPath(boxDir, "sshd.log"),
  );
  if (!(await waitListening(ref, "127.0.0.1", 22, "sshd"))) {
    killRef(ref, true);
    const log = await tailFile(joinPath(boxDir, "sshd.log"));
    throw new CrabboxError(
      "provider",
      "local_sshd_failed",
      `sshd in ${box.leaseId} did not start`,
      {
        hint: log ? `sshd.log: ${log}` : undefined,
      },
    );
  }
  return ref;
}

/** Pids of every sshd process of a box (listener and per-connection children). */
async function sshdPids(leaseId: string): Promise<number[]> {
  return (await netnsPids(leaseId)).filter((p) => procComm(p) === "sshd");
}

/**
 * Kill every sshd process of a box — the listener and all session
 * processes — so existing connections and tunnels drop. The box, its relay
 * and the services in it stay. Returns the killed pids.
 *
 * @example
 * ```ts
 * import { stopSshd } from "./provider.ts";
 * await stopSshd("/root/.crabbox", "cbx-0123456789ab");
 * ```
 */
export async function stopSshd(home: string, leaseId: string): Promise<number[]> {
  const boxDir = localBoxDir(home, leaseId);
  const box = await readBox(boxDir);
  const listener = box?.sshd && procAlive(box.sshd) ? [box.sshd.pid] : [];
  const pids = [...new Set([...listener, ...(await sshdPids(leaseId))])];
  killRef(box?.sshd, false);
  for (const p of pids) killPid(p);
  await waitGone(pids);
  return pids;
}

/**
 * Restart the sshd of a box: kill every sshd process of it (see
 * {@link stopSshd}), start sshd again exactly as `create` does, record the
 * new pid and wait until it listens.
 *
 * @example
 * ```ts
 * import { restartSshd } from "./provider.ts";
 * await restartSshd("/root/.crabbox", "cbx-0123456789ab");
 * ```
 */
export async function restartSshd(home: string, leaseId: string): Promise<void> {
  const boxDir = localBoxDir(home, leaseId);
  const box = await readBox(boxDir);
  if (!box || !netnsExists(leaseId)) {
    throw new CrabboxError("notFound", "local_box_gone", `local box ${leaseId} does not exist`);
  }
  await stopSshd(home, leaseId);
  box.sshd = await startSshd(boxDir, box);
  await writeBox(boxDir, box);
}

// ---------------------------------------------------------------------------
// Relay

/** Start the host-side relay on box.loopback (port 22 if bindable, else ephemeral). */
async function startRelay(boxDir: string, box: LocalBoxRecord): Promise<ProcRef> {
  const ip = box.loopback.ip;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = (attempt === 0 ? bindable(ip, 22) : undefined) ?? bindable(ip, 0);
    if (port === undefined) continue;
    const ref = await spawnDetached(
      relayArgv(box.leaseId, ip, port),
      joinPath(boxDir, "relay.log"),
    );
    if (await waitListening(ref, ip, port, "socat")) {
      box.loopback.port = port;
      return ref;
    }
    killRef(ref, true);
  }
  const log = await tailFile(joinPath(boxDir, "relay.log"));
  throw new CrabboxError(
    "provider",
    "local_relay_failed",
    `relay for ${box.leaseId} on ${ip} did not start`,
    {
      hint: log ? `relay.log: ${log}` : undefined,
    },
  );
}

// ---------------------------------------------------------------------------
// Create / delete

function validateSpec(spec: CreateSpec): void {
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

async function createNetns(ns: string): Promise<void> {
  await run("ip", ["netns", "add", ns], "creating network namespace");
  await run("ip", ["-n", ns, "link", "set", "lo", "up"], "bringing up loopback");
}

/** Reserve the box dir and a loopback address under the home-wide lock. */
async function reserveBox(home: string, spec: CreateSpec, boxDir: string): Promise<LocalBoxRecord> {
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
    };
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
  const r = await runSsh(
    sshCommandArgs(targetOf(box), ["bash", "-s"], { knownHostsFile }),
    { stdin: script, signal },
  );
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

async function createBox(
  home: string,
  spec: CreateSpec,
  signal?: AbortSignal,
): Promise<ProviderLease> {
  const boxDir = localBoxDir(home, spec.leaseId);
  const box = await reserveBox(home, spec, boxDir);
  const [hostKey] = await Promise.all([
    generateHostKey(boxDir),
    createNetns(spec.leaseId),
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

/** Delete everything of a box: its processes, its namespace, its directory. */
async function destroyBox(home: string, leaseId: string): Promise<void> {
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
    const out = await new Deno.Command("ip", {
      args: ["netns", "del", leaseId],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success && netnsExists(leaseId)) {
      throw new CrabboxError(
        "provider",
        "local_netns_del_failed",
        `ip netns del ${leaseId} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
  }
  await Deno.remove(boxDir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

function wrapError(e: unknown, what: string): CrabboxError {
  if (e instanceof CrabboxError) return e;
  if (e instanceof DOMException && e.name === "AbortError") {
    return new CrabboxError("interrupted", "interrupted", `${what} was interrupted`, { cause: e });
  }
  return new CrabboxError("provider", "local_failed", `${what} failed: ${String(e)}`, { cause: e });
}

// ---------------------------------------------------------------------------
// The provider

/**
 * Build the local provider. Boxes live under `ctx.home/local/`.
 *
 * @example
 * ```ts
 * import { createLocalProvider } from "./provider.ts";
 * const local = createLocalProvider({
 *   home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {},
 * });
 * const leases = await local.list({ crew: "pr-42" });
 * ```
 */
export function createLocalProvider(ctx: ProviderContext): Provider {
  const home = absolutePath(ctx.home);
  let checked = false;
  const requirePrerequisites = () => {
    if (checked) return;
    const missing = checkLocalPrerequisites();
    if (missing.length > 0) throw localPrerequisiteError(missing);
    checked = true;
  };

  return {
    name: "local",
    features: new Set<Feature>(["ssh"]),

    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      requirePrerequisites();
      validateSpec(spec);
      signal?.throwIfAborted();
      const started = Date.now();
      try {
        const lease = await createBox(home, spec, signal);
        ctx.log(`local: ${spec.leaseId} (crabbox-${spec.slug}) up in ${Date.now() - started} ms`);
        return lease;
      } catch (e) {
        if (e instanceof CrabboxError && e.code === "local_box_exists") throw e;
        await destroyBox(home, spec.leaseId).catch((cleanup) =>
          ctx.log(`local: cleanup of ${spec.leaseId} failed: ${String(cleanup)}`)
        );
        throw wrapError(e, `creating local box ${spec.leaseId}`);
      }
    },

    async list(selector: LeaseSelector): Promise<ProviderLease[]> {
      const leases: ProviderLease[] = [];
      for (const id of await boxIds(home)) {
        const lease = await this.get(id);
        if (!lease) continue;
        if (selector.crew !== undefined && lease.labels.crew !== selector.crew) continue;
        leases.push(lease);
      }
      return leases;
    },

    async get(providerId: string): Promise<ProviderLease | undefined> {
      if (!isLeaseId(providerId)) return undefined;
      const boxDir = localBoxDir(home, providerId);
      const box = await readBox(boxDir);
      if (box) return leaseOf(boxDir, { ...box, leaseId: providerId });
      try {
        await Deno.stat(boxDir);
      } catch {
        return undefined;
      }
      // A box dir without a record: a create that crashed early. Listed so it can be deleted.
      return {
        providerId,
        leaseId: providerId,
        labels: { crabbox: "true", "crabbox-lease": providerId },
        state: "stopped",
        data: { netns: providerId, boxDir },
      };
    },

    async delete(lease: ProviderLease): Promise<void> {
      const id = requireLeaseId(lease.providerId);
      const present = netnsExists(id) || (await Deno.stat(localBoxDir(home, id)).then(
        () => true,
        () => false,
      ));
      if (!present) return;
      requirePrerequisites();
      try {
        await destroyBox(home, id);
      } catch (e) {
        throw wrapError(e, `deleting local box ${id}`);
      }
    },

    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh;
    },
  };
}
