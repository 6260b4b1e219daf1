import assert from "node:assert/strict";
import { CrabboxError } from "../../lib/core/errors.ts";
import {
  manualPolicySnippet,
  mergeTailnetPolicy,
  type MergeTailnetPolicyResult,
  policyRowsPresent,
} from "../../lib/tailnet/policy.ts";
import { applyInsertions } from "../../lib/tailnet/hujson_append.ts";

const TAG = "tag:cbx-crew-alice-pr-42";
const DATA = new URL("../testdata/tailnet/", import.meta.url);

function read(name: string): string {
  return Deno.readTextFileSync(new URL(name, DATA));
}

/** Removing the inserted text gives back the input, byte for byte. */
function assertInsertOnly(input: string, result: MergeTailnetPolicyResult): void {
  let out = "";
  let at = 0;
  let shift = 0;
  for (const ins of result.insertions) {
    const pos = ins.offset + shift;
    assert.equal(
      result.text.slice(pos, pos + ins.text.length),
      ins.text,
      "insertion is where it says",
    );
    out += result.text.slice(at, pos);
    at = pos + ins.text.length;
    shift += ins.text.length;
  }
  out += result.text.slice(at);
  assert.equal(out, input, "removing the inserted text must give back the input");
  assert.equal(applyInsertions(input, result.insertions), result.text);
}

/** Lines of `after` minus lines of `before`, as a multiset difference in order. */
function addedLines(before: string, after: string): string[] {
  const a = before.split("\n");
  const b = after.split("\n");
  const added: string[] = [];
  let i = 0;
  for (const line of b) {
    if (i < a.length && a[i] === line) i++;
    else added.push(line);
  }
  assert.equal(i, a.length, "every input line is still present, in order");
  return added;
}

function assertGolden(inputName: string, goldenName: string, expectShape?: "grants" | "acls") {
  const input = read(inputName);
  const golden = read(goldenName);
  const result = mergeTailnetPolicy(input, { tag: TAG });
  assert.equal(result.text, golden);
  assert.equal(result.changed, true);
  if (expectShape) assert.equal(result.shape, expectShape);
  assertInsertOnly(input, result);
  const again = mergeTailnetPolicy(result.text, { tag: TAG });
  assert.equal(again.changed, false);
  assert.equal(again.text, result.text, "idempotent");
  assert.deepEqual(again.insertions, []);
  assert.deepEqual(policyRowsPresent(result.text, TAG), {
    owner: true,
    access: true,
    shape: result.shape,
  });
  return result;
}

Deno.test("grants policy with comments: exactly two lines are inserted", () => {
  const input = read("grants.input.hujson");
  const result = assertGolden("grants.input.hujson", "grants.golden.hujson", "grants");
  assert.deepEqual(addedLines(input, result.text), [
    `    "${TAG}": ["autogroup:admin"],`,
    `    {"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]},`,
  ]);
  assert.deepEqual(result.insertedLines, [
    `"${TAG}": ["autogroup:admin"],`,
    `{"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]},`,
  ]);
});

Deno.test("tag already owned, no access row: only the grant line is inserted", () => {
  const input = read("owned.input.hujson");
  assert.deepEqual(policyRowsPresent(input, TAG), { owner: true, access: false, shape: "grants" });
  const result = mergeTailnetPolicy(input, { tag: TAG });
  assert.equal(result.text, read("grants.golden.hujson"));
  assertInsertOnly(input, result);
  assert.deepEqual(addedLines(input, result.text), [
    `    {"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]},`,
  ]);
});

Deno.test("CRLF policy: inserted lines use CRLF and nothing else changes", () => {
  const input = read("grants.input.hujson").replaceAll("\n", "\r\n");
  const golden = read("grants.golden.hujson").replaceAll("\n", "\r\n");
  const result = mergeTailnetPolicy(input, { tag: TAG });
  assert.equal(result.text, golden);
  assertInsertOnly(input, result);
  assert.equal(result.text.replaceAll("\r\n", "").includes("\n"), false, "no bare LF");
  assert.equal(mergeTailnetPolicy(result.text, { tag: TAG }).changed, false);
});

Deno.test("owned CRLF policy: one CRLF line inserted", () => {
  const input = read("owned.input.hujson").replaceAll("\n", "\r\n");
  const result = mergeTailnetPolicy(input, { tag: TAG });
  assert.equal(result.text, read("grants.golden.hujson").replaceAll("\n", "\r\n"));
});

