/**
 * `crew up` / `crew down`: make a crew match its crew file, and release it.
 * Up creates what is missing, leaves matching members alone, reports drift
 * (replacing drifted members only when asked), and never touches members the
 * file does not name.
 *
 * @module
 */

import { leaseCrew, type LeaseOptions, type MemberSpec } from "../lease/create.ts";
import { type Lease, listLeases } from "../lease/leases.ts";
import { releaseLeases } from "../lease/release.ts";
import { resolveRuntime } from "../runtime.ts";
import type { CrewManifest, ManifestMember } from "./manifest.ts";
import { type CrewDrift, planCrewUp } from "./crew_plan.ts";
import { type CrewReleaseResult, disconnectAndReleaseCrew } from "./release.ts";
import { CrabboxError } from "../core/errors.ts";

/** Options of {@link crewUp}. */
export interface CrewUpOptions extends LeaseOptions {
  /** Release drifted members and create them as declared. */
  replace?: boolean;
}

/** What {@link crewUp} found and did. */
export interface CrewUpResult {
  /** Normalized crew name. */
  crew: string;
  /** Members created by this call, in file order. */
  created: Lease[];
  /** Members that already matched. */
  kept: Lease[];
  /** Members that differ from the file (left as they are unless replaced). */
  drift: CrewDrift[];
  /** Lease ids of drifted members released and created again (`replace`). */
  replaced: string[];
  /** Members of the crew the file does not name (left alone). */
  extra: Lease[];
}

function specOf(m: ManifestMember): MemberSpec {
  return {
    slug: m.slug,
    provider: m.provider,
    expose: m.expose,
    tailscale: m.tailscale,
    init: m.init,
    ttl: m.ttl,
    idleTimeout: m.idleTimeout,
    shape: m.shape,
  };
}

/**
 * Make the crew match a validated crew file: idempotent — a second run with
 * the same file creates nothing. New members are leased together; if one
 * fails, the others created by this call are released and the error thrown.
 *
 * @example
 * ```ts
 * import { crewUp, loadCrewManifest } from "@crabbox/crabbox";
 * const up = await crewUp(await loadCrewManifest("crew.yaml"));
 * console.log(up.created.length, up.kept.length, up.drift.length);
 * ```
 */
export async function crewUp(
  manifest: CrewManifest,
  options: CrewUpOptions = {},
): Promise<CrewUpResult> {
  const rt = await resolveRuntime(options);
  const leases = await listLeases({ crew: manifest.crew }, options);
  const plan = planCrewUp(manifest, leases, rt.config.provider);
  let toCreate = plan.create;
  const replaced: string[] = [];
  if (options.replace && plan.drift.length > 0) {
    const r = await releaseLeases(rt, plan.drift.map((d) => d.lease));
    if (r.failed.length > 0) {
      throw new CrabboxError(
        "failure",
        "replace_failed",
        `crew ${manifest.crew}: could not release drifted ${
          r.failed.map((f) => `${f.id} (${f.error})`).join(", ")
        }`,
      );
    }
    replaced.push(...r.released);
    const order = new Map(manifest.members.map((m, i) => [m.slug, i]));
    toCreate = [...plan.create, ...plan.drift.map((d) => d.member)]
      .sort((a, b) => order.get(a.slug)! - order.get(b.slug)!);
  }
  const created = toCreate.length === 0
    ? []
    : [...(await leaseCrew(manifest.crew, toCreate.map(specOf), options)).members];
  return {
    crew: manifest.crew,
    created,
    kept: plan.keep.map((k) => k.lease),
    drift: options.replace ? [] : plan.drift,
    replaced,
    extra: plan.extra,
  };
}

/**
 * Release the crew a crew file names: its `--export` daemons are stopped,
 * then every lease of the crew is released (members the file does not name
 * too: the crew goes down as a whole).
 *
 * @example
 * ```ts
 * import { crewDown, loadCrewManifest } from "@crabbox/crabbox";
 * const { released } = await crewDown(await loadCrewManifest("crew.yaml"));
 * ```
 */
export async function crewDown(
  manifest: CrewManifest,
  options: LeaseOptions = {},
): Promise<CrewReleaseResult> {
  return await disconnectAndReleaseCrew(manifest.crew, options);
}
