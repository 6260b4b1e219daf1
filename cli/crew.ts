/**
 * `crabbox crew connect|disconnect|peers|release`: the SSH-mesh commands.
 * Handlers call toolkit functions and print; the toolkit is imported lazily
 * so `crabbox --help` stays fast.
 *
 * @module
 */

import { arg, type Command, command, flag, group, requiredValue, value } from "./args/command.ts";
import { CrabboxError } from "../lib/core/errors.ts";
import type { MemberPeers } from "../lib/mesh/peer_table.ts";
import type { MeshEvent } from "../lib/mesh/plan.ts";
import { type CliIo, NETWORK_HELP, networkFlag, releasedLine, table } from "./output.ts";

const TEARDOWN_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGTSTP"];
/** How often a foreground `crew connect` marks the crew as used (idle timeouts are minutes). */
const TOUCH_INTERVAL_MS = 5 * 60_000;

/** Mark every member of the crew as used; failures are warnings. */
async function touchCrewOnUse(io: CliIo, name: string): Promise<void> {
  const { touchCrew } = await import("../lib/lease/touch.ts");
  await touchCrew(name, io.options).catch((e) =>
    io.err(`crabbox: warning: could not touch crew ${name}: ${(e as Error).message}`)
  );
}

function describeEvent(e: MeshEvent): string | undefined {
  const who = `crew "${e.crew}": ${e.peer}`;
  switch (e.state) {
    case "down":
      return `${who} down: ${e.reason ?? "ssh exited"}`;
    case "backoff":
      return `${who} reconnecting in ${((e.retryInMs ?? 0) / 1000).toFixed(1)}s${
        e.reason ? ` (${e.reason})` : ""
      }`;
    case "up":
      if (e.restarts === 0 && !e.reason) return undefined;
      return `${who} reconnected${e.reason ? ` (${e.reason})` : ""}`;
    default:
      return undefined;
  }
}

/** One line per member of the ssh-peer plane: where it reaches each peer. */
function peerLines(tables: readonly MemberPeers[]): string[] {
  return tables.map((t) => {
    const reach = t.peers.map((p) =>
      p.mode === "address"
        ? `${p.peer}.cbx:${p.remotePort}`
        : `${p.peer}:${p.remotePort}=${p.address} (${p.reason ?? "fallback"})`
    );
    return `ssh-peer ${t.peer}: ${reach.join(" ") || "no peers"}${t.error ? ` — ${t.error}` : ""}`;
  });
}

