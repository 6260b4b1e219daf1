import assert from "node:assert/strict";
import { encodeLabels } from "../../lib/core/labels.ts";
import { type Lease, saveClaim } from "../../lib/lease/claims.ts";
import { listLeases } from "../../lib/lease/leases.ts";
import type { ProviderLease } from "../../providers/types.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

function claim(id: string, slug: string, state: Lease["state"]): Lease {
  return {
    id,
    provider: "cloudy",
    providerId: `srv-${id}`,
    crew: "t1",
    slug,
    role: slug,
    owner: "tester",
    labels: encodeLabels({ leaseId: id, crew: "t1", slug, expose: [] }),
    expose: [],
    tailscale: false,
    createdAt: "2026-01-01T00:00:00.000Z",
    state,
  };
}

function box(c: Lease, state: ProviderLease["state"]): ProviderLease {
  return { providerId: c.providerId, leaseId: c.id, labels: c.labels, state };
}

Deno.test("listLeases: the provider's state wins; failed claims and stopped boxes are hidden", async () => {
  const home = await Deno.makeTempDir();
  try {
    const provider = memoryProvider("cloudy");
    const running = claim("cbx-000000000001", "api", "active");
    const stopped = claim("cbx-000000000002", "db", "active");
    const failed = claim("cbx-000000000003", "web", "failed");
    const creating = claim("cbx-000000000004", "gpu", "creating");
    for (const c of [running, stopped, failed, creating]) await saveClaim(home, c);
    provider.boxes.set(running.providerId, box(running, "running"));
    provider.boxes.set(stopped.providerId, box(stopped, "stopped"));
    // A box crabbox has no claim for (another machine's lease) is listed from its labels.
    const foreign = claim("cbx-000000000005", "ops", "active");
    provider.boxes.set(foreign.providerId, box(foreign, "running"));
    const leases = await listLeases({ crew: "t1" }, {
      home,
      env: () => undefined,
      providers: { cloudy: provider },
    });
    assert.deepEqual(
      leases.map((l) => [l.slug, l.state]).toSorted(),
      [["api", "active"], ["gpu", "creating"], ["ops", "active"]],
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
