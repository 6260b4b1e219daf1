/**
 * The tailnet part of `doctor`: reads the policy (read-only) and reports
 * whether the crew's rows are there. Never writes.
 *
 * @module
 */

import type { Runtime } from "../runtime.ts";
import { CrabboxError } from "../core/errors.ts";
import { POLICY_API_UNAVAILABLE, tailnetClientFromEnv } from "../tailnet/api.ts";
import { tailnetCredentialsFrom } from "../tailnet/config.ts";
import { policyRowsPresent } from "../tailnet/policy.ts";

/** What the tailnet probe reports about the policy. */
export type TailnetPolicyProbe =
  | { state: "no-credentials" }
  | { state: "incompatible"; reason: string; apiUrl: string }
  | { state: "error"; message: string }
  | { state: "rows"; owner: boolean; access: boolean; shape: string };

/**
 * Read the tailnet policy with the credentials in the runtime's environment
 * and report the crew's rows.
 *
 * @example
 * ```ts
 * import { resolveRuntime } from "../runtime.ts";
 * import { defaultTailnetProbe } from "./tailnet_probe.ts";
 * const probe = await defaultTailnetProbe("tag:cbx-crew-alice-pr-42", await resolveRuntime());
 * ```
 */
export async function defaultTailnetProbe(tag: string, rt: Runtime): Promise<TailnetPolicyProbe> {
  const creds = tailnetCredentialsFrom(rt.env);
  if (creds.auth !== "api-key") return { state: "no-credentials" };
  try {
    const client = tailnetClientFromEnv(rt.env, { fetch: rt.fetch, signal: rt.signal });
    const policy = await client.getPolicy();
    const rows = policyRowsPresent(policy.text, tag);
    return { state: "rows", owner: rows.owner, access: rows.access, shape: rows.shape };
  } catch (e) {
    if (e instanceof CrabboxError && e.code === POLICY_API_UNAVAILABLE) {
      return { state: "incompatible", reason: e.message, apiUrl: creds.apiUrl };
    }
    return { state: "error", message: e instanceof Error ? e.message : String(e) };
  }
}
