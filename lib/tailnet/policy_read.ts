/**
 * Reads a tailnet policy (HuJSON) into the few parts crabbox decides on —
 * `tagOwners`, `grants`, `acls` — and fails closed on anything ambiguous.
 *
 * Section and field names are compared exactly (case-sensitive) in every step:
 * detection, decoding and editing use the same decoded names. A root member
 * whose name differs from `tagOwners`/`grants`/`acls` only in case is refused,
 * because other tools may treat it as that section.
 *
 * @module
 */

import { CrabboxError } from "../core/errors.ts";
import {
  type HuDocument,
  HuJSONSyntaxError,
  type HuNode,
  lineAndColumn,
  parseHuJSON,
} from "./hujson.ts";
import { manualPolicySnippet } from "./policy_snippet.ts";

/** Which rule shape a policy uses for crabbox's access row. */
export type PolicyShape = "grants" | "acls";

/** The rows a policy is read for; used to print the manual snippet on refusal. */
export interface PolicyRowsFor {
  /** The crew tag, e.g. `tag:cbx-crew-alice-pr-42`. */
  readonly tag: string;
  /** Extra tag owners after `autogroup:admin`. */
  readonly owners?: readonly string[];
}

/**
 * The parts of a policy that crabbox reads and edits, as nodes of the parsed
 * document. A section node is -1 when the section is absent.
 */
export interface PolicyModel {
  /** The parsed document; its root is an object. */
  readonly doc: HuDocument;
  /** The `tagOwners` object node, or -1. */
  readonly tagOwners: HuNode;
  /** The `grants` array node, or -1. */
  readonly grants: HuNode;
  /** The `acls` array node, or -1. */
  readonly acls: HuNode;
}

const SECTIONS = ["tagOwners", "grants", "acls"] as const;
const LOWER_SECTIONS = SECTIONS.map((s) => s.toLowerCase());
const GRANT_FIELDS = ["src", "dst", "ip"] as const;
const ACL_FIELDS = ["src", "dst"] as const;

/**
 * Parses and checks a policy. Throws a `tailnet` {@link CrabboxError} whose hint
 * carries the manual snippet for `rows` when the text is not HuJSON, the root is
 * not an object, a root or `tagOwners` name is duplicated, a section has the
 * wrong type, or a rule has the wrong type or a duplicated field.
 *
 * @example
 * ```ts
 * import { readPolicy } from "./policy_read.ts";
 * const model = readPolicy('{"grants": []}', { tag: "tag:a" });
 * console.log(model.grants !== -1, model.acls); // true -1
 * ```
 */
export function readPolicy(text: string, rows: PolicyRowsFor): PolicyModel {
  let doc: HuDocument;
  try {
    doc = parseHuJSON(text);
  } catch (e) {
    if (e instanceof HuJSONSyntaxError) {
      throw refusal(
        rows,
        "policy_unparsable",
        `the policy is not valid HuJSON: ${e.message}`,
        text,
        e.offset,
      );
    }
    throw e;
  }
  const fail = (code: string, reason: string, offset: number) =>
    refusal(rows, code, reason, text, offset);
  const root = doc.root;
  if (doc.kind(root) !== "object") {
    throw fail(
      "policy_root_not_object",
      `the policy root must be an object, not ${describe(doc, root)}`,
      doc.start(root),
    );
  }
  const sections = { tagOwners: -1, grants: -1, acls: -1 };
  const seen = new Set<string>();
  for (let m = doc.firstChild(root); m !== -1; m = doc.nextSibling(m)) {
    const name = doc.name(m);
    if (seen.has(name)) {
      throw fail(
        "policy_duplicate_key",
        `duplicate top-level policy field ${JSON.stringify(name)}`,
        doc.nameStart(m),
      );
    }
    seen.add(name);
    const i = LOWER_SECTIONS.indexOf(name.toLowerCase());
    if (i === -1) continue;
    if (name !== SECTIONS[i]) {
      throw fail(
        "policy_section_case",
        `top-level field ${JSON.stringify(name)} differs from ${
          JSON.stringify(SECTIONS[i])
        } only in case`,
        doc.nameStart(m),
      );
    }
    sections[SECTIONS[i]] = m;
  }
  const { tagOwners, grants, acls } = sections;
  if (tagOwners !== -1) {
    if (doc.kind(tagOwners) !== "object") {
      throw fail(
        "policy_bad_section",
        `tagOwners must be an object, not ${describe(doc, tagOwners)}`,
        doc.start(tagOwners),
      );
    }
    const names = new Set<string>();
    for (let m = doc.firstChild(tagOwners); m !== -1; m = doc.nextSibling(m)) {
      const name = doc.name(m);
      if (names.has(name)) {
        throw fail(
          "policy_duplicate_key",
          `duplicate tagOwners entry ${JSON.stringify(name)}`,
          doc.nameStart(m),
        );
      }
      names.add(name);
    }
  }
  for (
    const [section, node, fields] of [["grants", grants, GRANT_FIELDS], [
      "acls",
      acls,
      ACL_FIELDS,
    ]] as const
  ) {
    if (node === -1) continue;
    if (doc.kind(node) !== "array") {
      throw fail(
        "policy_bad_section",
        `${section} must be an array, not ${describe(doc, node)}`,
        doc.start(node),
      );
    }
    let index = 0;
    for (let rule = doc.firstChild(node); rule !== -1; rule = doc.nextSibling(rule), index++) {
      checkRule(doc, rule, `${section}[${index}]`, fields, fail);
    }
  }
  return { doc, tagOwners, grants, acls };
}