Deno.test("legacy acls without trailing commas: comma added, row appended", () => {
  assertGolden("acls.input.hujson", "acls.golden.hujson", "acls");
});

Deno.test("no sections: tagOwners and acls added before the root's closing comment", () => {
  assertGolden("root_sections.input.hujson", "root_sections.golden.hujson", "acls");
});

Deno.test("'// my policy' with inline tagOwners and trailing commas", () => {
  assertGolden("my_policy.input.hujson", "my_policy.golden.hujson", "acls");
});

Deno.test("compact one-line input stays compact", () => {
  const r = assertGolden("compact.input.hujson", "compact.golden.hujson", "grants");
  assert.equal(r.text.includes("\n"), false);
  assert.equal(r.text.includes(" "), false);
});

Deno.test("{} gets tagOwners and acls, compact", () => {
  assertGolden("empty.input.hujson", "empty.golden.hujson", "acls");
});

Deno.test("CRLF, tabs and empty {} / [] sections expand with the file's style", () => {
  assertGolden("crlf_empty.input.hujson", "crlf_empty.golden.hujson", "grants");
});

Deno.test("closing bracket on the last item's line; comments around commas", () => {
  assertGolden("close_same_line.input.hujson", "close_same_line.golden.hujson", "grants");
});

Deno.test("a tag that appears only in comments does not count", () => {
  const input = read("comment_only.input.hujson");
  assert.deepEqual(policyRowsPresent(input, TAG), { owner: false, access: false, shape: "grants" });
  assertGolden("comment_only.input.hujson", "comment_only.golden.hujson", "grants");
});

Deno.test("present: returns the input unchanged (same string)", () => {
  for (
    const text of [
      read("grants.golden.hujson"),
      `{"tagOwners": {"${TAG}": []}, "acls": [{"action": "accept", "src": ["${TAG}"], "dst": ["${TAG}:*"]}]}`,
      `{"tagOwners": {"${TAG}": []}, "acls": [{"src": ["${TAG}"], "dst": ["${TAG}"]}]}`,
      // access via acls counts even when the policy also has grants
      `{"tagOwners": {"${TAG}": []}, "grants": [], "acls": [{"src": ["${TAG}"], "dst": ["${TAG}:*"]}]}`,
      // escaped spelling of the same names
      `{"tag\\u004fwners": {"tag:cbx-crew-alice-pr-4\\u0032": []}, "grants": [{"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["tcp:22"]}]}`,
    ]
  ) {
    const r = mergeTailnetPolicy(text, { tag: TAG });
    assert.equal(r.changed, false, text);
    assert.equal(r.text, text);
    assert.deepEqual(r.insertedLines, []);
  }
});

