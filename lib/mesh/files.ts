/**
 * The SSH-mesh state files under `$CRABBOX_HOME/crew/<name>/`: `hosts`,
 * `env` and `daemon.json` — pure renderers and parsers, plus their paths.
 * Writing is left to the caller (atomic, 0600, via `lib/core/fs.ts`).
 *
 * @module
 */

import { CrabboxError } from "../core/errors.ts";
import type { SshTarget } from "../ssh/args.ts";

/** One forward of the mesh: `127.0.0.1:<localPort>` reaches `<peer>`'s `127.0.0.1:<remotePort>`. */
export interface MeshForward {
  /** Peer name (the member's slug, disambiguated). */
  peer: string;
  /** Lease id of the member. */
  leaseId: string;
  /** Port on the member's own 127.0.0.1. */
  remotePort: number;
  /** Port on the operator's 127.0.0.1. */
  localPort: number;
}

/**
 * The peer part of an env variable name: uppercase, every character outside
 * `[A-Z0-9]` becomes `_`, leading/trailing `_` trimmed; a name that starts
 * with a digit gets a leading `_` (so it is a valid shell identifier on its
 * own); an empty result is `_`.
 *
 * @example
 * ```ts
 * import { envPeerName } from "./files.ts";
 * envPeerName("client-foo"); // "CLIENT_FOO"
 * envPeerName("123-name"); // "_123_NAME"
 * ```
 */
export function envPeerName(name: string): string {
  let out = "";
  for (const ch of name.trim().toUpperCase()) out += /^[A-Z0-9]$/.test(ch) ? ch : "_";
  out = out.replace(/^_+|_+$/g, "");
  if (out === "") return "_";
  return /^[0-9]/.test(out) ? `_${out}` : out;
}

/**
 * The env variable for one forward: `CRABBOX_CREW_<PEER>_<PORT>`.
 *
 * @example
 * ```ts
 * import { envVarName } from "./files.ts";
 * envVarName("api", 8080); // "CRABBOX_CREW_API_8080"
 * ```
 */
export function envVarName(peer: string, remotePort: number): string {
  return `CRABBOX_CREW_${envPeerName(peer)}_${remotePort}`;
}

/**
 * The `export` lines for `eval`, one per forward, in table order.
 *
 * @example
 * ```ts
 * import { exportLines } from "./files.ts";
 * exportLines([{ peer: "api", leaseId: "cbx-000000000001", remotePort: 8080, localPort: 51820 }]);
 * // ["export CRABBOX_CREW_API_8080=127.0.0.1:51820"]
 * ```
 */
export function exportLines(forwards: readonly MeshForward[]): string[] {
  return forwards.map((f) => `export ${envVarName(f.peer, f.remotePort)}=127.0.0.1:${f.localPort}`);
}

/**
 * The variables of {@link exportLines} as a record (`name → "127.0.0.1:<port>"`).
 *
 * @example
 * ```ts
 * import { envRecord } from "./files.ts";
 * envRecord([{ peer: "db", leaseId: "cbx-000000000002", remotePort: 5432, localPort: 51821 }]);
 * // { CRABBOX_CREW_DB_5432: "127.0.0.1:51821" }
 * ```
 */
export function envRecord(forwards: readonly MeshForward[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of forwards) out[envVarName(f.peer, f.remotePort)] = `127.0.0.1:${f.localPort}`;
  return out;
}

/**
 * The operator-side hosts file. A hosts file cannot hold a port, so every
 * line maps `127.0.0.1` to `<peer>.cbx <peer>-<port>.cbx` and names the
 * local port in a comment. Never writes `127.0.0.1:<port>` as an address.
 *
 * @example
 * ```ts
 * import { renderHostsFile } from "./files.ts";
 * renderHostsFile("pr-42", [
 *   { peer: "api", leaseId: "cbx-000000000001", remotePort: 8080, localPort: 51820 },
 * ]);
 * // # crabbox crew "pr-42" SSH-mesh operator-side aliases
 * // # A hosts file cannot hold a port: use CRABBOX_CREW_<PEER>_<PORT> (see env) for host:port.
 * // 127.0.0.1  api.cbx api-8080.cbx  # local=127.0.0.1:51820 remote=:8080
 * ```
 */