async function connectAction(
  io: CliIo,
  name: string,
  flags: { provider?: string; export?: boolean; json?: boolean; peers?: boolean; network?: string },
): Promise<void> {
  const peers = flags.peers === true;
  const network = await networkFlag(flags.network);
  if (flags.export && flags.json) {
    throw new CrabboxError("usage", "bad_flags", "give --export or --json, not both");
  }
  const log = (m: string) => io.err(`crabbox: ${m}`);
  if (flags.json) {
    const { describeCrew } = await import("../lib/mesh/describe.ts");
    io.printJson(
      await describeCrew(name, { ...io.options, provider: flags.provider, peers, log, network }),
    );
    return;
  }
  if (flags.export) {
    const { startCrewDaemons } = await import("../lib/mesh/daemon.ts");
    await touchCrewOnUse(io, name);
    // A teardown signal mid-start stops what was started and exits 130.
    const stop = new AbortController();
    const handlers = TEARDOWN_SIGNALS.map((sig) => {
      const h = () => stop.abort();
      Deno.addSignalListener(sig, h);
      return [sig, h] as const;
    });
    let r;
    try {
      r = await startCrewDaemons(name, {
        ...io.options,
        provider: flags.provider,
        peers,
        log,
        network,
        signal: stop.signal,
      });
    } finally {
      for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
    }
    for (const s of r.skipped) {
      log(`warning: skipping ${s.lease.slug} (${s.lease.id}): ${s.reason}`);
    }
    for (const line of r.exports) io.out(line);
    io.err(
      `crew "${r.crew}" SSH-mesh daemons started (${r.forwards.length} forwards)${
        r.replaced ? `, replacing ${r.replaced} earlier` : ""
      }; stop with: crabbox crew disconnect ${r.crew}`,
    );
    return;
  }
  // Foreground: hold until a teardown signal.
  const stop = new AbortController();
  let received: string | undefined;
  const handlers = TEARDOWN_SIGNALS.map((sig) => {
    const h = () => {
      received ??= sig;
      stop.abort();
    };
    Deno.addSignalListener(sig, h);
    return [sig, h] as const;
  });
  let ready = false;
  // Started once ready: a process's first timer costs a few ms of start-up,
  // and the first touch is due then anyway (the interval is minutes).
  let toucher: ReturnType<typeof setInterval> | undefined;
  try {
    const { connectCrew } = await import("../lib/mesh/connect.ts");
    io.timing.lap("import");
    const m = await connectCrew(name, {
      ...io.options,
      provider: flags.provider,
      peers,
      network,
      signal: stop.signal,
      log,
      onTiming: io.timing.on
        ? (t) => t.phase !== "warm" && io.timing.add(t.phase, t.ms)
        : undefined,
      onEvent: (e) => {
        const line = describeEvent(e);
        if (line && (ready || e.state === "backoff")) log(line);
      },
    });
    ready = true;
    if (io.timing.on) log(io.timing.line());
    for (const s of m.skipped) {
      log(`warning: skipping ${s.lease.slug} (${s.lease.id}): ${s.reason}`);
    }
    if (m.forwards.length === 0) {
      io.err(`crew "${m.crew}" has no members declaring --expose; nothing to forward`);
      await m.close();
      return;
    }
    io.out(`crew "${m.crew}" SSH-mesh ready (${m.forwards.length} forwards)`);
    for (const line of m.exports) io.out(line);
    io.out(`wrote ${m.paths.hosts}`);
    io.out(`wrote ${m.paths.env}`);
    for (const line of peerLines(m.peers())) io.out(line);
    // Marked as used once ready, not before: a touch writes every member's
    // labels and claim, which would sit in front of connect→ready.
    const touched = touchCrewOnUse(io, name);
    toucher = setInterval(() => void touchCrewOnUse(io, name), TOUCH_INTERVAL_MS);
    await m.closed;
    await touched;
    io.err(`crew "${m.crew}" SSH-mesh stopped (${received ?? "closed"})`);
  } finally {
    clearInterval(toucher);
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  }
}

async function disconnectAction(io: CliIo, name: string, json = false): Promise<void> {
  const { disconnectCrew } = await import("../lib/mesh/daemon.ts");
  const r = await disconnectCrew(name, io.options);
  if (json) {
    io.printJson({ crew: r.crew, recorded: r.recorded, stopped: r.stopped });
    return;
  }
  if (!r.hadState) {
    io.out(`crew "${r.crew}" has no recorded SSH-mesh daemons`);
    return;
  }
  const untouched = r.recorded - r.stopped;
  io.out(
    `crew "${r.crew}" disconnected ${r.stopped} SSH-mesh daemon(s)${
      untouched ? ` (${untouched} recorded process(es) already gone or not ours: left alone)` : ""
    }`,
  );
}

async function peersAction(
  io: CliIo,
  name: string,
  flags: { provider?: string; json?: boolean },
) {
  const { crewPeers } = await import("../lib/mesh/peers.ts");
  const peers = await crewPeers(name, {
    ...io.options,
    provider: flags.provider,
    log: (m) => io.err(`crabbox: ${m}`),
  });
  if (flags.json) {
    io.printJson({ members: peers });
    return;
  }
  if (peers.length === 0) {
    io.out("no peers found");
    return;
  }
  io.out(table([
    ["PEER", "LEASE", "PROVIDER", "TRANSPORT", "ENDPOINT", "EXPOSE", "PLANES"],
    ...peers.map((p) => [
      p.peer,
      p.leaseId,
      p.provider,
      p.transport,
      p.endpoint || "-",
      p.expose.join(",") || "-",
      p.planes.join(",") || "-",
    ]),
  ]));
}