Deno.test("policyRowsPresent: upstream presence vectors", () => {
  const t = "tag:cbx-pond-yossi-e-alpha";
  const legacy =
    `{\n  "tagOwners": { "${t}": ["autogroup:admin"] },\n  "acls": [{ "action": "accept", "src": ["${t}"], "dst": ["${t}:*"] }]\n}`;
  const grants =
    `{\n  "tagOwners": { "${t}": ["autogroup:admin"] },\n  "grants": [{ "src": ["${t}"], "dst": ["${t}"], "ip": ["*"] }]\n}`;
  const yes = (s: string) => {
    const p = policyRowsPresent(s, t);
    return p.owner && p.access;
  };
  assert.equal(yes(legacy), true);
  assert.equal(yes(grants), true);
  assert.equal(yes(`// "tagOwners": {"${t}": []},\n` + grants), true);
  assert.equal(
    yes(
      `{\n  // "tagOwners": { "${t}": ["autogroup:admin"] },\n  "grants": [{ "src": ["${t}"], "dst": ["${t}"], "ip": ["*"] }]\n}`,
    ),
    false,
  );
  assert.equal(
    yes(
      `{\n  "tagOwners": {\n    "${t}": ["autogroup:admin",],\n  },\n  "grants": [\n    {\n      "src": ["${t}",],\n      "dst": ["${t}",],\n      "ip": ["*",],\n    },\n  ],\n}\n`,
    ),
    true,
  );
  assert.equal(yes(grants.replaceAll("alpha", "bravo")), false);
  assert.equal(yes(`{"acls": [{"action": "accept", "src": ["${t}"], "dst": ["${t}:*"]}]}`), false);
  assert.equal(
    yes(
      `{"tagOwners": {"${t}": []}, "acls": [{"action": "accept", "src": ["${t}"], "dst": ["tag:crabbox:*"]}]}`,
    ),
    false,
  );
  assert.equal(
    yes(
      `{"tagOwners": {"${t}": []}, "grants": [{"src": ["${t}"], "dst": ["tag:crabbox"], "ip": ["*"]}]}`,
    ),
    false,
  );
  assert.equal(
    yes(`{"tagOwners": {"${t}": []}, "grants": [{"src": ["${t}"], "dst": ["${t}"], "ip": []}]}`),
    false,
  );
  assert.equal(
    yes(`{"tagOwners": {"${t}": []}, "grants": [{"src": ["${t}"], "dst": ["${t}"]}]}`),
    false,
  );
  assert.equal(yes(`{"acls": [{"src": ["*"]}], "tagOwners": {"tag:crabbox": []}}`), false);
  // wildcards and case variants do not count
  assert.equal(
    yes(`{"tagOwners": {"${t}": []}, "grants": [{"src": ["*"], "dst": ["*"], "ip": ["*"]}]}`),
    false,
  );
  assert.equal(
    yes(`{"tagOwners": {"${t.toUpperCase().replace("TAG:", "tag:")}": []}, "grants": []}`),
    false,
  );
  assert.deepEqual(policyRowsPresent("{}", t), { owner: false, access: false, shape: "acls" });
});

Deno.test("owners option: extra owners after autogroup:admin, deduplicated", () => {
  const r = mergeTailnetPolicy(
    '{\n  "tagOwners": {\n    "tag:a": [],\n  },\n  "grants": [],\n}\n',
    {
      tag: TAG,
      owners: ["tag:minter", "autogroup:admin", "tag:minter"],
    },
  );
  assert.equal(
    r.text,
    `{\n  "tagOwners": {\n    "tag:a": [],\n    "${TAG}": ["autogroup:admin", "tag:minter"],\n  },\n  "grants": [\n    {"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]}\n  ],\n}\n`,
  );
});

Deno.test("merge appends to grants even when grants is [] and acls has rows", () => {
  const input =
    `{\n  "grants": [],\n  "acls": [\n    {"action": "accept", "src": ["*"], "dst": ["*:*"]},\n  ],\n}\n`;
  const r = mergeTailnetPolicy(input, { tag: TAG });
  assert.equal(r.shape, "grants");
  assert.equal(
    r.text,
    `{\n  "grants": [\n    {"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]}\n  ],\n  "acls": [\n    {"action": "accept", "src": ["*"], "dst": ["*:*"]},\n  ],\n  "tagOwners": {"${TAG}": ["autogroup:admin"]},\n}\n`,
  );
});

Deno.test("existing access row, missing owner: only tagOwners is added", () => {
  const input =
    `{\n  "acls": [\n    {"action": "accept", "src": ["${TAG}"], "dst": ["${TAG}:*"]}\n  ]\n}\n`;
  const r = mergeTailnetPolicy(input, { tag: TAG });
  assert.equal(
    r.text,
    `{\n  "acls": [\n    {"action": "accept", "src": ["${TAG}"], "dst": ["${TAG}:*"]}\n  ],\n  "tagOwners": {"${TAG}": ["autogroup:admin"]}\n}\n`,
  );
  assertInsertOnly(input, r);
});

Deno.test("same-line trailing comment stays with its item; new item gets the indent", () => {
  const input =
    '{\n\t"grants": [\n\t\t{"src": ["*"], "dst": ["*"], "ip": ["*"]}, // all\n\t],\n}\n';
  const r = mergeTailnetPolicy(input, { tag: TAG });
  assert.equal(
    r.text,
    `{\n\t"grants": [\n\t\t{"src": ["*"], "dst": ["*"], "ip": ["*"]}, // all\n\t\t{"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]},\n\t],\n\t"tagOwners": {"${TAG}": ["autogroup:admin"]},\n}\n`,
  );
  const noComma =
    '{\n  "grants": [\n    {"src": ["*"], "dst": ["*"], "ip": ["*"]} // all\n  ]\n}\n';
  assert.equal(
    mergeTailnetPolicy(noComma, { tag: TAG }).text,
    `{\n  "grants": [\n    {"src": ["*"], "dst": ["*"], "ip": ["*"]}, // all\n    {"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]}\n  ],\n  "tagOwners": {"${TAG}": ["autogroup:admin"]}\n}\n`,
  );
});

