/**
 * Getting `--tailscale` boxes into the crew's tailnet: bootstrap the policy
 * on the first lease of a crew, obtain one single-use auth key per box, and
 * render the box's cloud-init. Runs after every flag is validated and before
 * anything is created. The auth key goes only into the user-data handed to
 * the provider: never into argv, labels, logs or claims.
 *
 * @module
 */

import type { Runtime } from "../runtime.ts";
import { CrabboxError } from "../core/errors.ts";

/** What a policy bootstrap did. */
export interface PolicyBootstrapResult {
  /** `present`: nothing to do; `updated`: rows were added; `unavailable`: not a Tailscale-compatible control plane. */
  status: "present" | "updated" | "unavailable";
  /** The lines inserted into the policy (for `updated`). */
  insertedLines?: string[];
  /** Why the control plane is unavailable. */
  reason?: string;
}

/** The Tailscale operations the join needs; injected so tests use a fake API. */
export interface TailnetOps {
  /** Merge the crew's rows into the policy (GET + If-Match POST). */
  ensurePolicy(tag: string): Promise<PolicyBootstrapResult>;
  /** Mint one ephemeral, preauthorized, single-use key with these tags. */
  mintKey(tags: string[], description: string): Promise<string>;
  /** Whether an API credential (API key or OAuth client) is configured. */
  canMint: boolean;
  /** Whether `TS_API_KEY` is set (policy bootstrap needs it). */
  hasApiKey: boolean;
}

/** Tailnet facts of one box-to-be. */
export interface TailnetJoin {
  /** The auth key (secret). */
  authKey: string;
  /** Tags to advertise: base tags, then the crew tag. */
  tags: string[];
}

/**
 * Bootstrap the policy when this is the crew's first tailnet lease (and
 * `TS_API_KEY` is set and `CRABBOX_CREW_ACL` is not `off`). `crewActive`
 * says whether the crew already has a `--tailscale` lease, whose creation
 * ensured the rows (the caller owns the claims). An incompatible control plane is reported and skipped, never
 * fatal.
 */
export async function bootstrapCrewPolicy(
  rt: Runtime,
  ops: TailnetOps,
  crew: string,
  tag: string,
  crewActive: () => Promise<boolean>,
): Promise<PolicyBootstrapResult | undefined> {
  if (rt.env("CRABBOX_CREW_ACL")?.trim() === "off" || !ops.hasApiKey) return undefined;
  if (await crewActive()) return undefined;
  const result = await ops.ensurePolicy(tag);
  if (result.status === "updated") {
    rt.log(`tailnet policy: added rows for ${tag}:`);
    for (const line of result.insertedLines ?? []) rt.log(`  + ${line}`);
  } else if (result.status === "unavailable") {
    rt.log(
      `tailnet policy: control plane has no Tailscale-compatible policy API (${
        result.reason ?? "unknown"
      }); add the rows for ${tag} yourself (crabbox doctor --crew ${crew} prints them)`,
    );
  }
  return result;
}

/**
 * One auth key for one box: `CRABBOX_TAILSCALE_AUTH_KEY` when set, else a
 * freshly minted single-use key. No way to get one → a credentials error
 * naming both ways.
 */
export async function obtainAuthKey(
  rt: Runtime,
  ops: TailnetOps,
  tags: string[],
  slug: string,
): Promise<string> {
  const supplied = rt.env("CRABBOX_TAILSCALE_AUTH_KEY")?.trim();
  if (supplied) return supplied;
  if (!ops.canMint) {
    throw new CrabboxError(
      "credentials",
      "no_tailscale_key",
      "--tailscale needs an auth key: set CRABBOX_TAILSCALE_AUTH_KEY, or TS_API_KEY (or TS_OAUTH_CLIENT_ID and TS_OAUTH_CLIENT_SECRET) so crabbox can mint one",
    );
  }
  return await ops.mintKey(tags, `crabbox ${slug}`);
}
