import assert from "node:assert/strict";
import { HuJSONSyntaxError, lineAndColumn, parseHuJSON } from "../../lib/tailnet/hujson.ts";
import {
  applyInsertions,
  detectLayout,
  planAppend,
  renderInlineJSON,
} from "../../lib/tailnet/hujson_append.ts";

Deno.test("parseHuJSON: spans, names, commas of members and elements", () => {
  const text = '{ "a" /* c */ : /* d */ [1, "x" /* e */ , ], // f\n "b\\u0021": null }';
  const doc = parseHuJSON(text);
  assert.equal(doc.kind(doc.root), "object");
  assert.equal(doc.start(doc.root), 0);
  assert.equal(doc.end(doc.root), text.length);
  const [a, b] = doc.children(doc.root);
  assert.equal(doc.name(a), "a");
  assert.equal(text.slice(doc.nameStart(a), doc.nameEnd(a)), '"a"');
  assert.equal(text.slice(doc.start(a), doc.end(a)), '[1, "x" /* e */ , ]');
  assert.equal(text[doc.comma(a)], ",");
  assert.equal(doc.comma(a), text.indexOf(", // f"));
  assert.equal(doc.name(b), "b!");
  assert.equal(doc.nameIs(b, "b!"), true);
  assert.equal(doc.nameIs(b, "b"), false);
  assert.equal(doc.kind(b), "null");
  assert.equal(doc.comma(b), -1);
  const [one, x] = doc.children(a);
  assert.equal(doc.kind(one), "number");
  assert.equal(doc.nameStart(one), -1);
  assert.equal(doc.string(x), "x");
  assert.equal(doc.comma(x), text.indexOf(", ]"));
  assert.equal(doc.lastChild(a), x);
  assert.equal(doc.nextSibling(x), -1);
  assert.equal(doc.firstChild(one), -1);
  assert.equal(doc.firstChild(-1), -1);
  assert.equal(doc.compact, false);
});

Deno.test("parseHuJSON: decoded strings compare after unescaping", () => {
  const doc = parseHuJSON('["tag:\\u0061bc", "\\ud83d\\ude02", "plain", "tab\\t", "\\/"]');
  const [abc, emoji, plain, tab, slash] = doc.children(doc.root);
  assert.equal(doc.string(abc), "tag:abc");
  assert.equal(doc.stringIs(abc, "tag:abc"), true);
  assert.equal(doc.string(emoji), "😂");
  assert.equal(doc.stringIs(plain, "plain"), true);
  assert.equal(doc.stringIs(plain, "plai"), false);
  assert.equal(doc.string(tab), "tab\t");
  assert.equal(doc.string(slash), "/");
  assert.throws(() => doc.name(abc), TypeError);
});

Deno.test("parseHuJSON: accepts the HuJSON grammar", () => {
  for (
    const text of [
      "{}",
      "[]",
      "0",
      "-0.5e+10",
      "1E-2",
      '"s"',
      "true",
      "null",
      "// lead\n/* block */ {} /* after */ // tail\n",
      '{"a":1,}',
      "[1,]",
      "[ /* only a comment */ ]",
      "[//\n]",
      '{"a" :1 , "b": [ ] , }',
      '\t\r\n{"a": "\u00e9\u4e2d\ud83d\ude02"}\r\n',
      '{"a": "/* not a comment */ // nor this"}',
      "/**/{/**/}/**/",
      "/* multi\nline */[1]",
    ]
  ) {
    assert.doesNotThrow(() => parseHuJSON(text), text);
  }
});

Deno.test("parseHuJSON: rejects what tailscale/hujson rejects, with positions", () => {
  const cases: [string, number, number, RegExp][] = [
    ["null//", 1, 5, /must end with a newline/],
    ['{\n  "a": 1,\n  bad\n}', 3, 3, /expected a quoted member name/],
    ["[1,,]", 1, 4, /expected a value/],
    ["{,}", 1, 2, /expected a quoted member name/],
    ["[1 2]", 1, 4, /expected ',' or ']'/],
    ["\uFEFF[]", 1, 1, /byte order mark/],
    ["[\f]", 1, 2, /expected a value/],
    ["[1.]", 1, 2, /digit expected after '.'/],
    ["[1e]", 1, 2, /digit expected in exponent/],
    ["[.5]", 1, 2, /expected a value/],
    ["[tru]", 1, 2, /expected a value/],
    ["[/ /]", 1, 2, /unexpected '\/'/],
    ['["\\u12"]', 1, 3, /invalid \\u escape/],
    ["[", 1, 2, /unterminated array/],
    ["{", 1, 2, /unterminated object/],
  ];
  for (const [text, line, column, pattern] of cases) {
    let err: unknown;
    try {
      parseHuJSON(text);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof HuJSONSyntaxError, text);
    assert.match(err.message, pattern, text);
    assert.deepEqual([err.line, err.column], [line, column], `${text}: ${err.message}`);
    assert.equal(err.message, `line ${line}, column ${column}: ${err.reason}`);
  }
});

