/**
 * Lease commands: warmup, run, ssh, list, status, release.
 *
 * @module
 */

import { command, flag, list, negatable, restArgs, value } from "./args/command.ts";
import type { Lease } from "../lib/lease/leases.ts";
import { parseDuration } from "../lib/core/duration.ts";
import { CrabboxError, usageError } from "../lib/core/errors.ts";
import { describeLifetime, readLifetime, unixNow } from "../lib/core/lifetime.ts";
import { readShape } from "../lib/core/shape.ts";
import {
  type CliIo,
  NETWORK_HELP,
  networkFlag,
  releasedLine,
  table,
  withSpinner,
} from "./output.ts";
import { leaseJson } from "./lease_json.ts";

async function readInit(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw usageError(
      "bad_init",
      `--init ${JSON.stringify(path)} cannot be read: ${(e as Error).message.split("\n")[0]}`,
    );
  }
}

interface CreateFlags {
  crew?: string;
  slug?: string;
  role?: string;
  provider?: string;
  expose: string[];
  init?: string;
  tailscale?: boolean;
  wait?: boolean;
  waitTimeout?: string;
  ttl?: string;
  idleTimeout?: string;
  type?: string;
  location?: string;
  region?: string;
  image?: string;
  arch?: string;
}

/** Options of the commands that create a box (warmup, run), in help order. */
/** Options of the commands that run something on a box (`run`, `ssh`). */
const REMOTE_OPTIONS = {
  shell: value("--shell <cmd>", "run this shell string on the box instead of an argv after --"),
  network: value("--network <mode>", NETWORK_HELP),
  json: flag("--json", "errors as one JSON object on stderr (stdout is the command's)"),
};

const CREATE_OPTIONS = {
  crew: value("--crew <name>", "lease into this crew (label crew=<name>)"),
  slug: value("--slug <slug>", "member name within the crew (default: a generated name)"),
  role: value(
    "--role <role>",
    "instead of --slug: the next free <role>-<n> (worker-1, worker-2, …)",
  ),
  provider: value("--provider <name>", "provider (default: config provider, else local)"),
  expose: list(
    "--expose <ports>",
    "TCP port to expose over the SSH-mesh; repeatable, comma lists",
  ),
  init: value("--init <file>", "shell script to run on the box once it is up"),
  userData: value("--user-data <file>", "alias of --init", { hidden: true }),
  tailscale: flag(
    "--tailscale",
    "join the crew's tailnet (providers with the tailscale feature)",
  ),
  waitTimeout: value(
    "--wait-timeout <duration>",
    "how long to wait for the box's first boot (cloud-init) and tailnet join (default 10m)",
  ),
  wait: negatable(
    "--no-wait",
    "return as soon as ssh answers (no first-boot wait, no tailnet read)",
  ),
  ttl: value(
    "--ttl <duration>",
    "lifetime, e.g. 90m or 2h (0 = none; default: config, else provider)",
  ),
  idleTimeout: value(
    "--idle-timeout <duration>",
    "release when unused this long, e.g. 30m (0 = none; default: config, else provider)",
  ),
  type: value(
    "--type <type>",
    "machine type for this box (providers that take it, e.g. hetzner cpx32)",
  ),
  location: value("--location <where>", "location/region for this box (e.g. hetzner fsn1)"),
  region: value("--region <where>", "alias of --location", { hidden: true }),
  image: value("--image <image>", "image for this box (e.g. hetzner ubuntu-24.04)"),
  arch: value("--arch <arch>", "CPU architecture for this box (e.g. hetzner x86 or arm)"),
};