export function renderHostsFile(crew: string, forwards: readonly MeshForward[]): string {
  const lines = [
    `# crabbox crew "${crew}" SSH-mesh operator-side aliases`,
    "# A hosts file cannot hold a port: use CRABBOX_CREW_<PEER>_<PORT> (see env) for host:port.",
    ...forwards.map((f) =>
      `127.0.0.1  ${f.peer}.cbx ${f.peer}-${f.remotePort}.cbx  # local=127.0.0.1:${f.localPort} remote=:${f.remotePort}`
    ),
  ];
  return lines.join("\n") + "\n";
}

/**
 * The env file: a header comment and one `export` line per forward.
 *
 * @example
 * ```ts
 * import { renderEnvFile } from "./files.ts";
 * renderEnvFile("pr-42", [
 *   { peer: "api", leaseId: "cbx-000000000001", remotePort: 8080, localPort: 51820 },
 * ]);
 * // # crabbox crew "pr-42" SSH-mesh — eval "$(crabbox crew connect pr-42 --export)"
 * // export CRABBOX_CREW_API_8080=127.0.0.1:51820
 * ```
 */
export function renderEnvFile(crew: string, forwards: readonly MeshForward[]): string {
  return [
    `# crabbox crew "${crew}" SSH-mesh \u2014 eval "$(crabbox crew connect ${crew} --export)"`,
    ...exportLines(forwards),
  ].join("\n") + "\n";
}

/** One forward read back from a hosts file (the lease id is not in it). */
export interface HostsEntry {
  /** Peer name. */
  peer: string;
  /** Port on the member. */
  remotePort: number;
  /** Port on the operator's 127.0.0.1. */
  localPort: number;
}

const HOSTS_LINE =
  /^127\.0\.0\.1 {2}([a-z0-9-]+)\.cbx \1-(\d+)\.cbx {2}# local=127\.0\.0\.1:(\d+) remote=:(\d+)$/;

/**
 * Parse a hosts file written by {@link renderHostsFile}; other lines are ignored.
 *
 * @example
 * ```ts
 * import { parseHostsFile } from "./files.ts";
 * parseHostsFile("127.0.0.1  api.cbx api-8080.cbx  # local=127.0.0.1:51820 remote=:8080\n");
 * // [{ peer: "api", remotePort: 8080, localPort: 51820 }]
 * ```
 */
export function parseHostsFile(text: string): HostsEntry[] {
  const out: HostsEntry[] = [];
  for (const line of text.split("\n")) {
    const m = HOSTS_LINE.exec(line.trimEnd());
    if (m && m[2] === m[4]) out.push({ peer: m[1], remotePort: +m[4], localPort: +m[3] });
  }
  return out;
}

/** One detached ssh process recorded in `daemon.json`. */
export interface DaemonProcess {
  /** Lease id of the member. */
  leaseId: string;
  /** Peer name. */
  peer: string;
  /** Process id. */
  pid: number;
  /** Start time from `/proc/<pid>/stat` (clock ticks since boot, as a string). */
  startTime: string;
  /** The exact argv, program first, as `/proc/<pid>/cmdline` shows it. */
  argv: string[];
  /** ControlMaster socket of this member. */
  controlPath: string;
  /** ssh `-E` log file. */
  logFile: string;
  /** Forwards this process holds (including ones added live with `-O forward`). */
  forwards: { localPort: number; remotePort: number }[];
  /**
   * With `--peers`: the member's SSH target, so `disconnect` can remove the
   * ssh-peer hosts block it wrote there.
   */
  peerBlock?: SshTarget;
}

/**
 * An ssh about to be started, recorded in `daemon.json` before the spawn: if
 * the starter dies between spawn and recording the process, `disconnect`
 * finds it by this exact argv (which carries the member's unique
 * ControlPath) among this user's processes.
 */
export interface DaemonIntent {
  /** Lease id of the member. */
  leaseId: string;
  /** Peer name. */
  peer: string;
  /** The exact argv about to be spawned, program first. */
  argv: string[];
  /** ControlMaster socket of this member (also inside argv). */
  controlPath: string;
}