Deno.test("parseHuJSON: compact flag is set only without trivia inside the root", () => {
  assert.equal(parseHuJSON('{"a":[1,{"b":null}]}').compact, true);
  assert.equal(parseHuJSON('// c\n{"a":[1]}\n').compact, true);
  assert.equal(parseHuJSON('{"a": [1]}').compact, false);
  assert.equal(parseHuJSON('{"a":[1]/**/}').compact, false);
  assert.equal(parseHuJSON("{ }").compact, false);
});

Deno.test("parseHuJSON: deep but allowed nesting and a 1 MiB string", () => {
  const deep = "[".repeat(999) + "]".repeat(999);
  assert.equal(parseHuJSON(deep).kind(0), "array");
  const big = `{"a": "${"x".repeat(1 << 20)}"}`;
  const doc = parseHuJSON(big);
  assert.equal(doc.string(doc.firstChild(doc.root)).length, 1 << 20);
});

Deno.test("lineAndColumn", () => {
  assert.deepEqual(lineAndColumn("ab\ncd", 0), { line: 1, column: 1 });
  assert.deepEqual(lineAndColumn("ab\ncd", 3), { line: 2, column: 1 });
  assert.deepEqual(lineAndColumn("ab\r\ncd", 5), { line: 2, column: 2 });
});

Deno.test("renderInlineJSON: spaced and compact", () => {
  const v = { src: ["tag:a"], n: [1, true, null], o: {} };
  assert.equal(renderInlineJSON(v, false), '{"src": ["tag:a"], "n": [1, true, null], "o": {}}');
  assert.equal(renderInlineJSON(v, true), '{"src":["tag:a"],"n":[1,true,null],"o":{}}');
  assert.equal(renderInlineJSON('a"\n', false), '"a\\"\\n"');
});

Deno.test("detectLayout: eol, unit and compactness", () => {
  assert.deepEqual(detectLayout(parseHuJSON('{\r\n    "a": 1\r\n}')), {
    eol: "\r\n",
    unit: "    ",
    compact: false,
  });
  assert.deepEqual(detectLayout(parseHuJSON('{\n\t"a": 1\n}')), {
    eol: "\n",
    unit: "\t",
    compact: false,
  });
  assert.deepEqual(detectLayout(parseHuJSON("{ }")), { eol: "\n", unit: "\t", compact: false });
  assert.deepEqual(detectLayout(parseHuJSON('{"a":1}')), { eol: "\n", unit: "\t", compact: true });
});

function append(text: string, items: { name?: string; value: unknown }[], path: string[] = []) {
  const doc = parseHuJSON(text);
  let node = doc.root;
  for (const p of path) node = doc.children(node).find((c) => doc.nameIs(c, p))!;
  // deno-lint-ignore no-explicit-any
  return applyInsertions(text, planAppend(doc, node, items as any, detectLayout(doc)));
}

Deno.test("planAppend: several items at once, trailing comma kept", () => {
  assert.equal(
    append('{\n  "a": 1,\n}\n', [{ name: "b", value: 2 }, { name: "c", value: [3] }]),
    '{\n  "a": 1,\n  "b": 2,\n  "c": [3],\n}\n',
  );
  assert.equal(
    append('{\n  "a": 1\n}\n', [{ name: "b", value: 2 }, { name: "c", value: [3] }]),
    '{\n  "a": 1,\n  "b": 2,\n  "c": [3]\n}\n',
  );
  assert.equal(append("[1, 2]", [{ value: 3 }, { value: 4 }]), "[1, 2, 3, 4]");
  assert.equal(append("[1, 2,]", [{ value: 3 }]), "[1, 2, 3,]");
  assert.equal(append("[1 /* c */ ]", [{ value: 3 }]), "[1, 3 /* c */ ]");
  assert.equal(
    append('{"x": [\n  1, 2,\n  3]}', [{ value: 4 }], ["x"]),
    '{"x": [\n  1, 2,\n  3,\n  4]}',
  );
  assert.equal(
    append('{"x": [1,\n      2, 3 // n\n]}', [{ value: 4 }], ["x"]),
    '{"x": [1,\n      2, 3, 4 // n\n]}',
  );
  assert.equal(append("[]", [{ value: 1 }, { value: 2 }]), "[1,2]");
  assert.equal(append("[ ]", [{ value: 1 }, { value: 2 }]), "[ \n\t1,\n\t2\n]");
  assert.throws(() => append("[]", [{ name: "x", value: 1 }]), TypeError);
  assert.throws(() => append("{}", [{ value: 1 }]), TypeError);
  assert.throws(() => append('"s"', [{ value: 1 }]), TypeError);
});

Deno.test("applyInsertions keeps order at the same offset and rejects bad offsets", () => {
  assert.equal(applyInsertions("ad", [{ offset: 1, text: "b" }, { offset: 1, text: "c" }]), "abcd");
  assert.equal(applyInsertions("x", [{ offset: 1, text: "!" }, { offset: 0, text: "<" }]), "<x!");
  assert.throws(() => applyInsertions("x", [{ offset: 2, text: "!" }]), RangeError);
});