/** Disconnect a crew's daemons and release all its leases (`crew release`, `release --crew`). */
export async function releaseCrewAction(
  io: CliIo,
  name: string,
  allOwners?: boolean,
  json = false,
): Promise<void> {
  const { disconnectAndReleaseCrew } = await import("../lib/mesh/release.ts");
  const r = await disconnectAndReleaseCrew(name, {
    ...io.options,
    allOwners,
    log: (m) => io.err(`crabbox: ${m}`),
  });
  const d = r.disconnected;
  if (json) {
    io.printJson({
      crew: d.crew,
      disconnected: d.stopped,
      released: r.released,
      failed: r.failed,
    });
  } else if (d.stopped > 0) {
    io.err(`crew "${d.crew}" disconnected ${d.stopped} SSH-mesh daemon(s)`);
  }
  if (r.released.length === 0 && r.failed.length === 0) {
    if (r.badClaims?.length) {
      const { badClaimsError } = await import("../lib/lease/leases.ts");
      throw badClaimsError(r.badClaims);
    }
    if (!json) io.out(`crew "${d.crew}" has no leases`);
    if (r.unqueried?.length) {
      const { unqueriedHint } = await import("../lib/lease/leases.ts");
      io.err(`hint: ${unqueriedHint(r.unqueried)}`);
    }
    return;
  }
  if (!json) { for (const id of r.released) io.out(releasedLine(id, r.removed[id])); }
  if (r.failed.length > 0) {
    if (!json) {
      for (const f of r.failed) io.err(`crabbox: failed to release ${f.id}: ${f.error}`);
    }
    throw new CrabboxError(
      "failure",
      "release_failed",
      `crew "${d.crew}": ${r.failed.length} of ${
        r.failed.length + r.released.length
      } lease(s) not released: ${r.failed.map((f) => f.id).join(", ")}`,
    );
  }
  if (r.badClaims?.length) {
    const { badClaimsError } = await import("../lib/lease/leases.ts");
    throw badClaimsError(r.badClaims);
  }
}

async function upAction(
  io: CliIo,
  flags: { file: string; replace?: boolean; connect?: boolean; json?: boolean },
): Promise<void> {
  const { crewUp } = await import("../lib/mesh/crew_up.ts");
  const { loadCrewManifest } = await import("../lib/mesh/manifest.ts");
  const { startCrewDaemons } = await import("../lib/mesh/daemon.ts");
  const { leaseJson } = await import("./lease_json.ts");
  const log = (m: string) => io.err(`crabbox: ${m}`);
  const manifest = await loadCrewManifest(flags.file, io.options);
  const up = await crewUp(manifest, { ...io.options, replace: flags.replace, log });
  let exports: string[] | null = null;
  if (flags.connect) {
    const r = await startCrewDaemons(manifest.crew, { ...io.options, log });
    for (const s of r.skipped) {
      log(`warning: skipping ${s.lease.slug} (${s.lease.id}): ${s.reason}`);
    }
    exports = r.exports;
  }
  if (flags.json) {
    io.printJson({
      crew: up.crew,
      created: up.created.map(leaseJson),
      kept: up.kept.map((l) => l.id),
      drift: up.drift.map((d) => ({
        id: d.lease.id,
        slug: d.lease.slug,
        differences: d.differences,
      })),
      replaced: up.replaced,
      extra: up.extra.map((l) => l.id),
      exports,
    });
    return;
  }
  for (const l of up.created) io.err(`created ${l.slug} ${l.id}`);
  for (const l of up.kept) io.err(`unchanged ${l.slug} ${l.id}`);
  for (const id of up.replaced) io.err(`replaced ${id}`);
  for (const d of up.drift) {
    io.err(
      `crabbox: warning: ${d.lease.slug} (${d.lease.id}) differs from ${d.member.at}: ${
        d.differences.join("; ")
      } (left as is; --replace re-creates it)`,
    );
  }
  for (const l of up.extra) io.err(`not in the file (left alone): ${l.slug} ${l.id}`);
  io.err(
    `crew "${up.crew}": ${up.created.length} created, ${up.kept.length} unchanged, ${up.drift.length} drifted`,
  );
  for (const line of exports ?? []) io.out(line);
}