async function createFromFlags(
  io: CliIo,
  flags: CreateFlags & { userData?: string },
  count = 1,
): Promise<Lease[]> {
  const { leaseBox, leaseCrew } = await import("../lib/lease/create.ts");
  const { normalizeCrewName } = await import("../lib/core/names.ts");
  if (flags.init !== undefined && flags.userData !== undefined) {
    throw usageError("bad_init", "give --init or --user-data, not both");
  }
  const crew = flags.crew === undefined ? undefined : normalizeCrewName(flags.crew);
  if (count > 1 && crew === undefined) {
    throw usageError("missing_crew", "--count needs --crew");
  }
  if (count > 1 && flags.slug !== undefined) {
    throw usageError("conflicting_slug", "--count takes --role (or nothing), not --slug");
  }
  const init = await readInit(flags.init ?? flags.userData);
  const waitTimeoutMs = flags.waitTimeout === undefined
    ? undefined
    : parseDuration(flags.waitTimeout, "--wait-timeout");
  if (flags.location !== undefined && flags.region !== undefined) {
    throw usageError("conflicting_location", "give --location or --region, not both");
  }
  const spec = {
    shape: {
      type: flags.type,
      location: flags.location ?? flags.region,
      image: flags.image,
      arch: flags.arch,
    },
    slug: flags.slug,
    role: flags.role,
    provider: flags.provider,
    expose: flags.expose,
    init,
    tailscale: flags.tailscale,
    ttl: flags.ttl,
    idleTimeout: flags.idleTimeout,
  };
  const options = {
    ...io.options,
    log: (m: string) => io.err(m),
    noWait: flags.wait === false,
    waitTimeoutMs,
  };
  const what = flags.slug ?? (flags.role ? `${flags.role}-…` : "a box");
  return await withSpinner(
    io,
    `leasing ${crew ? `${crew}/` : ""}${count > 1 ? `${count} × ${what}` : what}`,
    async () =>
      count > 1
        ? [...(await leaseCrew(crew!, Array.from({ length: count }, () => spec), options)).members]
        : [await leaseBox(spec, { ...options, crew })],
  );
}

function expiresText(l: Lease, now: number): string {
  const created = Math.floor(Date.parse(l.createdAt) / 1000);
  return describeLifetime(readLifetime(l.labels), now, Number.isFinite(created) ? created : 0);
}

/**
 * The lease table; with `me` (`--all-owners`), an OWNER column marks other
 * owners' rows; `wide` adds each box's type, location, image and arch.
 */
function leaseRows(leases: readonly Lease[], me?: string, wide = false): string {
  const now = unixNow();
  const owner = (l: Lease) =>
    me === undefined ? [] : [l.owner === me ? l.owner : `${l.owner} (other)`];
  const shapeCols = (l: Lease) => {
    const sh = readShape(l.labels);
    return [sh.type ?? "-", sh.location ?? "-", sh.image ?? "-", sh.arch ?? "-"];
  };
  return table([
    [
      "ID",
      "CREW",
      "SLUG",
      "PROVIDER",
      "STATE",
      "SSH",
      "EXPIRES",
      "EXPOSE",
      "TAILNET",
      ...(me === undefined ? [] : ["OWNER"]),
      ...(wide ? ["TYPE", "LOCATION", "IMAGE", "ARCH"] : []),
    ],
    ...leases.map((l) => [
      l.id,
      l.crew ?? "-",
      l.slug,
      l.provider,
      l.state,
      l.ssh ? `${l.ssh.user}@${l.ssh.host}:${l.ssh.port}` : "-",
      expiresText(l, now),
      l.expose.join(",") || "-",
      l.tailscale ? (l.tailnet?.ipv4 ?? l.tailnet?.fqdn ?? "pending") : "-",
      ...owner(l),
      ...(wide ? shapeCols(l) : []),
    ]),
  ]);
}

/** This operator's owner segment. */
async function myOwner(io: CliIo): Promise<string> {
  const { ownerFor } = await import("../lib/core/names.ts");
  return await ownerFor({ env: io.options.env });
}