Deno.test("multi-line empty containers get a line before the closing bracket", () => {
  const input = '{\n  "tagOwners": {\n    // none yet\n  },\n  "grants": [//\n  ],\n}\n';
  const r = mergeTailnetPolicy(input, { tag: TAG });
  assert.equal(
    r.text,
    `{\n  "tagOwners": {\n    // none yet\n    "${TAG}": ["autogroup:admin"]\n  },\n  "grants": [//\n    {"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]}\n  ],\n}\n`,
  );
});

function assertRefused(text: string, code: string, pattern: RegExp) {
  let caught: unknown;
  try {
    mergeTailnetPolicy(text, { tag: TAG });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CrabboxError, `expected a CrabboxError for ${JSON.stringify(text)}`);
  assert.equal(caught.kind, "tailnet");
  assert.equal(caught.exitStatus, 10);
  assert.equal(caught.code, code, `${caught.code}: ${caught.message}`);
  assert.match(caught.message, /^cannot safely edit the tailnet policy: /);
  assert.match(caught.message, pattern);
  assert.ok(caught.hint?.includes(manualPolicySnippet(TAG)), "hint carries the manual snippet");
  assert.match(caught.hint ?? "", /by hand/);
  assert.equal(caught.details?.snippet, manualPolicySnippet(TAG));
  // policyRowsPresent fails the same way
  assert.throws(
    () => policyRowsPresent(text, TAG),
    (e: unknown) => e instanceof CrabboxError && e.code === code,
  );
}

Deno.test("fail closed: unparsable HuJSON", () => {
  const cases: [string, RegExp][] = [
    ["this is not json or hujson at all {{{", /not valid HuJSON: line 1, column 1/],
    ["", /empty document/],
    ["   \n", /empty document/],
    [
      '{\n  "grants": [],\n}\n// trailing comment without newline',
      /line 4, column 1: a \/\/ comment must end/,
    ],
    ["\uFEFF{}", /byte order mark/],
    ["{'a': 1}", /expected a quoted member name/],
    ['{"a": 0x1}', /expected ',' or '}'/],
    ['{"a": 01}', /leading zeros/],
    ['{"a": +1}', /expected a value/],
    ['{"a": NaN}', /expected a value/],
    ['{"a": [1,,2]}', /expected a value/],
    ['{"a": [1,],,}', /expected a quoted member name/],
    ['{"a": 1,,}', /expected a quoted member name/],
    ["[,]", /expected a value/],
    ['{"a": /* open', /unterminated \/\* comment/],
    ['{"a": "x\ty"}', /control character/],
    ['{"a": "\\x"}', /invalid escape/],
    ['{"a": "unterminated}', /unterminated string/],
    ['{"a": 1', /unterminated object/],
    ['{"a": [1', /unterminated array/],
    ['{"a": 1} {"b": 2}', /unexpected text after the root value/],
    ['{"a": 1}\v', /unexpected text/],
    ['{"a": "\ud800"}', /not valid UTF-8/],
    ['{"a": 1 # hash comment\n}', /expected ',' or '}'/],
    ["{\u00a0}", /expected a quoted member name/],
    ["[".repeat(2000) + "]".repeat(2000), /nesting deeper than 1000/],
  ];
  for (const [text, pattern] of cases) assertRefused(text, "policy_unparsable", pattern);
});

Deno.test("fail closed: root not an object", () => {
  for (const text of ["[]", '"policy"', "null", "1", "// c\n[{}]\n"]) {
    assertRefused(text, "policy_root_not_object", /root must be an object/);
  }
});

