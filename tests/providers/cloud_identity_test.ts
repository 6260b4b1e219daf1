import assert from "node:assert/strict";
import {
  hasLabels,
  identityOf,
  labelsFromEnv,
  labelsToEnv,
  leaseResourceName,
  parseLeaseResourceName,
  selectorLabels,
} from "../../providers/cloud/mod.ts";

const labels = {
  crabbox: "true",
  "crabbox-lease": "cbx-0123456789ab",
  crew: "pr-42",
  slug: "api-2",
  role: "api",
  "crabbox-expose": "80-8080",
};

Deno.test("lease identity: name and env round-trip", () => {
  const name = leaseResourceName({ slug: "api-2", leaseId: "cbx-0123456789ab" });
  assert.equal(name, "crabbox-api-2-0123456789ab");
  assert.deepEqual(parseLeaseResourceName(name), { slug: "api-2", leaseId: "cbx-0123456789ab" });
  assert.deepEqual(
    identityOf(name, { ...labelsToEnv(labels), PUBLIC_KEY: "ssh-ed25519 AAAA x" }),
    labels,
  );
});

Deno.test("lease identity: strict parse rejects near misses", () => {
  const env = labelsToEnv(labels);
  assert.equal(parseLeaseResourceName("crabbox-api-0123456789AB"), undefined);
  assert.equal(parseLeaseResourceName("crabbox--0123456789ab"), undefined);
  assert.equal(parseLeaseResourceName("xcrabbox-api-0123456789ab"), undefined);
  assert.equal(parseLeaseResourceName(`crabbox-${"a".repeat(42)}-0123456789ab`), undefined);
  assert.equal(identityOf("crabbox-api-2-ffffffffffff", env), undefined, "lease id disagrees");
  assert.equal(identityOf("crabbox-db-0123456789ab", env), undefined, "slug disagrees");
  assert.equal(labelsFromEnv({ ...env, CRABBOX_LABEL_CREW: "PR 42" }), undefined, "invalid value");
  assert.equal(labelsFromEnv({ ...env, CRABBOX_LABEL_CRABBOX: "false" }), undefined, "not crabbox");
  assert.equal(
    labelsFromEnv({ ...env, CRABBOX_LABEL_CRABBOX_LEASE: "cbx_0123456789ab" }),
    undefined,
  );
  assert.equal(labelsFromEnv({ ...env, CRABBOX_LABEL_9X: "y" }), undefined, "invalid key");
});

Deno.test("selector labels: crew and owner, validated; hasLabels matches all", () => {
  const want = selectorLabels({ crew: "pr-42", owner: "alice" });
  assert.deepEqual(want, { crew: "pr-42", "crabbox-owner": "alice" });
  assert.ok(hasLabels({ ...labels, crew: "pr-42", "crabbox-owner": "alice" }, want));
  assert.ok(!hasLabels({ ...labels, crew: "pr-42", "crabbox-owner": "bob" }, want));
  assert.throws(() => selectorLabels({ owner: "Not Valid" }), /not a valid label value/);
});