async function resolveTarget(
  io: CliIo,
  flags: { id?: string; crew?: string; slug?: string },
  allOwners?: boolean,
): Promise<Lease> {
  const { findLease } = await import("../lib/lease/leases.ts");
  const { normalizeCrewName, normalizeSlug } = await import("../lib/core/names.ts");
  if (flags.id !== undefined) {
    if (flags.crew !== undefined || flags.slug !== undefined) {
      throw usageError("conflicting_target", "give --id or --crew/--slug, not both");
    }
    return await findLease(flags.id, { ...io.options, allOwners });
  }
  if (flags.crew !== undefined && flags.slug !== undefined) {
    return await findLease(
      `${normalizeCrewName(flags.crew)}/${normalizeSlug(flags.slug)}`,
      { ...io.options, allOwners },
    );
  }
  throw usageError("missing_target", "give --id ID (or crew/slug) or --crew NAME --slug SLUG");
}

/** Mark a lease as used (last-touched = now); a failure is a warning, not an error. */
export async function touchOnUse(io: CliIo, lease: Lease): Promise<void> {
  const { touchLease } = await import("../lib/lease/touch.ts");
  await touchLease(lease, io.options).catch((e) =>
    io.err(`crabbox: warning: could not touch ${lease.id}: ${(e as Error).message}`)
  );
}

function warmupCommand(io: CliIo) {
  return command({
    name: "warmup",
    description: "lease a box (into a crew) and print its lease id",
    options: {
      ...CREATE_OPTIONS,
      count: value("--count <n>", "lease n members at once (with --crew; --role names them)"),
      json: flag("--json", "print the lease as JSON (a list with --count)"),
    },
    action: async (flags) => {
      const count = flags.count === undefined ? 1 : parseCount(flags.count);
      const leases = await createFromFlags(io, flags, count);
      if (flags.json) {
        io.printJson(flags.count === undefined ? leaseJson(leases[0]) : leases.map(leaseJson));
      } else for (const l of leases) io.out(l.id);
    },
  });
}

function parseCount(text: string): number {
  if (!/^[0-9]{1,3}$/.test(text.trim()) || Number(text) < 1 || Number(text) > 100) {
    throw usageError("bad_count", `--count ${JSON.stringify(text)} must be a number from 1 to 100`);
  }
  return Number(text);
}

/**
 * What `run`/`ssh` send: the argv words (each reaches the remote program
 * intact) or, with `--shell`, one shell string; never both.
 */
function remoteCommandFrom(
  command: string[],
  shell: string | undefined,
  interactiveAllowed: boolean,
): string[] | { shell: string } {
  if (shell !== undefined) {
    if (command.length > 0) {
      throw usageError("conflicting_command", "give a command after -- or --shell, not both");
    }
    if (shell.trim() === "") throw usageError("bad_shell", "--shell needs a command");
    return { shell };
  }
  if (command.length === 0 && !interactiveAllowed) {
    throw usageError("missing_command", "run needs a command after -- (or --shell 'cmd')");
  }
  return command;
}

/** A lease to run on must be active; any other state says how to get rid of it. */
function requireActive(lease: Lease): Lease {
  if (lease.state === "active") return lease;
  throw new CrabboxError(
    "ssh",
    "lease_not_active",
    `lease ${lease.id} (${lease.crew ? `${lease.crew}/` : ""}${lease.slug}) is ${lease.state}`,
    { hint: `release it with: crabbox release --id ${lease.id}` },
  );
}

/** Flags of `run` that only mean something when `run` creates the box. */
function newBoxOnlyFlags(flags: CreateFlags & { userData?: string; keep?: boolean }): string[] {
  const given: [string, unknown][] = [
    ["--crew", flags.crew],
    ["--slug", flags.slug],
    ["--role", flags.role],
    ["--provider", flags.provider],
    ["--init", flags.init],
    ["--user-data", flags.userData],
    ["--tailscale", flags.tailscale],
    ["--ttl", flags.ttl],
    ["--type", flags.type],
    ["--location", flags.location],
    ["--region", flags.region],
    ["--image", flags.image],
    ["--arch", flags.arch],
    ["--idle-timeout", flags.idleTimeout],
    ["--keep", flags.keep],
    ["--wait-timeout", flags.waitTimeout],
    ["--no-wait", flags.wait === false ? true : undefined],
  ];
  return given.filter(([, v]) => v !== undefined).map(([name]) => name);
}

