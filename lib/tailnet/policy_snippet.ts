/**
 * The rows crabbox needs in a tailnet policy, as text an operator can paste by
 * hand, and the tag/owner checks shared by the policy functions.
 *
 * @module
 */

import { usageError } from "../core/errors.ts";

/** The owner every crabbox tag gets in `tagOwners`. */
export const DEFAULT_TAG_OWNER = "autogroup:admin";

const TAG_RE = /^tag:[A-Za-z][A-Za-z0-9-]*$/;
// deno-lint-ignore no-control-regex
const OWNER_RE = /^[^\s\u0000-\u001f\u007f"\\]+$/;

/**
 * Checks a Tailscale tag (`tag:` then an ASCII letter, then letters, digits
 * and `-`, as Tailscale's `CheckTag` requires). Throws a usage error otherwise.
 *
 * @example
 * ```ts
 * import { assertTailnetTag } from "./policy_snippet.ts";
 * assertTailnetTag("tag:cbx-crew-alice-pr-42"); // ok
 * ```
 */
export function assertTailnetTag(tag: string): void {
  if (typeof tag !== "string" || !TAG_RE.test(tag)) {
    throw usageError(
      "bad_tailnet_tag",
      `tailnet tag ${JSON.stringify(tag)} is invalid`,
      'a tag is "tag:" followed by an ASCII letter and then only letters, digits or "-"',
    );
  }
}

/**
 * The owner list for a new `tagOwners` entry: `autogroup:admin` first, then the
 * extra owners in order, without duplicates. Throws a usage error for an owner
 * that is empty or holds whitespace, quotes or control characters.
 *
 * @example
 * ```ts
 * import { tagOwnerList } from "./policy_snippet.ts";
 * tagOwnerList(["tag:minter", "autogroup:admin"]); // ["autogroup:admin", "tag:minter"]
 * ```
 */
export function tagOwnerList(owners: readonly string[] = []): string[] {
  const list = [DEFAULT_TAG_OWNER];
  for (const owner of owners) {
    if (typeof owner !== "string" || !OWNER_RE.test(owner)) {
      throw usageError(
        "bad_tag_owner",
        `tag owner ${JSON.stringify(owner)} is invalid`,
        'use a user email, "group:…", "tag:…" or "autogroup:admin"',
      );
    }
    if (!list.includes(owner)) list.push(owner);
  }
  return list;
}

/** The self-peering grant row for `tag`. */
export function grantRow(tag: string): { src: string[]; dst: string[]; ip: string[] } {
  return { src: [tag], dst: [tag], ip: ["*"] };
}

/** The legacy self-peering ACL row for `tag`. */
export function aclRow(tag: string): { action: string; src: string[]; dst: string[] } {
  return { action: "accept", src: [tag], dst: [`${tag}:*`] };
}

/** Options for {@link manualPolicySnippet}. */
export interface ManualPolicySnippetOptions {
  /** Owners added after `autogroup:admin` (e.g. an OAuth client's tag). */
  owners?: readonly string[];
}

/**
 * The rows to add by hand when crabbox cannot edit the policy itself: the
 * `tagOwners` entry, the grant row (grants shape) and the legacy ACL row, as
 * HuJSON text with comments saying where each goes.
 *
 * @example
 * ```ts
 * import { manualPolicySnippet } from "@crabbox/crabbox";
 * console.log(manualPolicySnippet("tag:cbx-crew-alice-pr-42"));
 * // // In "tagOwners":
 * // "tag:cbx-crew-alice-pr-42": ["autogroup:admin"],
 * // // In "grants" (if your policy has "grants"):
 * // {"src": ["tag:cbx-crew-alice-pr-42"], "dst": ["tag:cbx-crew-alice-pr-42"], "ip": ["*"]},
 * // // Or in "acls" (legacy policies without "grants"):
 * // {"action": "accept", "src": ["tag:cbx-crew-alice-pr-42"], "dst": ["tag:cbx-crew-alice-pr-42:*"]},
 * ```
 */
export function manualPolicySnippet(tag: string, options: ManualPolicySnippetOptions = {}): string {
  assertTailnetTag(tag);
  const owners = tagOwnerList(options.owners);
  const list = (xs: readonly string[]) => `[${xs.map((x) => JSON.stringify(x)).join(", ")}]`;
  const t = JSON.stringify(tag);
  return [
    `// In "tagOwners":`,
    `${t}: ${list(owners)},`,
    `// In "grants" (if your policy has "grants"):`,
    `{"src": [${t}], "dst": [${t}], "ip": ["*"]},`,
    `// Or in "acls" (legacy policies without "grants"):`,
    `{"action": "accept", "src": [${t}], "dst": [${JSON.stringify(`${tag}:*`)}]},`,
    "",
  ].join("\n");
}
