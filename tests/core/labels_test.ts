import assert from "node:assert/strict";
import {
  decodeLabels,
  encodeLabels,
  isValidLabelKey,
  isValidLabelValue,
} from "../../lib/core/labels.ts";

Deno.test("reserved labels encode with valid keys and values everywhere", () => {
  const labels = encodeLabels({
    leaseId: "cbx-0123456789ab",
    crew: "pr-42",
    slug: "worker-2",
    expose: [8080, 5432],
    owner: "xyuoqa6",
    tailscale: true,
  });
  assert.deepEqual(labels, {
    crabbox: "true",
    "crabbox-lease": "cbx-0123456789ab",
    crew: "pr-42",
    slug: "worker-2",
    role: "worker",
    "crabbox-expose": "5432-8080",
    "crabbox-owner": "xyuoqa6",
    "crabbox-tailscale": "true",
  });
  for (const [k, v] of Object.entries(labels)) {
    assert.ok(isValidLabelKey(k), k);
    assert.ok(isValidLabelValue(v), v);
  }
});

Deno.test("labels round-trip; empty facts are omitted", () => {
  const facts = { leaseId: "cbx-aaaaaaaaaaaa", slug: "db", expose: [] as number[] };
  const labels = encodeLabels(facts);
  assert.equal("crew" in labels, false);
  assert.equal("crabbox-expose" in labels, false);
  const back = decodeLabels(labels)!;
  assert.equal(back.leaseId, "cbx-aaaaaaaaaaaa");
  assert.equal(back.slug, "db");
  assert.equal(back.crew, undefined);
  assert.deepEqual(back.expose, []);
});

Deno.test("decodeLabels refuses non-crabbox resources and normalizes", () => {
  assert.equal(decodeLabels({ crew: "x" }), undefined);
  assert.equal(decodeLabels({ crabbox: "true", "crabbox-lease": "nope" }), undefined);
  const d = decodeLabels({
    crabbox: "true",
    "crabbox-lease": "cbx-0123456789ab",
    crew: "PR_42",
    slug: "API",
    "crabbox-expose": "80-junk",
  })!;
  assert.equal(d.crew, "pr-42");
  assert.equal(d.slug, "api");
  assert.deepEqual(d.expose, [80]);
});

Deno.test("label value validation matches the cross-provider charset", () => {
  assert.ok(isValidLabelValue(""));
  assert.ok(isValidLabelValue("a"));
  assert.ok(!isValidLabelValue("-a"));
  assert.ok(!isValidLabelValue("a-"));
  assert.ok(!isValidLabelValue("A"));
  assert.ok(!isValidLabelValue("a".repeat(64)));
  assert.ok(!isValidLabelKey("1abc"));
});

Deno.test('decodeLabels: crabbox-tailscale reads true only for "true"; a missing slug is the lease id', () => {
  const base = { crabbox: "true", "crabbox-lease": "cbx-0123456789ab", slug: "api" };
  assert.equal(decodeLabels({ ...base, "crabbox-tailscale": "true" })?.tailscale, true);
  for (const v of ["false", "", "yes", "TRUE"]) {
    assert.equal(decodeLabels({ ...base, "crabbox-tailscale": v })?.tailscale, false, v);
  }
  assert.equal(decodeLabels(base)?.tailscale, false);
  const { slug: _slug, ...noSlug } = base;
  assert.equal(decodeLabels(noSlug)?.slug, "cbx-0123456789ab");
  assert.equal(decodeLabels({ ...base, slug: "" })?.slug, "cbx-0123456789ab");
  assert.equal(decodeLabels({ ...base, slug: "--" })?.slug, "cbx-0123456789ab");
});

Deno.test("tailnet IPv4 label: dots become dashes and back; junk is ignored", async () => {
  const { tailnetIpv4Label, tailnetIpv4FromLabel, decodeLabels, isValidLabelValue } = await import(
    "../../lib/core/labels.ts"
  );
  assert.equal(tailnetIpv4Label("100.64.0.7"), "100-64-0-7");
  assert.ok(isValidLabelValue(tailnetIpv4Label("100.64.0.7")!));
  assert.equal(tailnetIpv4Label("100.64.0.256"), undefined);
  assert.equal(tailnetIpv4Label("fd7a::1"), undefined);
  assert.equal(tailnetIpv4FromLabel("100-64-0-7"), "100.64.0.7");
  for (const junk of ["", "100-64-0", "a-b-c-d", "100-64-0-7-8", "300-1-1-1"]) {
    assert.equal(tailnetIpv4FromLabel(junk), undefined, junk);
  }
  assert.equal(
    decodeLabels({
      crabbox: "true",
      "crabbox-lease": "cbx-0123456789ab",
      slug: "api",
      "crabbox-tailnet-ipv4": "100-64-0-7",
    })?.tailnetIpv4,
    "100.64.0.7",
  );
});