function runCommand(io: CliIo) {
  return command({
    name: "run",
    description:
      "run a command on a box; creates one (released afterwards unless --keep) without --id",
    options: {
      ...CREATE_OPTIONS,
      id: value("--id <id>", "existing lease id or crew/slug"),
      keep: flag("--keep", "keep a box this command created"),
      ...REMOTE_OPTIONS,
    },
    args: {
      command: restArgs("command to run on the box (after --); each word is passed intact"),
    },
    action: async (flags, { command }) => {
      const remote = remoteCommandFrom(command, flags.shell, false);
      const network = await networkFlag(flags.network);
      const { attachToLease } = await import("../lib/lease/exec.ts");
      const { releaseLease } = await import("../lib/lease/release.ts");
      let lease: Lease;
      let created = false;
      if (flags.id !== undefined) {
        const misplaced = newBoxOnlyFlags(flags);
        if (misplaced.length > 0) {
          throw usageError(
            "new_box_flag",
            `--id runs on an existing box; ${misplaced.join(", ")} only ${
              misplaced.length === 1 ? "applies" : "apply"
            } when run creates one`,
          );
        }
        if (flags.expose.length > 0) {
          const { exposePort } = await import("../lib/mesh/expose.ts");
          const { parseExposedPorts } = await import("../lib/core/expose.ts");
          lease = await resolveTarget(io, { id: flags.id });
          for (const p of parseExposedPorts(flags.expose)) {
            lease = await exposePort(lease, p, io.options);
          }
        } else {
          lease = await resolveTarget(io, { id: flags.id });
        }
      } else {
        [lease] = await createFromFlags(io, flags);
        created = true;
        io.err(`leased ${lease.id}`);
      }
      requireActive(lease);
      if (!created) await touchOnUse(io, lease);
      let code: number;
      try {
        code = await attachToLease(lease, remote, { ...io.options, network });
      } finally {
        if (created && !flags.keep) {
          await releaseLease(lease, io.options).then(
            () => io.err(`released ${lease.id}`),
            (e) => io.err(`crabbox: could not release ${lease.id}: ${(e as Error).message}`),
          );
        }
      }
      io.status = code;
    },
  });
}

function sshCommand(io: CliIo) {
  return command({
    name: "ssh",
    description: "open a shell (or run a command) on a box",
    options: {
      id: value("--id <id>", "lease id or crew/slug"),
      crew: value("--crew <name>", "crew of the box"),
      slug: value("--slug <slug>", "member slug"),
      ...REMOTE_OPTIONS,
    },
    args: {
      command: restArgs(
        "command to run (after --; each word is passed intact); interactive shell when absent",
      ),
    },
    action: async (flags, { command }) => {
      const remote = remoteCommandFrom(command, flags.shell, true);
      const network = await networkFlag(flags.network);
      const { attachToLease } = await import("../lib/lease/exec.ts");
      const lease = requireActive(await resolveTarget(io, flags));
      await touchOnUse(io, lease);
      io.status = await attachToLease(lease, remote, { ...io.options, network });
    },
  });
}

function listCommand(io: CliIo) {
  return command({
    name: "list",
    description: "list leases in every state (creating, active, failed, unreachable, orphaned)",
    options: {
      crew: value("--crew <name>", "only this crew"),
      provider: value("--provider <name>", "only this provider"),
      allOwners: flag("--all-owners", "include other owners' leases (marked in the OWNER column)"),
      wide: flag("--wide", "also show each box's type, location, image and arch"),
      json: flag("--json", "print JSON"),
    },
    action: async (flags) => {
      const { listLeasesReport, badClaimsError } = await import("../lib/lease/leases.ts");
      const { leases, badClaims } = await listLeasesReport(
        { crew: flags.crew, provider: flags.provider, allOwners: flags.allOwners },
        { ...io.options, log: (m) => io.err(m) },
      );
      if (flags.json) io.printJson(leases.map(leaseJson));
      else if (leases.length === 0) io.err("no leases");
      else io.out(leaseRows(leases, flags.allOwners ? await myOwner(io) : undefined, flags.wide));
      if (badClaims.length > 0) throw badClaimsError(badClaims);
    },
  });
}

