/**
 * `crabbox crew connect|disconnect|peers|release`: the SSH-mesh commands.
 * Handlers call toolkit functions and print; the toolkit is imported lazily
 * so `crabbox --help` stays fast.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import { CrabboxError } from "../lib/core/mod.ts";
import type { MeshEvent } from "../lib/mesh/mod.ts";
import { err, out, printJson, reportError, setExitStatus, table } from "./output.ts";

const TEARDOWN_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGTSTP"];

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

async function connectAction(
  name: string,
  flags: { provider?: string; export?: boolean; json?: boolean },
): Promise<void> {
  const { connectCrew, describeCrew, startCrewDaemons } = await import("../lib/mesh/mod.ts");
  if (flags.export && flags.json) {
    throw new CrabboxError("usage", "bad_flags", "give --export or --json, not both");
  }
  const log = (m: string) => err(`crabbox: ${m}`);
  if (flags.json) {
    printJson(await describeCrew(name, { provider: flags.provider, log }));
    return;
  }
  if (flags.export) {
    const r = await startCrewDaemons(name, { provider: flags.provider, log });
    for (const s of r.skipped) {
      log(`warning: skipping ${s.lease.slug} (${s.lease.id}): ${s.reason}`);
    }
    for (const line of r.exports) out(line);
    err(
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
  try {
    const m = await connectCrew(name, {
      provider: flags.provider,
      signal: stop.signal,
      log,
      onEvent: (e) => {
        const line = describeEvent(e);
        if (line && (ready || e.state === "backoff")) log(line);
      },
    });
    ready = true;
    for (const s of m.skipped) {
      log(`warning: skipping ${s.lease.slug} (${s.lease.id}): ${s.reason}`);
    }
    if (m.forwards.length === 0) {
      err(`crew "${m.crew}" has no members declaring --expose; nothing to forward`);
      await m.close();
      return;
    }
    out(`crew "${m.crew}" SSH-mesh ready (${m.forwards.length} forwards)`);
    for (const line of m.exports) out(line);
    out(`wrote ${m.paths.hosts}`);
    out(`wrote ${m.paths.env}`);
    await m.closed;
    err(`crew "${m.crew}" SSH-mesh stopped (${received ?? "closed"})`);
  } finally {
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  }
}

async function disconnectAction(name: string): Promise<void> {
  const { disconnectCrew } = await import("../lib/mesh/mod.ts");
  const r = await disconnectCrew(name);
  if (!r.hadState) {
    out(`crew "${r.crew}" has no recorded SSH-mesh daemons`);
    return;
  }
  const untouched = r.recorded - r.stopped;
  out(
    `crew "${r.crew}" disconnected ${r.stopped} SSH-mesh daemon(s)${
      untouched ? ` (${untouched} recorded process(es) already gone or not ours: left alone)` : ""
    }`,
  );
}

async function peersAction(name: string, flags: { provider?: string; json?: boolean }) {
  const { crewPeers } = await import("../lib/mesh/mod.ts");
  const peers = await crewPeers(name, {
    provider: flags.provider,
    log: (m) => err(`crabbox: ${m}`),
  });
  if (flags.json) {
    printJson({ members: peers });
    return;
  }
  if (peers.length === 0) {
    out("no peers found");
    return;
  }
  out(table([
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
export async function releaseCrewAction(name: string): Promise<void> {
  const { disconnectCrew } = await import("../lib/mesh/mod.ts");
  const { releaseCrew } = await import("../lib/lease/mod.ts");
  const d = await disconnectCrew(name);
  if (d.stopped > 0) err(`crew "${d.crew}" disconnected ${d.stopped} SSH-mesh daemon(s)`);
  const r = await releaseCrew(d.crew, { log: (m) => err(`crabbox: ${m}`) });
  if (r.released.length === 0 && r.failed.length === 0) {
    out(`crew "${d.crew}" has no active leases`);
    return;
  }
  for (const id of r.released) out(`released ${id}`);
  if (r.failed.length > 0) {
    for (const f of r.failed) err(`crabbox: failed to release ${f.id}: ${f.error}`);
    throw new CrabboxError(
      "failure",
      "release_failed",
      `crew "${d.crew}": ${r.failed.length} of ${
        r.failed.length + r.released.length
      } lease(s) not released: ${r.failed.map((f) => f.id).join(", ")}`,
    );
  }
}

/**
 * The `crew` command tree.
 *
 * @example
 * ```ts
 * import { crewCommand } from "./crew.ts";
 * crewCommand().commands.map((c) => c.name()); // ["connect", "disconnect", "peers", "release"]
 * ```
 */
export function crewCommand(): Command {
  const crew = new Command("crew").description("SSH-mesh and lifecycle of a whole crew");
  crew.command("connect")
    .description("forward every member's exposed ports to 127.0.0.1 over ssh")
    .argument("<name>", "crew name")
    .option("--provider <name>", "only members of this provider")
    .option("--export", "detach the ssh processes and print export lines for eval")
    .option("--json", "print the forward table as JSON; starts nothing")
    .action((name, flags) => connectAction(name, flags));
  crew.command("disconnect")
    .description("stop the crew's --export SSH-mesh daemons")
    .argument("<name>", "crew name")
    .action((name) => disconnectAction(name));
  crew.command("peers")
    .description("list members with transport, endpoint, exposed ports and planes")
    .argument("<name>", "crew name")
    .option("--provider <name>", "only members of this provider")
    .option("--json", "print JSON")
    .action((name, flags) => peersAction(name, flags));
  crew.command("release")
    .description("disconnect the crew and release every lease across providers")
    .argument("<name>", "crew name")
    .action((name) => releaseCrewAction(name));
  return crew;
}

if (import.meta.main) {
  // Standalone entry (tests, or before the main CLI wires `crew`).
  const { currentExitStatus } = await import("./output.ts");
  let status: number;
  try {
    await crewCommand().exitOverride().parseAsync(Deno.args, { from: "user" });
    status = currentExitStatus();
  } catch (e) {
    const code = (e as { code?: string }).code ?? "";
    status = code.startsWith("commander.")
      ? (code.startsWith("commander.help") ? 0 : 2)
      : reportError(e);
  }
  setExitStatus(status);
  Deno.exit(status);
}
