import assert from "node:assert/strict";
import type { Lease } from "../../lib/lease/claims.ts";
import {
  memberTransport,
  providerPlanes,
  reachabilityMatrix,
  sshEndpoint,
} from "../../lib/lease/transport.ts";
import type { Feature } from "../../providers/types.ts";

function lease(extra: Partial<Lease> = {}): Lease {
  return {
    id: "cbx-000000000001",
    provider: "p",
    providerId: "p-1",
    slug: "api",
    role: "api",
    owner: "tester",
    labels: {},
    expose: [],
    tailscale: false,
    createdAt: "2026-01-01T00:00:00.000Z",
    state: "active",
    ...extra,
  };
}

const ssh = { host: "10.0.0.5", port: 2222, user: "root" };
const both = new Set<Feature>(["ssh", "tailscale"]);

Deno.test("memberTransport: tailnet only once the box has a tailnet address", () => {
  assert.equal(memberTransport(lease({ tailscale: true }), both), "pending");
  assert.equal(
    memberTransport(
      lease({ tailscale: true, tailnet: { ipv4: "100.64.0.7" } as Lease["tailnet"] }),
      both,
    ),
    "tailnet",
  );
  assert.equal(memberTransport(lease({ ssh }), both), "ssh");
  assert.equal(memberTransport(lease(), both), "pending");
  assert.equal(
    memberTransport(lease({ tailscale: true }), new Set<Feature>(["tailscale"])),
    "pending",
  );
  assert.equal(memberTransport(lease(), new Set<Feature>(["tailscale"])), "none");
});

Deno.test("reachabilityMatrix: pending and none are unreachable; tailnet pairs are direct", () => {
  const cells = reachabilityMatrix([
    { slug: "a", transport: "tailnet" },
    { slug: "b", transport: "tailnet" },
    { slug: "c", transport: "ssh" },
    { slug: "d", transport: "pending" },
  ]);
  const verdict = (from: string, to: string) =>
    cells.find((c) => c.from === from && c.to === to)?.verdict;
  assert.equal(cells.length, 12);
  assert.equal(verdict("a", "b"), "ok");
  assert.equal(verdict("a", "c"), "via-operator");
  assert.equal(verdict("c", "a"), "via-operator");
  assert.equal(verdict("a", "d"), "no");
  assert.equal(verdict("d", "a"), "no");
  assert.deepEqual(providerPlanes(both), ["ssh", "ssh-peer", "tailnet"]);
  assert.equal(sshEndpoint(lease({ ssh })), "ssh://10.0.0.5:2222");
  assert.equal(sshEndpoint(lease({ ssh: { ...ssh, host: "fd00::5" } })), "ssh://[fd00::5]:2222");
  assert.equal(sshEndpoint(lease()), undefined);
});