Deno.test("fail closed: duplicate keys at the root or in tagOwners", () => {
  assertRefused(
    '{"tagOwners": {}, "tagOwners": {}}',
    "policy_duplicate_key",
    /duplicate top-level policy field "tagOwners" \(line 1, column 19\)/,
  );
  assertRefused('{"groups": {}, "groups": {}}', "policy_duplicate_key", /duplicate top-level/);
  assertRefused(
    '{"tagOwners": {"tag:existing": [], "tag:existing": []}}',
    "policy_duplicate_key",
    /duplicate tagOwners entry "tag:existing"/,
  );
  assertRefused(
    '{\n\t"tagOwners": {\n\t\t"tag:\\u0061bc": [],\n\t\t"tag:abc": [],\n\t},\n}',
    "policy_duplicate_key",
    /"tag:abc" \(line 4, column 3\)/,
  );
  assertRefused(
    `{"grants": [{"src": ["${TAG}"], "src": ["*"], "dst": ["${TAG}"], "ip": ["*"]}]}`,
    "policy_duplicate_key",
    /duplicate field "src" in grants\[0\]/,
  );
});

Deno.test("fail closed: wrong section types", () => {
  assertRefused(
    '{"tagOwners": []}',
    "policy_bad_section",
    /tagOwners must be an object, not an array/,
  );
  assertRefused(
    '{"tagOwners": null}',
    "policy_bad_section",
    /tagOwners must be an object, not null/,
  );
  assertRefused(
    '{"tagOwners": {}, "grants": {}}',
    "policy_bad_section",
    /grants must be an array, not an object/,
  );
  assertRefused('{"grants": null}', "policy_bad_section", /grants must be an array, not null/);
  assertRefused(
    '{"tagOwners": {}, "acls": null}',
    "policy_bad_section",
    /acls must be an array, not null/,
  );
  assertRefused('{"acls": "accept"}', "policy_bad_section", /acls must be an array, not a string/);
});

Deno.test("fail closed: rule fields of the wrong type", () => {
  assertRefused(
    `{"grants": [{"src": "${TAG}", "dst": ["${TAG}"], "ip": ["*"]}]}`,
    "policy_bad_rule",
    /grants\[0\]\.src must be an array of strings, not a string/,
  );
  assertRefused(
    '{"grants": [{"src": ["*"], "dst": ["*"], "ip": [22]}]}',
    "policy_bad_rule",
    /grants\[0\]\.ip must hold only strings, found a number/,
  );
  assertRefused(
    '{"grants": [{}, "x"]}',
    "policy_bad_rule",
    /grants\[1\] must be an object, not a string/,
  );
  assertRefused(
    '{"acls": [{"action": 1, "src": [], "dst": []}]}',
    "policy_bad_rule",
    /acls\[0\]\.action must be a string/,
  );
  assertRefused(
    '{"acls": [{"src": ["*"], "dst": null}]}',
    "policy_bad_rule",
    /acls\[0\]\.dst must be an array of strings, not null/,
  );
  assertRefused('{"acls": [[]]}', "policy_bad_rule", /acls\[0\] must be an object, not an array/);
});

Deno.test("fail closed: section names are case-sensitive everywhere", () => {
  assertRefused(
    '{"ACLs": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}',
    "policy_section_case",
    /"ACLs" differs from "acls" only in case/,
  );
  assertRefused('{"TagOwners": {}}', "policy_section_case", /"TagOwners"/);
  assertRefused('{"Grants": []}', "policy_section_case", /"Grants"/);
  // field names inside rules are case-sensitive too: "SRC" is not "src"
  const r = mergeTailnetPolicy(
    `{"tagOwners": {"${TAG}": []}, "grants": [{"SRC": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]}]}`,
    { tag: TAG },
  );
  assert.equal(r.changed, true);
});

Deno.test("bad tag or owner is a usage error", () => {
  for (const tag of ["cbx", "tag:", "tag:1abc", "tag:a_b", "tag:a.b", "tag:a b", ""]) {
    assert.throws(
      () => mergeTailnetPolicy("{}", { tag }),
      (e: unknown) =>
        e instanceof CrabboxError && e.kind === "usage" && e.code === "bad_tailnet_tag",
    );
    assert.throws(
      () => policyRowsPresent("{}", tag),
      (e: unknown) => e instanceof CrabboxError && e.kind === "usage",
    );
  }
  assert.throws(
    () => mergeTailnetPolicy("{}", { tag: TAG, owners: ["a b"] }),
    (e: unknown) => e instanceof CrabboxError && e.code === "bad_tag_owner",
  );
  assert.throws(
    () => mergeTailnetPolicy("{}", { tag: TAG, owners: [""] }),
    (e: unknown) => e instanceof CrabboxError && e.code === "bad_tag_owner",
  );
});

