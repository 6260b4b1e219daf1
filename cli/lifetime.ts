/**
 * `crabbox touch` and `crabbox cleanup`: extending leases by hand and
 * sweeping the expired ones.
 *
 * @module
 */

import { command, flag, optionalArg, value } from "./args/command.ts";
import { formatDuration } from "../lib/core/duration.ts";
import { CrabboxError, usageError } from "../lib/core/errors.ts";
import { unixNow } from "../lib/core/lifetime.ts";
import type { TouchResult } from "../lib/lease/touch.ts";
import { type CliIo, table } from "./output.ts";
import { lifetimeJson } from "./lease_json.ts";

function touchJson(r: TouchResult) {
  return {
    id: r.lease.id,
    crew: r.lease.crew ?? null,
    slug: r.lease.slug,
    provider: r.lease.provider,
    lifetime: lifetimeJson(r.lease),
    updated: r.updated,
    box: r.box,
  };
}

function touchCommand(io: CliIo) {
  return command({
    name: "touch",
    description: "mark leases as used now; with --ttl, move their expiry to now + TTL",
    args: { id: optionalArg("lease id or crew/slug") },
    options: {
      crew: value("--crew <name>", "every member of this crew"),
      ttl: value("--ttl <duration>", "new lifetime from now, e.g. 2h (0 = no expiry)"),
      json: flag("--json", "print JSON"),
    },
    action: async (flags, { id }) => {
      const { findLease } = await import("../lib/lease/leases.ts");
      const { touchCrew, touchLease } = await import("../lib/lease/touch.ts");
      if ((id === undefined) === (flags.crew === undefined)) {
        throw usageError("missing_target", "touch needs a lease ID or --crew NAME (one of them)");
      }
      const options = {
        ...io.options,
        ttl: flags.ttl,
        log: (m: string) => io.err(`crabbox: ${m}`),
      };
      let results: TouchResult[];
      if (id !== undefined) {
        results = [await touchLease(await findLease(id, io.options), options)];
      } else {
        results = await touchCrew(flags.crew!, options);
        if (results.length === 0) {
          throw new CrabboxError("notFound", "no_crew", `crew ${flags.crew} has no active leases`);
        }
      }
      if (flags.json) {
        io.printJson({ touched: results.map(touchJson) });
        return;
      }
      const now = unixNow();
      for (const r of results) {
        const l = lifetimeJson(r.lease);
        io.out(
          `touched ${r.lease.id}${
            l.expiresAt === null
              ? " (no expiry)"
              : ` (expires in ${formatDuration(l.expiresAt - now)})`
          }`,
        );
      }
    },
  });
}

function cleanupCommand(io: CliIo) {
  return command({
    name: "cleanup",
    description: "release your leases that are past their TTL or idle timeout",
    options: {
      provider: value("--provider <name>", "only this provider"),
      dryRun: flag("--dry-run", "only print what would be released"),
      json: flag("--json", "print JSON"),
    },
    action: async (flags) => {
      const { cleanupExpired } = await import("../lib/lease/cleanup.ts");
      const r = await cleanupExpired({
        ...io.options,
        provider: flags.provider,
        dryRun: flags.dryRun ?? false,
        log: (m) => io.err(`crabbox: ${m}`),
      });
      const now = unixNow();
      if (flags.json) {
        io.printJson({
          owner: r.owner,
          dryRun: r.dryRun,
          expired: r.expired.map((e) => ({
            id: e.lease.id,
            crew: e.lease.crew ?? null,
            slug: e.lease.slug,
            provider: e.lease.provider,
            reason: e.reason,
            expiredAt: e.deadline,
          })),
          released: r.released,
          failed: r.failed,
        });
      } else if (r.expired.length === 0) {
        io.out(`no expired leases of owner ${r.owner}`);
      } else {
        io.out(table([
          ["ID", "CREW", "SLUG", "PROVIDER", "EXPIRED", "ACTION"],
          ...r.expired.map((e) => [
            e.lease.id,
            e.lease.crew ?? "-",
            e.lease.slug,
            e.lease.provider,
            `${formatDuration(now - e.deadline)} ago (${e.reason})`,
            r.dryRun ? "would release" : r.released.includes(e.lease.id) ? "released" : "FAILED",
          ]),
        ]));
        for (const f of r.failed) io.err(`crabbox: failed to release ${f.id}: ${f.error}`);
      }
      if (r.failed.length > 0) {
        throw new CrabboxError(
          "failure",
          "cleanup_failed",
          `${r.failed.length} of ${r.expired.length} expired lease(s) not released`,
        );
      }
    },
  });
}

/** `touch` and `cleanup`, writing through `io`. */
export function lifetimeCommands(io: CliIo) {
  return [touchCommand(io), cleanupCommand(io)];
}
