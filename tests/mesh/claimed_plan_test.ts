/**
 * `claimedPlan` (a connect's plan from this machine's claims, made before
 * any provider is asked) and `sameMembers` (whether the providers' members
 * run the same tunnels as the claimed ones).
 */

import assert from "node:assert/strict";
import { type Lease, saveClaim } from "../../lib/lease/claims.ts";
import type { MeshMember } from "../../lib/mesh/forwards.ts";
import { claimedPlan, sameMembers } from "../../lib/mesh/plan.ts";
import { testLease } from "./_lease.ts";

const KEYED = { host: "127.77.0.2", port: 22, user: "root", keyPath: "/k/id_ed25519" };

function lease(slug: string, extra: Partial<Lease> = {}): Lease {
  return testLease(slug, "local", [8080], { ssh: KEYED, ...extra });
}

function member(l: Lease, name = l.slug): MeshMember {
  return { name, lease: l, ports: [...l.expose].sort((a, b) => a - b) };
}

Deno.test("sameMembers: names, leases, ports and SSH targets decide; key order and local ports do not", () => {
  const a = lease("api");
  const b = lease("db");
  assert.ok(sameMembers([member(a), member(b)], [member(a), member(b)]));
  assert.ok(sameMembers([], []));
  // The same target written in another key order, or with an absent field spelled undefined.
  const reordered = { keyPath: "/k/id_ed25519", user: "root", port: 22, host: "127.77.0.2" };
  assert.ok(sameMembers([member(a)], [member({ ...a, ssh: reordered })]));
  assert.ok(sameMembers([member(a)], [member({ ...a, ssh: { ...a.ssh!, hostKey: undefined } })]));
  // Any difference that would change a tunnel.
  assert.ok(!sameMembers([member(a)], [member({ ...a, ssh: { ...a.ssh!, port: 2222 } })]));
  assert.ok(!sameMembers([member(a)], [member({ ...a, ssh: { ...a.ssh!, host: "127.77.0.3" } })]));
  assert.ok(!sameMembers([member(a)], [member({ ...a, ssh: undefined })]));
  assert.ok(!sameMembers([member(a)], [member({ ...a, expose: [8080, 9090] })]));
  assert.ok(!sameMembers([member(a)], [member(a, "api-2")]));
  assert.ok(!sameMembers([member(a)], [member({ ...a, id: "cbx-ffffffffffff" })]));
  assert.ok(!sameMembers([member(a), member(b)], [member(a)]));
  assert.ok(!sameMembers([member(a), member(b)], [member(b), member(a)]));
});

Deno.test("claimedPlan: the crew's active claims, or nothing when they cannot be trusted", async () => {
  const home = await Deno.makeTempDir({ prefix: "cbx-claimed-plan-" });
  try {
    const opts = { home, env: () => undefined, isPortFree: () => true };
    assert.equal(await claimedPlan("t1", opts), undefined, "no claims");
    const api = lease("api");
    const db = lease("db", { expose: [5432] });
    await Promise.all([
      saveClaim(home, api),
      saveClaim(home, db),
      saveClaim(home, lease("going", { state: "releasing" })),
      saveClaim(home, lease("making", { state: "creating" })),
      saveClaim(home, lease("other", { crew: "t2" })),
      saveClaim(home, lease("elsewhere", { provider: "hetzner" })),
    ]);
    const plan = await claimedPlan("t1", { ...opts, provider: "local" });
    assert.ok(plan);
    assert.equal(plan.crew, "t1");
    assert.deepEqual(plan.members.map((m) => [m.name, m.lease.id]), [
      ["api", api.id],
      ["db", db.id],
    ]);
    assert.deepEqual(plan.forwards.map((f) => [f.peer, f.remotePort, f.localPort]), [
      ["api", 8080, 51820],
      ["db", 5432, 51821],
    ]);
    const all = await claimedPlan("t1", opts);
    assert.deepEqual(all?.members.map((m) => m.name), ["api", "db", "elsewhere"]);
    assert.equal(await claimedPlan("t1", { ...opts, members: [api] }), undefined, "members given");
    assert.equal(await claimedPlan("t3", opts), undefined, "a crew without claims");
    // A claimed target that expired needs its provider to renew it: nothing starts from claims.
    await saveClaim(
      home,
      lease("tok", { ssh: { ...api.ssh!, expiresAt: "2000-01-01T00:00:00Z" } }),
    );
    assert.equal(await claimedPlan("t1", opts), undefined, "an expired target");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
