/**
 * What `crew up` has to do, decided from a crew file and the crew's active
 * leases: which members to create, which already match, which drifted (a
 * different provider, exposed ports, tailnet or declared shape) and which the file does not
 * name. Pure.
 *
 * @module
 */

import type { Lease } from "../lease/leases.ts";
import { readShape, shapeLabels } from "../core/shape.ts";
import type { CrewManifest, ManifestMember } from "./manifest.ts";

/** A member that exists but differs from its declaration. */
export interface CrewDrift {
  /** The declaration. */
  member: ManifestMember;
  /** The lease that holds the slug. */
  lease: Lease;
  /** What differs, one phrase each (`provider: local, declared hetzner`). */
  differences: string[];
}

/** The plan of {@link planCrewUp}. */
export interface CrewUpPlan {
  /** Declared members with no lease: to create. */
  create: ManifestMember[];
  /** Declared members whose lease matches. */
  keep: { member: ManifestMember; lease: Lease }[];
  /** Declared members whose lease differs. */
  drift: CrewDrift[];
  /** Leases of the crew the file does not declare (left alone). */
  extra: Lease[];
}

/**
 * Compare the declared members with the crew's leases. `defaultProvider`
 * stands in for members that name none.
 *
 * @example
 * ```ts
 * import { planCrewUp } from "./crew_plan.ts";
 * const plan = planCrewUp(
 *   {
 *     source: "crew.yaml",
 *     crew: "ci",
 *     members: [{ slug: "db", role: "db", expose: [5432], tailscale: false, shape: {}, at: "crew.yaml:3" }],
 *   },
 *   [],
 *   "local",
 * );
 * plan.create.map((m) => m.slug); // ["db"]
 * ```
 */
export function planCrewUp(
  manifest: CrewManifest,
  leases: readonly Lease[],
  defaultProvider: string,
): CrewUpPlan {
  const bySlug = new Map(leases.map((l) => [l.slug, l]));
  const plan: CrewUpPlan = { create: [], keep: [], drift: [], extra: [] };
  const declared = new Set<string>();
  for (const member of manifest.members) {
    declared.add(member.slug);
    const lease = bySlug.get(member.slug);
    if (!lease) {
      plan.create.push(member);
      continue;
    }
    const differences: string[] = [];
    const provider = member.provider ?? defaultProvider;
    if (lease.provider !== provider) {
      differences.push(`provider: ${lease.provider}, declared ${provider}`);
    }
    const has = [...lease.expose].sort((a, b) => a - b).join(",");
    const wants = member.expose.join(",");
    if (has !== wants) differences.push(`expose: ${has || "none"}, declared ${wants || "none"}`);
    if (lease.tailscale !== member.tailscale) {
      differences.push(`tailscale: ${lease.tailscale}, declared ${member.tailscale}`);
    }
    const declaredShape = shapeLabels(member.shape);
    const leaseShape = shapeLabels(readShape(lease.labels));
    for (const [key, want] of Object.entries(declaredShape)) {
      const has = leaseShape[key];
      if (has !== want) {
        differences.push(`${key.replace(/^crabbox-/, "")}: ${has ?? "default"}, declared ${want}`);
      }
    }
    if (differences.length > 0) plan.drift.push({ member, lease, differences });
    else plan.keep.push({ member, lease });
  }
  plan.extra = leases.filter((l) => !declared.has(l.slug));
  return plan;
}
