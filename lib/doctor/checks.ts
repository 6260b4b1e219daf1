/**
 * `crabbox doctor` as data: every check with a status, a one-line message
 * and structured details, plus the crew's reachability matrix. Doctor never
 * writes the tailnet policy and never starts or changes a box.
 *
 * @module
 */

import type { Lease } from "../lease/leases.ts";
import {
  type CrabboxOptions,
  providerFeaturesOrNone,
  resolveRuntime,
  type Runtime,
} from "../runtime.ts";
import { configPath, loadConfig } from "../core/config.ts";
import { CrabboxError } from "../core/errors.ts";
import { homeProblem } from "../core/home_check.ts";
import { meshPaths } from "../core/home.ts";
import { crewTag, normalizeCrewName, ownerFor } from "../core/names.ts";
import { listLeases } from "../lease/leases.ts";
import {
  memberTransport,
  type Reachability,
  reachabilityMatrix,
  type Transport,
} from "../lease/transport.ts";
import { identityUnsupported, readDaemonState, startingProcesses } from "../mesh/daemon_state.ts";
import { connectLocal } from "../mesh/probe.ts";
import { type IdentityBackend, identityBackend } from "../process/find.ts";
import { processIdentity, sameProcess } from "../process/identity.ts";
import { sshProgram } from "../ssh/args.ts";
import { providerConfigSchemas, providerEntry, providerNames } from "../../providers/registry.ts";
import { defaultTailnetProbe, type TailnetPolicyProbe } from "./tailnet_probe.ts";
import { measurePeerPlane } from "./peer_plane.ts";
import { manualPolicySnippet } from "../tailnet/policy_snippet.ts";
import { runOnLease } from "../lease/exec.ts";
import {
  DIAL_PROBE_SCRIPT,
  type DialCell,
  type DialRunner,
  measureTailnet,
} from "./tailnet_dial.ts";

/** Outcome of one check. */
export type CheckStatus = "ok" | "warn" | "skip" | "fail";

/** One doctor check. */
export interface DoctorCheck {
  /** Check name: `ssh`, `home`, `providers`, `crew`, `crew-mesh`, `tailnet`. */
  name: string;
  /** Outcome. */
  status: CheckStatus;
  /** One line for humans. */
  message: string;
  /** Structured facts for `--json`. */
  details?: Record<string, unknown>;
}

/** The whole report. */
export interface DoctorReport {
  /** Checks in display order. */
  checks: DoctorCheck[];
  /** Members, their transports and whether their SSH path forwards ports (with `crew`). */
  members?: { slug: string; provider: string; transport: Transport; portForward: boolean }[];
  /** Reachability matrix (with `crew`). */
  matrix?: Reachability[];
  /** The tailnet matrix as measured from inside each member (with `crew` and `online`). */
  tailnetMatrix?: DialCell[];
  /** True when no check failed. */
  ok: boolean;
}

/** Options of {@link runDoctor}. */
export interface DoctorOptions extends CrabboxOptions {
  /** Also check this crew. */
  crew?: string;
  /** Allow network calls for provider credential checks. */
  online?: boolean;
  /**
   * Reads the tailnet policy for a tag (default {@link defaultTailnetProbe}:
   * the Tailscale API, read-only).
   */
  tailnetProbe?: (tag: string, rt: Runtime) => Promise<TailnetPolicyProbe>;
  /** Renders the manual policy snippet for a tag (default `manualPolicySnippet`). */
  manualSnippet?: (tag: string) => string;
  /** Runs the tailnet dial probe on a member (default: over ssh, bounded). */
  dialRunner?: DialRunner;
  /** Where process identity comes from (tests inject "none"); default: detect `/proc`, else `ps`. */
  identityBackend?: () => Promise<IdentityBackend>;
}

/** How long the dial probe may run on one member. */
const DIAL_PROBE_TIMEOUT_MS = 60_000;