type Fail = (code: string, reason: string, offset: number) => CrabboxError;

function checkRule(
  doc: HuDocument,
  rule: HuNode,
  where: string,
  fields: readonly string[],
  fail: Fail,
): void {
  if (doc.kind(rule) !== "object") {
    throw fail(
      "policy_bad_rule",
      `${where} must be an object, not ${describe(doc, rule)}`,
      doc.start(rule),
    );
  }
  const names = new Set<string>();
  for (let m = doc.firstChild(rule); m !== -1; m = doc.nextSibling(m)) {
    const name = doc.name(m);
    if (names.has(name)) {
      throw fail(
        "policy_duplicate_key",
        `duplicate field ${JSON.stringify(name)} in ${where}`,
        doc.nameStart(m),
      );
    }
    names.add(name);
    const field = fields.find((f) => doc.nameIs(m, f));
    if (field !== undefined) {
      if (doc.kind(m) !== "array") {
        throw fail(
          "policy_bad_rule",
          `${where}.${field} must be an array of strings, not ${describe(doc, m)}`,
          doc.start(m),
        );
      }
      for (let e = doc.firstChild(m); e !== -1; e = doc.nextSibling(e)) {
        if (doc.kind(e) !== "string") {
          throw fail(
            "policy_bad_rule",
            `${where}.${field} must hold only strings, found ${describe(doc, e)}`,
            doc.start(e),
          );
        }
      }
    } else if (fields === ACL_FIELDS && doc.nameIs(m, "action") && doc.kind(m) !== "string") {
      throw fail(
        "policy_bad_rule",
        `${where}.action must be a string, not ${describe(doc, m)}`,
        doc.start(m),
      );
    }
  }
}

/** True when `tagOwners` has a member named exactly `tag`. */
export function ownerPresent(model: PolicyModel, tag: string): boolean {
  const { doc } = model;
  for (let m = doc.firstChild(model.tagOwners); m !== -1; m = doc.nextSibling(m)) {
    if (doc.nameIs(m, tag)) return true;
  }
  return false;
}

/**
 * True when a grant has `tag` in `src` and `dst` and a non-empty `ip`, or an
 * ACL row has `tag` in `src` and `tag` or `tag:*` in `dst`.
 */
export function accessPresent(model: PolicyModel, tag: string): boolean {
  const { doc } = model;
  const wildcard = `${tag}:*`;
  for (let rule = doc.firstChild(model.grants); rule !== -1; rule = doc.nextSibling(rule)) {
    if (
      fieldHas(doc, rule, "src", tag) && fieldHas(doc, rule, "dst", tag) &&
      doc.firstChild(field(doc, rule, "ip")) !== -1
    ) return true;
  }
  for (let rule = doc.firstChild(model.acls); rule !== -1; rule = doc.nextSibling(rule)) {
    if (
      fieldHas(doc, rule, "src", tag) &&
      (fieldHas(doc, rule, "dst", tag) || fieldHas(doc, rule, "dst", wildcard))
    ) return true;
  }
  return false;
}

/** The shape crabbox uses: `grants` when the policy has a `grants` section, else `acls`. */
export function policyShape(model: PolicyModel): PolicyShape {
  return model.grants !== -1 ? "grants" : "acls";
}

function field(doc: HuDocument, rule: HuNode, name: string): HuNode {
  for (let m = doc.firstChild(rule); m !== -1; m = doc.nextSibling(m)) {
    if (doc.nameIs(m, name)) return m;
  }
  return -1;
}

function fieldHas(doc: HuDocument, rule: HuNode, name: string, value: string): boolean {
  for (let e = doc.firstChild(field(doc, rule, name)); e !== -1; e = doc.nextSibling(e)) {
    if (doc.stringIs(e, value)) return true;
  }
  return false;
}

function describe(doc: HuDocument, node: HuNode): string {
  const kind = doc.kind(node);
  switch (kind) {
    case "object":
    case "array":
      return `an ${kind}`;
    case "string":
    case "number":
      return `a ${kind}`;
    default:
      return kind;
  }
}

/**
 * A fail-closed error: nothing was changed; the hint carries the rows to add by
 * hand.
 */
export function refusal(
  rows: PolicyRowsFor,
  code: string,
  reason: string,
  text?: string,
  offset?: number,
): CrabboxError {
  const pos = text !== undefined && offset !== undefined ? lineAndColumn(text, offset) : undefined;
  const at = pos && !reason.startsWith("the policy is not valid HuJSON")
    ? ` (line ${pos.line}, column ${pos.column})`
    : "";
  const snippet = manualPolicySnippet(rows.tag, { owners: rows.owners });
  return new CrabboxError(
    "tailnet",
    code,
    `cannot safely edit the tailnet policy: ${reason}${at}`,
    {
      hint: `nothing was changed; add these rows to the policy by hand:\n${snippet}`,
      details: { reason, snippet, ...(pos ?? {}) },
    },
  );
}
