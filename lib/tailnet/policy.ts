/**
 * `mergeTailnetPolicy`: add crabbox's `tagOwners` entry and self-peering rule
 * to a tailnet policy by inserting text, leaving every other byte unchanged.
 *
 * @module
 */

import { CrabboxError } from "../core/errors.ts";
import {
  type AppendItem,
  applyInsertions,
  detectLayout,
  planAppend,
  type TextInsertion,
} from "./hujson_append.ts";
import {
  accessPresent,
  ownerPresent,
  type PolicyModel,
  type PolicyRowsFor,
  type PolicyShape,
  policyShape,
  readPolicy,
} from "./policy_read.ts";
import {
  aclRow,
  assertTailnetTag,
  grantRow,
  manualPolicySnippet,
  tagOwnerList,
} from "./policy_snippet.ts";

export { manualPolicySnippet } from "./policy_snippet.ts";
export type { ManualPolicySnippetOptions } from "./policy_snippet.ts";
export type { PolicyShape } from "./policy_read.ts";
export type { TextInsertion } from "./hujson_append.ts";

/** Options for {@link mergeTailnetPolicy}. */
export interface MergeTailnetPolicyOptions {
  /** The crew tag, e.g. `tag:cbx-crew-alice-pr-42`. */
  tag: string;
  /**
   * Extra owners for a new `tagOwners` entry, after `autogroup:admin` (for an
   * OAuth client, its own tag, so that it may mint keys with this tag).
   */
  owners?: readonly string[];
}

/** The result of {@link mergeTailnetPolicy}. */
export interface MergeTailnetPolicyResult {
  /** The policy text; identical to the input when `changed` is false. */
  text: string;
  /** True when rows were inserted. */
  changed: boolean;
  /** `grants` if the policy has a `grants` section, else `acls`. */
  shape: PolicyShape;
  /** Where text was inserted, as offsets of the input (empty when unchanged). */
  insertions: TextInsertion[];
  /** The inserted lines, trimmed, for showing the user what changed. */
  insertedLines: string[];
}

/** The result of {@link policyRowsPresent}. */
export interface PolicyRowsPresence {
  /** `tagOwners` has a member named exactly the tag. */
  owner: boolean;
  /** A grant (`src` and `dst` hold the tag, `ip` non-empty) or ACL row (`dst` holds the tag or `tag:*`). */
  access: boolean;
  /** `grants` if the policy has a `grants` section, else `acls`. */
  shape: PolicyShape;
}

/**
 * Tells whether a policy already holds crabbox's rows for `tag`. Pure; reads
 * comments as comments (a commented-out row does not count). Throws the same
 * fail-closed `tailnet` errors as {@link mergeTailnetPolicy}.
 *
 * @example
 * ```ts
 * import { policyRowsPresent } from "@crabbox/crabbox";
 * policyRowsPresent('{"tagOwners": {"tag:a": []}, "grants": []}', "tag:a");
 * // { owner: true, access: false, shape: "grants" }
 * ```
 */
export function policyRowsPresent(text: string, tag: string): PolicyRowsPresence {
  assertTailnetTag(tag);
  const model = readPolicy(text, { tag });
  return {
    owner: ownerPresent(model, tag),
    access: accessPresent(model, tag),
    shape: policyShape(model),
  };
}