/** Contents of `daemon.json`. */
export interface DaemonState {
  /** Format version (1). */
  version: 1;
  /** Crew name. */
  crew: string;
  /** When the daemons were started (ISO 8601). */
  startedAt: string;
  /** One entry per member process. */
  processes: DaemonProcess[];
  /** ssh processes being started and not yet recorded in `processes`. */
  starting?: DaemonIntent[];
}

/**
 * Render `daemon.json` (2-space JSON and a trailing newline).
 *
 * @example
 * ```ts
 * import { renderDaemonState } from "./files.ts";
 * renderDaemonState({ version: 1, crew: "pr-42", startedAt: "2026-01-01T00:00:00.000Z", processes: [] });
 * ```
 */
export function renderDaemonState(state: DaemonState): string {
  return JSON.stringify(state, null, 2) + "\n";
}

const isPort = (v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
const isStr = (v: unknown) => typeof v === "string";
const isTarget = (v: unknown) => {
  const t = v as SshTarget;
  return typeof v === "object" && v !== null && isStr(t.host) && isPort(t.port) && isStr(t.user) &&
    (t.keyPath === undefined || isStr(t.keyPath)) && (t.hostKey === undefined || isStr(t.hostKey));
};

/**
 * Parse and validate `daemon.json`; throws a state error naming the path
 * when the text is not a daemon state.
 *
 * @example
 * ```ts
 * import { parseDaemonState } from "./files.ts";
 * parseDaemonState('{"version":1,"crew":"a","startedAt":"x","processes":[]}', "daemon.json");
 * ```
 */
export function parseDaemonState(text: string, path: string): DaemonState {
  const bad = (why: string) =>
    new CrabboxError("state", "bad_daemon_state", `daemon state ${path} is invalid: ${why}`, {
      hint: "check that no crabbox ssh process is left (ps), then remove the file",
    });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad("not JSON");
  }
  const s = v as Partial<DaemonState>;
  if (typeof v !== "object" || v === null || s.version !== 1) throw bad("unknown version");
  if (!isStr(s.crew) || !isStr(s.startedAt) || !Array.isArray(s.processes)) {
    throw bad("missing crew, startedAt or processes");
  }
  s.processes.forEach((p, i) => {
    const ok = typeof p === "object" && p !== null && isStr(p.leaseId) && isStr(p.peer) &&
      Number.isInteger(p.pid) && p.pid > 0 && isStr(p.startTime) && Array.isArray(p.argv) &&
      p.argv.length > 0 && p.argv.every(isStr) && isStr(p.controlPath) && isStr(p.logFile) &&
      Array.isArray(p.forwards) &&
      p.forwards.every((f) => isPort(f?.localPort) && isPort(f?.remotePort)) &&
      (p.peerBlock === undefined || isTarget(p.peerBlock));
    if (!ok) throw bad(`process entry ${i} is malformed`);
  });
  if (s.starting !== undefined && !Array.isArray(s.starting)) throw bad("starting is not a list");
  (s.starting ?? []).forEach((p, i) => {
    const ok = typeof p === "object" && p !== null && isStr(p.leaseId) && isStr(p.peer) &&
      Array.isArray(p.argv) && p.argv.length > 0 && p.argv.every(isStr) && isStr(p.controlPath);
    if (!ok) throw bad(`starting entry ${i} is malformed`);
  });
  return s as DaemonState;
}

/**
 * The forward table recorded in a daemon state, in record order.
 *
 * @example
 * ```ts
 * import { daemonForwards, parseDaemonState } from "./files.ts";
 * daemonForwards(parseDaemonState('{"version":1,"crew":"a","startedAt":"x","processes":[]}', "d"));
 * // []
 * ```
 */
export function daemonForwards(state: DaemonState): MeshForward[] {
  return state.processes.flatMap((p) =>
    p.forwards.map((f) => ({
      peer: p.peer,
      leaseId: p.leaseId,
      remotePort: f.remotePort,
      localPort: f.localPort,
    }))
  );
}
