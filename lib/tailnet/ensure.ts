/**
 * `ensureTailnetPolicy`: make sure the tailnet policy holds crabbox's rows for
 * a crew tag — read with the ETag, merge, write with `If-Match`, retry once on
 * a concurrent edit, and report a control plane without a policy API as a
 * result, not an exception.
 *
 * @module
 */

import { CrabboxError } from "../core/errors.ts";
import {
  POLICY_API_UNAVAILABLE,
  POLICY_CHANGED,
  TailnetClient,
  type TailnetClientOptions,
} from "./api.ts";
import { mergeTailnetPolicy, type PolicyShape } from "./policy.ts";
import { assertTailnetTag, manualPolicySnippet, tagOwnerList } from "./policy_snippet.ts";

/** Options for {@link ensureTailnetPolicy}. */
export interface EnsureTailnetPolicyOptions extends TailnetClientOptions {
  /** The crew tag, e.g. `tag:cbx-crew-alice-pr-42`. */
  tag: string;
  /** Extra owners for a new `tagOwners` entry (e.g. an OAuth client's tag). */
  owners?: readonly string[];
  /** A client to use instead of one built from the other options. */
  client?: TailnetClient;
}

/** What {@link ensureTailnetPolicy} did. */
export interface EnsureTailnetPolicyResult {
  /**
   * `present`: the rows were there, nothing written. `updated`: rows inserted
   * and written. `unavailable`: the control plane has no Tailscale-compatible
   * policy API (e.g. Headscale); nothing written, add the rows by hand.
   */
  status: "present" | "updated" | "unavailable";
  /** The inserted lines (for `updated`), to show on stderr. */
  insertedLines: string[];
  /** The policy's rule shape (absent for `unavailable`). */
  shape?: PolicyShape;
  /** How many read-merge-write rounds ran (1 or 2). */
  attempts: number;
  /** Why the policy API is unavailable (for `unavailable`). */
  reason?: string;
  /** The rows to add by hand (for `unavailable`). */
  snippet?: string;
}

/** How many read-merge-write rounds before giving up on concurrent edits. */
const MAX_ATTEMPTS = 2;

/**
 * Ensures the tailnet policy grants `tag` to itself and has it in `tagOwners`.
 *
 * GET the HuJSON policy and its ETag; if the rows are present, stop (no
 * write). Otherwise merge ({@link mergeTailnetPolicy}: insert-only, fails
 * closed) and POST with `If-Match`. On 412 (someone else edited the policy in
 * between) read again, merge again and retry once; a second 412 is an error
 * and nothing of ours was written, so the other edit stands.
 *
 * A control plane without the API (404/405/501, a non-JSON 401, a 2xx
 * without ETag — Headscale) returns `{ status: "unavailable", reason, snippet }`
 * instead of throwing, so a lease is never blocked by it.
 *
 * @example
 * ```ts
 * import { ensureTailnetPolicy } from "@crabbox/crabbox";
 * const r = await ensureTailnetPolicy({ tag: "tag:cbx-crew-alice-pr-42", env: Deno.env.toObject() });
 * if (r.status === "updated") for (const line of r.insertedLines) console.error(`+ ${line}`);
 * if (r.status === "unavailable") console.error(`${r.reason}\n${r.snippet}`);
 * ```
 */
export async function ensureTailnetPolicy(
  options: EnsureTailnetPolicyOptions,
): Promise<EnsureTailnetPolicyResult> {
  const { tag, owners } = options;
  assertTailnetTag(tag);
  tagOwnerList(owners);
  const client = options.client ?? new TailnetClient(options);
  for (let attempt = 1;; attempt++) {
    let policy;
    try {
      policy = await client.getPolicy();
    } catch (e) {
      if (e instanceof CrabboxError && e.code === POLICY_API_UNAVAILABLE) {
        return unavailable(e, tag, owners, attempt);
      }
      throw e;
    }
    const merged = mergeTailnetPolicy(policy.text, { tag, owners });
    if (!merged.changed) {
      return { status: "present", insertedLines: [], shape: merged.shape, attempts: attempt };
    }
    try {
      await client.setPolicy(merged.text, policy.etag);
      return {
        status: "updated",
        insertedLines: merged.insertedLines,
        shape: merged.shape,
        attempts: attempt,
      };
    } catch (e) {
      if (e instanceof CrabboxError && e.code === POLICY_API_UNAVAILABLE) {
        return unavailable(e, tag, owners, attempt);
      }
      if (!(e instanceof CrabboxError) || e.code !== POLICY_CHANGED) throw e;
      if (attempt >= MAX_ATTEMPTS) {
        throw new CrabboxError(
          "tailnet",
          "tailnet_policy_conflict",
          `the tailnet policy changed again while crabbox was adding the rows for ${tag} (412 twice); crabbox wrote nothing, the other edit stands`,
          {
            hint: `run the command again, or add these rows by hand:\n${
              manualPolicySnippet(tag, { owners })
            }`,
            cause: e,
            details: { attempts: attempt, snippet: manualPolicySnippet(tag, { owners }) },
          },
        );
      }
    }
  }
}

function unavailable(
  e: CrabboxError,
  tag: string,
  owners: readonly string[] | undefined,
  attempts: number,
): EnsureTailnetPolicyResult {
  return {
    status: "unavailable",
    insertedLines: [],
    attempts,
    reason: e.message,
    snippet: manualPolicySnippet(tag, { owners }),
  };
}