function sshDialRunner(options: DoctorOptions): DialRunner {
  return (member, args) =>
    runOnLease(member, ["bash", "--norc", "-s", "--", ...args], {
      ...options,
      stdin: DIAL_PROBE_SCRIPT,
      signal: options.signal
        ? AbortSignal.any([options.signal, AbortSignal.timeout(DIAL_PROBE_TIMEOUT_MS)])
        : AbortSignal.timeout(DIAL_PROBE_TIMEOUT_MS),
    });
}

/** The measured tailnet plane: the check and the matrix. */
async function tailnetDialCheck(
  options: DoctorOptions,
  members: readonly Lease[],
): Promise<{ check: DoctorCheck; cells?: DialCell[] }> {
  const joined = members.filter((m) => m.tailscale && m.tailnet?.ipv4);
  const pending = members.filter((m) => m.tailscale && !m.tailnet?.ipv4);
  if (joined.length < 2) {
    return {
      check: check(
        "tailnet-dial",
        "skip",
        `fewer than two members with a recorded tailnet address${
          pending.length ? ` (pending: ${pending.map((m) => m.slug).join(", ")})` : ""
        }`,
      ),
    };
  }
  const cells = await measureTailnet(joined, options.dialRunner ?? sshDialRunner(options));
  const bad = cells.filter((c) => c.verdict !== "ok");
  const dials = cells.reduce((n, c) => n + c.ports.length, 0);
  return {
    cells,
    check: bad.length === 0
      ? check(
        "tailnet-dial",
        "ok",
        `${cells.length} member→member pair(s) measured from inside the members: hosts.cbx, <slug>.cbx, <role>.cbx and ${dials} TCP dial(s) ok`,
      )
      : check(
        "tailnet-dial",
        "fail",
        `${bad.length} of ${cells.length} member→member pair(s) failed: ${
          bad.map((c) => `${c.from}→${c.to}: ${c.reason}`).join("; ")
        }`,
      ),
  };
}

function check(
  name: string,
  status: CheckStatus,
  message: string,
  details?: Record<string, unknown>,
): DoctorCheck {
  return details ? { name, status, message, details } : { name, status, message };
}

/**
 * The ssh client, plus what each used provider lacks on this machine (its
 * registry entry's `prerequisites`).
 */