/**
 * Adds the missing rows for `tag` to a HuJSON tailnet policy by inserting text
 * only: comments, blank lines, key order, trailing commas, CRLF, escapes and
 * unknown sections stay byte-identical.
 *
 * - Missing owner: `"<tag>": ["autogroup:admin", …owners]` becomes the last
 *   member of `tagOwners` (before a closing comment), or a new `tagOwners`.
 * - Missing access: `{"src": ["<tag>"], "dst": ["<tag>"], "ip": ["*"]}` is
 *   appended to `grants` if the policy has `grants` (even `[]`), else
 *   `{"action": "accept", "src": ["<tag>"], "dst": ["<tag>:*"]}` to `acls`,
 *   else a new `acls` section is added.
 * - Both present: the input is returned unchanged (`changed: false`).
 *
 * Fails closed with a `tailnet` {@link CrabboxError} (hint: the manual
 * snippet) on unparsable HuJSON, a non-object root, duplicate keys at the root
 * or in `tagOwners`, sections of the wrong type or rule fields of the wrong
 * type. Idempotent; linear time.
 *
 * @example
 * ```ts
 * import { mergeTailnetPolicy } from "@crabbox/crabbox";
 * const policy = '{\n  // ours\n  "grants": [\n    {"src": ["*"], "dst": ["*"], "ip": ["*"]},\n  ],\n}\n';
 * const { text, changed } = mergeTailnetPolicy(policy, { tag: "tag:cbx-crew-alice-pr-42" });
 * console.log(changed); // true
 * console.log(text);
 * // {
 * //   // ours
 * //   "grants": [
 * //     {"src": ["*"], "dst": ["*"], "ip": ["*"]},
 * //     {"src": ["tag:cbx-crew-alice-pr-42"], "dst": ["tag:cbx-crew-alice-pr-42"], "ip": ["*"]},
 * //   ],
 * //   "tagOwners": {"tag:cbx-crew-alice-pr-42": ["autogroup:admin"]},
 * // }
 * ```
 */
export function mergeTailnetPolicy(
  text: string,
  options: MergeTailnetPolicyOptions,
): MergeTailnetPolicyResult {
  const { tag } = options;
  assertTailnetTag(tag);
  const owners = tagOwnerList(options.owners);
  const rows: PolicyRowsFor = { tag, owners: options.owners };
  const model = readPolicy(text, rows);
  const shape = policyShape(model);
  const hasOwner = ownerPresent(model, tag);
  const hasAccess = accessPresent(model, tag);
  if (hasOwner && hasAccess) {
    return { text, changed: false, shape, insertions: [], insertedLines: [] };
  }
  const insertions = planInsertions(model, tag, owners, hasOwner, hasAccess)
    .sort((a, b) => a.offset - b.offset);
  const merged = applyInsertions(text, insertions);
  verify(merged, rows);
  return {
    text: merged,
    changed: true,
    shape,
    insertions,
    insertedLines: insertedLines(insertions),
  };
}

function planInsertions(
  model: PolicyModel,
  tag: string,
  owners: string[],
  hasOwner: boolean,
  hasAccess: boolean,
): TextInsertion[] {
  const { doc } = model;
  const style = detectLayout(doc);
  const rootItems: AppendItem[] = [];
  const out: TextInsertion[] = [];
  if (!hasOwner) {
    if (model.tagOwners !== -1) {
      out.push(...planAppend(doc, model.tagOwners, [{ name: tag, value: owners }], style));
    } else {
      rootItems.push({ name: "tagOwners", value: { [tag]: owners } });
    }
  }
  if (!hasAccess) {
    if (model.grants !== -1) {
      out.push(...planAppend(doc, model.grants, [{ value: grantRow(tag) }], style));
    } else if (model.acls !== -1) {
      out.push(...planAppend(doc, model.acls, [{ value: aclRow(tag) }], style));
    } else {
      rootItems.push({ name: "acls", value: [aclRow(tag)] });
    }
  }
  out.push(...planAppend(doc, doc.root, rootItems, style));
  return out;
}

/** Re-reads the merged text; any surprise is a bug, and we refuse to write. */
function verify(merged: string, rows: PolicyRowsFor): void {
  let ok = false;
  try {
    const again = readPolicy(merged, rows);
    ok = ownerPresent(again, rows.tag) && accessPresent(again, rows.tag);
  } catch {
    ok = false;
  }
  if (!ok) {
    const snippet = manualPolicySnippet(rows.tag, { owners: rows.owners });
    throw new CrabboxError(
      "tailnet",
      "policy_merge_failed",
      "cannot safely edit the tailnet policy: the edited policy did not verify (a crabbox bug)",
      {
        hint: `nothing was changed; add these rows to the policy by hand:\n${snippet}`,
        details: { snippet },
      },
    );
  }
}

function insertedLines(insertions: readonly TextInsertion[]): string[] {
  const lines: string[] = [];
  for (const ins of insertions) {
    for (const raw of ins.text.split(/\r?\n/)) {
      const line = raw.trim().replace(/^,\s*/, "");
      if (line !== "" && line !== ",") lines.push(line);
    }
  }
  return lines;
}