Deno.test("manualPolicySnippet: grants and legacy acls text", () => {
  assert.equal(
    manualPolicySnippet(TAG),
    `// In "tagOwners":\n"${TAG}": ["autogroup:admin"],\n// In "grants" (if your policy has "grants"):\n{"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]},\n// Or in "acls" (legacy policies without "grants"):\n{"action": "accept", "src": ["${TAG}"], "dst": ["${TAG}:*"]},\n`,
  );
  assert.match(
    manualPolicySnippet(TAG, { owners: ["tag:minter"] }),
    /\["autogroup:admin", "tag:minter"\]/,
  );
  // the snippet's rows, pasted into a policy, satisfy the presence check
  const lines = manualPolicySnippet(TAG).split("\n");
  const pasted = `{\n"tagOwners": {\n${lines[1]}\n},\n"grants": [\n${lines[3]}\n],\n}\n`;
  assert.deepEqual(policyRowsPresent(pasted, TAG), { owner: true, access: true, shape: "grants" });
  const legacy = `{\n"tagOwners": {\n${lines[1]}\n},\n"acls": [\n${lines[5]}\n],\n}\n`;
  assert.deepEqual(policyRowsPresent(legacy, TAG), { owner: true, access: true, shape: "acls" });
});

/** A ~`size`-byte policy with comments, many sections, CRLF optional. */
function bigPolicy(size: number, eol = "\n"): string {
  const parts = [
    `// generated policy${eol}{${eol}  "groups": {${eol}    "group:ops": ["alice@example.com"],${eol}  },${eol}`,
    `  "tagOwners": {${eol}    "tag:existing": ["group:ops"], // note${eol}    // closing${eol}  },${eol}  "grants": [${eol}`,
  ];
  let n = parts[0].length + parts[1].length;
  for (let i = 0; n < size * 0.8; i++) {
    const row = `    {"src": ["group:g${i}", "tag:t${
      i % 97
    }"], "dst": ["tag:existing"], "ip": ["tcp:${i % 65535}"]}, /* r${i} */ // row ${i}${eol}`;
    parts.push(row);
    n += row.length;
  }
  parts.push(`    // closing note${eol}  ],${eol}  "tests": [${eol}`);
  for (let i = 0; n < size; i++) {
    const row = `    {"src": "user${i}@example.com", "accept": ["tag:existing:${
      i % 1000
    }"]},${eol}`;
    parts.push(row);
    n += row.length;
  }
  parts.push(`  ],${eol}}${eol}`);
  return parts.join("");
}

Deno.test("1 MiB policy: merged without truncation, insert-only, idempotent", () => {
  for (const eol of ["\n", "\r\n"]) {
    const input = bigPolicy(1 << 20, eol);
    assert.ok(input.length >= 1 << 20);
    const t0 = performance.now();
    const r = mergeTailnetPolicy(input, { tag: TAG });
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `took ${ms} ms`);
    assert.equal(r.text.length, input.length + r.insertions.reduce((s, i) => s + i.text.length, 0));
    assertInsertOnly(input, r);
    assert.deepEqual(r.insertedLines, [
      `"${TAG}": ["autogroup:admin"],`,
      `{"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]},`,
    ]);
    assert.ok(r.text.endsWith(`  ],${eol}}${eol}`));
    const again = mergeTailnetPolicy(r.text, { tag: TAG });
    assert.equal(again.changed, false);
    assert.equal(again.text, r.text);
  }
});

Deno.test("1 MiB policy with the rows at the very end is detected as present", () => {
  const input = bigPolicy(1 << 20).replace(
    "    // closing note\n",
    `    {"src": ["${TAG}"], "dst": ["${TAG}"], "ip": ["*"]},\n    // closing note\n`,
  ).replace(
    '    "tag:existing": ["group:ops"], // note\n',
    `    "tag:existing": ["group:ops"], // note\n    "${TAG}": [],\n`,
  );
  assert.deepEqual(policyRowsPresent(input, TAG), { owner: true, access: true, shape: "grants" });
  assert.equal(mergeTailnetPolicy(input, { tag: TAG }).text, input);
});