function statusCommand(io: CliIo) {
  return command({
    name: "status",
    description: "show one lease (--id) or every member of a crew (--crew)",
    options: {
      id: value("--id <id>", "lease id or crew/slug"),
      crew: value("--crew <name>", "crew name"),
      allOwners: flag("--all-owners", "include other owners' leases"),
      json: flag("--json", "print JSON"),
    },
    action: async (flags) => {
      const { listLeasesReport, badClaimsError } = await import("../lib/lease/leases.ts");
      let leases: Lease[];
      let bad: Awaited<ReturnType<typeof listLeasesReport>>["badClaims"] = [];
      if (flags.id !== undefined) {
        if (flags.crew !== undefined) {
          throw usageError("conflicting_target", "give --id or --crew, not both");
        }
        leases = [await resolveTarget(io, { id: flags.id }, flags.allOwners)];
      } else if (flags.crew !== undefined) {
        const report = await listLeasesReport({ crew: flags.crew, allOwners: flags.allOwners }, {
          ...io.options,
          log: (m) => io.err(m),
        });
        leases = report.leases;
        bad = report.badClaims;
        if (leases.length === 0 && bad.length === 0) {
          throw new CrabboxError("notFound", "no_crew", `crew ${flags.crew} has no leases`);
        }
      } else {
        throw usageError("missing_target", "status needs --id ID or --crew NAME");
      }
      const { refreshPendingTailnet } = await import("../lib/lease/tailnet_refresh.ts");
      leases = await refreshPendingTailnet(leases, io.options);
      if (flags.json) {
        io.printJson(flags.id !== undefined ? leaseJson(leases[0]) : leases.map(leaseJson));
      } else if (leases.length > 0) {
        io.out(leaseRows(leases, flags.allOwners ? await myOwner(io) : undefined, true));
      }
      if (bad.length > 0) throw badClaimsError(bad);
    },
  });
}

function releaseCommand(io: CliIo) {
  return command({
    name: "release",
    description: "release one lease (--id) or a whole crew (--crew), whatever its state",
    options: {
      id: value("--id <id>", "lease id or crew/slug"),
      crew: value("--crew <name>", "crew name"),
      allOwners: flag(
        "--all-owners",
        "also release other owners' leases (never without this flag)",
      ),
      json: flag("--json", "print JSON: {crew, disconnected, released, failed}"),
    },
    action: async (flags) => {
      const { releaseLease } = await import("../lib/lease/release.ts");
      if (flags.id !== undefined) {
        if (flags.crew !== undefined) {
          throw usageError("conflicting_target", "give --id or --crew, not both");
        }
        const lease = await resolveTarget(io, { id: flags.id }, flags.allOwners);
        const removed = await releaseLease(lease, { ...io.options, log: (m) => io.err(m) });
        if (flags.json) {
          io.printJson({
            crew: lease.crew ?? null,
            disconnected: 0,
            released: [lease.id],
            failed: [],
          });
        } else io.out(releasedLine(lease.id, removed));
        return;
      }
      if (flags.crew === undefined) {
        throw usageError("missing_target", "release needs --id ID or --crew NAME");
      }
      const { releaseCrewAction } = await import("./crew.ts");
      await releaseCrewAction(io, flags.crew, flags.allOwners, flags.json);
    },
  });
}

/** The lease commands, in help order, writing through `io`. */
export function leaseCommands(io: CliIo) {
  return [
    warmupCommand(io),
    runCommand(io),
    sshCommand(io),
    listCommand(io),
    statusCommand(io),
    releaseCommand(io),
  ];
}