async function downAction(io: CliIo, flags: { file: string; json?: boolean }): Promise<void> {
  const { loadCrewManifest } = await import("../lib/mesh/manifest.ts");
  const manifest = await loadCrewManifest(flags.file, io.options);
  await releaseCrewAction(io, manifest.crew, false, flags.json);
}

/**
 * The `crew` command tree, writing through `io`.
 *
 * @example
 * ```ts
 * import { crewCommand } from "./crew.ts";
 * import { makeIo } from "./output.ts";
 * crewCommand(makeIo({}, {})).commands.map((c) => c.name); // ["connect", "disconnect", "peers", "release", "up", "down"]
 * ```
 */
export function crewCommand(io: CliIo): Command {
  return group("crew", "SSH-mesh and lifecycle of a whole crew", [
    command({
      name: "connect",
      description: "forward every member's exposed ports to 127.0.0.1 over ssh",
      args: { name: arg("crew name") },
      options: {
        provider: value("--provider <name>", "only members of this provider"),
        export: flag("--export", "detach the ssh processes and print export lines for eval"),
        json: flag("--json", "print the forward table as JSON; starts nothing"),
        peers: flag(
          "--peers",
          "also let members reach each other as <peer>.cbx:<port> (ssh-peer plane)",
        ),
        network: value("--network <mode>", NETWORK_HELP),
      },
      action: (flags, { name }) => connectAction(io, name, flags),
    }),
    command({
      name: "disconnect",
      description: "stop the crew's --export SSH-mesh daemons",
      args: { name: arg("crew name") },
      options: { json: flag("--json", "print JSON: {crew, recorded, stopped}") },
      action: (flags, { name }) => disconnectAction(io, name, flags.json),
    }),
    command({
      name: "peers",
      description: "list members with transport, endpoint, exposed ports and planes",
      args: { name: arg("crew name") },
      options: {
        provider: value("--provider <name>", "only members of this provider"),
        json: flag("--json", "print JSON"),
      },
      action: (flags, { name }) => peersAction(io, name, flags),
    }),
    command({
      name: "release",
      description: "disconnect the crew and release every lease across providers",
      args: { name: arg("crew name") },
      options: {
        allOwners: flag(
          "--all-owners",
          "also release other owners' members (never without this flag)",
        ),
        json: flag("--json", "print JSON"),
      },
      action: (flags, { name }) => releaseCrewAction(io, name, flags.allOwners, flags.json),
    }),
    command({
      name: "up",
      description: "create the members a crew file declares that are missing (idempotent)",
      options: {
        file: requiredValue("-f, --file <path>", "crew file (YAML)"),
        replace: flag("--replace", "release and re-create members that differ from the file"),
        connect: flag(
          "--connect",
          "then start the SSH-mesh daemons and print export lines (crew connect --export)",
        ),
        json: flag("--json", "print JSON"),
      },
      action: (flags) => upAction(io, flags),
    }),
    command({
      name: "down",
      description: "disconnect and release the crew a crew file names",
      options: {
        file: requiredValue("-f, --file <path>", "crew file (YAML)"),
        json: flag("--json", "print JSON"),
      },
      action: (flags) => downAction(io, flags),
    }),
  ]);
}