async function sshCheck(rt: Runtime, used: readonly string[]): Promise<DoctorCheck> {
  let version = "";
  try {
    const out = await rt.process.output(sshProgram(rt.env), {
      args: ["-V"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
    version = new TextDecoder().decode(out.stderr).trim() ||
      new TextDecoder().decode(out.stdout).trim();
  } catch {
    return check("ssh", "fail", "the ssh client is not installed", {
      hint: "apt-get install -y openssh-client",
    });
  }
  const messages: string[] = [];
  const details: Record<string, unknown> = { version };
  for (const name of used) {
    const report = await providerEntry(name).prerequisites?.();
    if (report) {
      messages.push(report.message);
      details[`${name}Missing`] = report.missing;
    }
  }
  if (messages.length > 0) {
    return check("ssh", "warn", `${version}; ${messages.join("; ")}`, details);
  }
  return check("ssh", "ok", version, { version });
}

async function homeCheck(rt: Runtime): Promise<DoctorCheck> {
  const problem = await homeProblem(rt.home);
  if (problem) return check("home", "fail", `${rt.home} ${problem}`, { home: rt.home });
  let mode: number | null = null;
  try {
    mode = (await Deno.stat(rt.home)).mode;
  } catch {
    return check("home", "warn", `${rt.home} does not exist yet (created on first lease)`, {
      home: rt.home,
    });
  }
  try {
    await loadConfig(rt.home, rt.env, providerConfigSchemas());
  } catch (e) {
    return check("home", "fail", (e as Error).message, {
      home: rt.home,
      config: configPath(rt.home),
    });
  }
  if (mode !== null && (mode & 0o077) !== 0) {
    return check(
      "home",
      "warn",
      `${rt.home} is accessible by others (mode ${(mode & 0o777).toString(8)}); run chmod 700`,
      { home: rt.home },
    );
  }
  return check("home", "ok", `${rt.home} (0700), config ok`, { home: rt.home });
}

async function providersCheck(
  rt: Runtime,
  options: DoctorOptions,
  used: readonly string[],
): Promise<DoctorCheck> {
  const rows: Record<string, string> = {};
  let worst: CheckStatus = "ok";
  for (const name of used) {
    if (options.providers && Object.hasOwn(options.providers, name)) {
      rows[name] = "ok (supplied by the caller)";
      continue;
    }
    let entry;
    try {
      entry = providerEntry(name);
    } catch {
      rows[name] = "unknown provider";
      worst = "fail";
      continue;
    }
    const missing = entry.credentials?.(rt.env, rt.config.providers[name] ?? {});
    rows[name] = missing ?? "ok";
    if (missing && worst === "ok") worst = "warn";
    if (!missing && options.online) {
      // One read-only list call proves the credentials and the endpoint.
      try {
        await (await rt.provider(name)).list({}, rt.signal);
        rows[name] = "ok (online)";
      } catch (e) {
        rows[name] = `online check failed: ${(e as Error).message}`;
        worst = "fail";
      }
    }
  }
  const summary = Object.entries(rows).map(([k, v]) => `${k}: ${v}`).join("; ");
  return check("providers", worst, summary || "no providers in use", { providers: rows });
}

/**
 * One `skip` line per registered provider not in use, with its credential
 * state (`HCLOUD_TOKEN is not set`, or that it is ready), so a user sees what
 * they could configure. Never affects the outcome.
 */
function otherProviderChecks(rt: Runtime, used: readonly string[]): DoctorCheck[] {
  return providerNames().filter((n) => !used.includes(n)).map((name) => {
    const missing = providerEntry(name).credentials?.(rt.env, rt.config.providers[name] ?? {});
    return check(name, "skip", missing ?? "credentials present (not in use)", {
      provider: name,
      credentials: missing === undefined ? "present" : "missing",
    });
  });
}

async function meshCheck(
  rt: Runtime,
  crew: string,
  members: readonly Lease[],
  backend: () => Promise<IdentityBackend> = identityBackend,
): Promise<DoctorCheck> {
  const exposed = members.filter((m) => m.expose.length > 0);
  if (exposed.length === 0) return check("crew-mesh", "skip", "no member exposes a port");
  const paths = meshPaths(rt.home, crew);
  const state = await readDaemonState(paths);
  if (!state) {
    return check(
      "crew-mesh",
      "warn",
      `${exposed.length} member(s) expose ports; no crew connect daemon recorded (run crabbox crew connect ${crew} --export)`,
    );
  }
  if ((await backend()) === "none") {
    return check(
      "crew-mesh",
      "fail",
      identityUnsupported("the crew connect daemon check").message,
      {
        daemon: paths.daemon,
      },
    );
  }
  const dead: string[] = [];
  const closed: string[] = [];
  let forwards = 0;
  for (const p of state.processes) {
    const now = await processIdentity(p.pid);
    if (!now || !sameProcess(now, { pid: p.pid, startTime: p.startTime, argv: p.argv })) {
      dead.push(p.peer);
      continue;
    }
    forwards += p.forwards.length;
    const conns = await Promise.all(p.forwards.map((f) => connectLocal(f.localPort, 1000)));
    conns.forEach((c, i) => {
      if (typeof c !== "string") return c.close();
      const f = p.forwards[i];
      closed.push(`${p.peer}:${f.remotePort}→${f.localPort}${c === "stalled" ? " (stalled)" : ""}`);
    });
  }
  // An --export start cut off between recording an ssh's argv and recording
  // the process (daemon.ts): its ssh may run, untracked, or never have started.
  const unrecorded: string[] = [];
  const notStarted: string[] = [];
  for (const { intent, processes } of (await startingProcesses(state)) ?? []) {
    (processes.length > 0 ? unrecorded : notStarted).push(intent.peer);
  }
  const details: Record<string, unknown> = {
    daemon: paths.daemon,
    processes: state.processes.length,
    forwards,
    dead,
    closed,
    unrecorded,
    notStarted,
  };
  const interrupted = [
    unrecorded.length
      ? `an unfinished --export start (running, or cut off) has ssh running but unrecorded for ${
        unrecorded.join(", ")
      }`
      : "",
    notStarted.length
      ? `an unfinished --export start (running, or cut off) has no ssh for ${notStarted.join(", ")}`
      : "",
  ].filter(Boolean);
  if (interrupted.length > 0) {
    details.hint =
      `crabbox crew disconnect ${crew} stops every ssh of the crew, recorded or not; then connect again`;
  }
  if (dead.length > 0 || closed.length > 0) {
    const parts = [
      dead.length ? `ssh gone for ${dead.join(", ")}` : "",
      closed.length ? `not accepting: ${closed.join(", ")}` : "",
      ...interrupted,
    ].filter(Boolean);
    return check("crew-mesh", "fail", parts.join("; "), details);
  }
  if (interrupted.length > 0) {
    return check("crew-mesh", "warn", interrupted.join("; "), details);
  }
  return check(
    "crew-mesh",
    "ok",
    `${state.processes.length} ssh process(es) alive, ${forwards} forward(s) accepting`,
    details,
  );
}

async function tailnetCheck(
  rt: Runtime,
  options: DoctorOptions,
  crew: string,
  members: readonly Lease[],
): Promise<DoctorCheck> {
  const wrong = members.filter((m) =>
    m.tailscale && !providerFeaturesOrNone(options, m.provider).has("tailscale")
  );
  if (wrong.length > 0) {
    return check(
      "tailnet",
      "fail",
      `--tailscale requested on providers without the feature: ${
        wrong.map((m) => `${m.slug} (${m.provider})`).join(", ")
      }`,
    );
  }
  const capable = members.filter((m) => m.tailscale);
  if (capable.length === 0) return check("tailnet", "skip", "no member joins the tailnet");
  const tag = crewTag(await ownerFor({ env: rt.env }), crew);
  const snippet = (options.manualSnippet ?? manualPolicySnippet)(tag);
  const probe = await (options.tailnetProbe ?? defaultTailnetProbe)(tag, rt);
  const managed = rt.env("CRABBOX_CREW_ACL")?.trim() !== "off";
  switch (probe.state) {
    case "no-credentials":
      return check("tailnet", "skip", `TS_API_KEY is not set; add these rows for ${tag} by hand`, {
        tag,
        snippet,
      });
    case "incompatible":
      return check(
        "tailnet",
        "skip",
        `control plane at ${probe.apiUrl} has no Tailscale-compatible policy API (${probe.reason}); manage its policy yourself`,
        { tag, apiUrl: probe.apiUrl, reason: probe.reason, snippet },
      );
    case "error":
      return check("tailnet", "fail", `policy lookup failed: ${probe.message}`, { tag });
    case "rows":
      if (probe.owner && probe.access) {
        return check(
          "tailnet",
          "ok",
          `policy has tagOwners and ${probe.shape} rows for ${tag} (${
            managed ? "auto-managed" : "present"
          })`,
          { tag, mode: managed ? "auto-managed" : "present", shape: probe.shape },
        );
      }
      return check(
        "tailnet",
        "fail",
        `policy is missing ${
          [!probe.owner ? "the tagOwners entry" : "", !probe.access ? "the self-peering rule" : ""]
            .filter(Boolean).join(" and ")
        } for ${tag}`,
        { tag, owner: probe.owner, access: probe.access, snippet },
      );
  }
}

/**
 * Run every check. With `crew`, also the crew, mesh and tailnet checks and
 * the reachability matrix.
 *
 * @example
 * ```ts
 * import { runDoctor } from "@crabbox/crabbox";
 * const report = await runDoctor({ crew: "pr-42" });
 * for (const c of report.checks) console.log(c.status, c.name, c.message);
 * ```
 */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const crew = options.crew === undefined ? undefined : normalizeCrewName(options.crew);
  const rt = await resolveRuntime(options);
  const checks: DoctorCheck[] = [];
  let members: Lease[] = [];
  if (crew !== undefined) {
    try {
      members = await listLeases({ crew }, options);
    } catch (e) {
      if (!(e instanceof CrabboxError)) throw e;
      checks.push(check("crew", "fail", e.message));
    }
  }
  const used = [
    ...new Set([
      rt.config.provider,
      ...Object.keys(rt.config.providers),
      ...members.map((m) => m.provider),
    ]),
  ]
    .filter((n) => providerNames().includes(n) || members.some((m) => m.provider === n));
  checks.unshift(
    await sshCheck(rt, used.filter((n) => providerNames().includes(n))),
    await homeCheck(rt),
    await providersCheck(rt, options, used),
    ...otherProviderChecks(rt, used),
  );
  const report: DoctorReport = { checks, ok: true };
  if (crew !== undefined && !checks.some((c) => c.name === "crew")) {
    const rows = members.map((m) => {
      const features = providerFeaturesOrNone(options, m.provider);
      return {
        slug: m.slug,
        provider: m.provider,
        transport: memberTransport(m, features),
        portForward: features.has("ssh") && !features.has("no-port-forward"),
      };
    });
    const breakdown: Record<string, number> = {};
    for (const r of rows) breakdown[r.transport] = (breakdown[r.transport] ?? 0) + 1;
    const planes = Object.entries(breakdown).map(([k, v]) => `${k}=${v}`).join(" ");
    const unhealthy = members.filter((m) => m.state !== "active");
    checks.push(
      members.length === 0
        ? check("crew", "warn", `crew ${crew} has no active members`)
        : unhealthy.length > 0
        ? check(
          "crew",
          "fail",
          `${unhealthy.length} of ${members.length} member(s) not healthy: ${
            unhealthy.map((m) => `${m.slug} (${m.id}) is ${m.state}`).join(", ")
          }; release with: crabbox release --id ID`,
          { members: rows, unhealthy: unhealthy.map((m) => ({ id: m.id, state: m.state })) },
        )
        : check(
          "crew",
          "ok",
          `${members.length} member(s) on ${
            [...new Set(members.map((m) => m.provider))].join(", ")
          }: ${planes}`,
          { members: rows, planes: breakdown },
        ),
    );
    const noForward = rows.filter((r) => !r.portForward && r.transport === "ssh");
    if (noForward.length > 0) {
      checks.push(check(
        "port-forward",
        "warn",
        noForward.map((r) => `${r.slug} (${r.provider})`).join(", ") +
          ": SSH path cannot forward ports; crew connect skips them (use crabbox run/ssh)",
        { members: noForward.map((r) => r.slug) },
      ));
    }
    checks.push(await meshCheck(rt, crew, members, options.identityBackend));
    checks.push(await tailnetCheck(rt, options, crew, members));
    report.members = rows;
    report.matrix = reachabilityMatrix(rows);
    // A live ssh-peer plane is measured from inside each member; its cells replace the static ones.
    const measured = await measurePeerPlane(rt, crew, members);
    for (const m of measured ?? []) {
      const i = report.matrix.findIndex((c) => c.from === m.from && c.to === m.to);
      if (i >= 0) report.matrix[i] = m;
    }
    if (options.online) {
      const dial = await tailnetDialCheck(options, members);
      checks.push(dial.check);
      if (dial.cells) report.tailnetMatrix = dial.cells;
    }
  }
  report.ok = !checks.some((c) => c.status === "fail");
  return report;
}
