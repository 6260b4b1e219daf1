import assert from "node:assert/strict";
import {
  describeLifetime,
  expiryOf,
  latestLifetime,
  lifetimeLabels,
  readLifetime,
  touchedLifetime,
  withLifetime,
} from "../../lib/core/lifetime.ts";
import {
  decodeLabels,
  encodeLabels,
  isValidLabelKey,
  isValidLabelValue,
} from "../../lib/core/labels.ts";

const NOW = 1_767_225_600; // 2026-01-01T00:00:00Z

Deno.test("lifetime labels: unix seconds as plain digits, valid keys and values everywhere", () => {
  const labels = encodeLabels({
    leaseId: "cbx-0123456789ab",
    slug: "api",
    lifetime: { expiresAt: NOW + 5400, idleTimeout: 1800, touchedAt: NOW },
  });
  assert.equal(labels["crabbox-expires"], String(NOW + 5400));
  assert.equal(labels["crabbox-idle"], "1800");
  assert.equal(labels["crabbox-touched"], String(NOW));
  for (const [k, v] of Object.entries(labels)) {
    assert.ok(isValidLabelKey(k), k);
    assert.ok(isValidLabelValue(v), v);
  }
  assert.deepEqual(decodeLabels(labels)?.lifetime, {
    expiresAt: NOW + 5400,
    idleTimeout: 1800,
    touchedAt: NOW,
  });
});

Deno.test("lifetime labels: none and 0 are left out; junk reads as none", () => {
  assert.deepEqual(lifetimeLabels({}), {});
  assert.deepEqual(lifetimeLabels({ expiresAt: 0, idleTimeout: -5, touchedAt: 1.5 }), {});
  assert.deepEqual(
    readLifetime({
      "crabbox-expires": "soon",
      "crabbox-idle": "-30",
      "crabbox-touched": "0",
    }),
    {},
  );
  assert.deepEqual(readLifetime({ "crabbox-expires": "1234567890123" }), {}); // 13 digits
  assert.deepEqual(readLifetime(undefined), {});
});

Deno.test("expiryOf: the earlier of TTL and idle deadline decides", () => {
  assert.deepEqual(expiryOf({}, NOW), { deadline: undefined, reason: undefined, expired: false });
  assert.deepEqual(expiryOf({ expiresAt: NOW + 10 }, NOW), {
    deadline: NOW + 10,
    reason: "ttl",
    expired: false,
  });
  assert.equal(expiryOf({ expiresAt: NOW }, NOW).expired, true);
  assert.deepEqual(expiryOf({ expiresAt: NOW + 1000, idleTimeout: 60, touchedAt: NOW - 61 }, NOW), {
    deadline: NOW - 1,
    reason: "idle",
    expired: true,
  });
  // Never touched: the idle clock starts at creation.
  assert.equal(expiryOf({ idleTimeout: 60 }, NOW, NOW - 30).expired, false);
  assert.equal(expiryOf({ idleTimeout: 60 }, NOW, NOW - 60).expired, true);
  // No idle start known: no idle deadline.
  assert.equal(expiryOf({ idleTimeout: 60 }, NOW).expired, false);
});

Deno.test("describeLifetime: what list and status show", () => {
  assert.equal(describeLifetime({}, NOW), "-");
  assert.equal(describeLifetime({ expiresAt: NOW + 42 * 60 }, NOW), "expires in 42m");
  assert.equal(
    describeLifetime({ expiresAt: NOW + 3600, idleTimeout: 600, touchedAt: NOW - 60 }, NOW),
    "idle in 9m",
  );
  assert.equal(describeLifetime({ expiresAt: NOW - 180 }, NOW), "expired 3m ago (ttl)");
});

Deno.test("touchedLifetime: last-touched now; a TTL moves the expiry, 0 removes it", () => {
  const l = { expiresAt: NOW + 10, idleTimeout: 60, touchedAt: NOW - 100 };
  assert.deepEqual(touchedLifetime(l, NOW), {
    expiresAt: NOW + 10,
    idleTimeout: 60,
    touchedAt: NOW,
  });
  assert.deepEqual(touchedLifetime(l, NOW, 7200), {
    expiresAt: NOW + 7200,
    idleTimeout: 60,
    touchedAt: NOW,
  });
  assert.deepEqual(touchedLifetime(l, NOW, 0), { idleTimeout: 60, touchedAt: NOW });
});

Deno.test("withLifetime and latestLifetime keep other labels; the later touch wins", () => {
  const claim = { slug: "a", "crabbox-touched": "5", "crabbox-expires": "100" };
  assert.deepEqual(withLifetime(claim, { touchedAt: 9 }), { slug: "a", "crabbox-touched": "9" });
  assert.deepEqual(latestLifetime(claim, { "crabbox-touched": "9", "crabbox-expires": "200" }), {
    slug: "a",
    "crabbox-touched": "9",
    "crabbox-expires": "200",
  });
  assert.deepEqual(latestLifetime(claim, { "crabbox-touched": "4" }), claim);
  assert.deepEqual(latestLifetime(claim, undefined), claim);
});
