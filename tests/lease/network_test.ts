/** --network auto|tailscale|public: local tailnet view (fake tailscale), route choice, the ssh argv. */

import assert from "node:assert/strict";
import { CrabboxError } from "../../lib/core/errors.ts";
import type { Lease } from "../../lib/lease/claims.ts";
import {
  localTailnetView,
  parseLocalTailnetStatus,
  parseNetworkMode,
  pickRoute,
  routeLease,
} from "../../lib/lease/network.ts";
import { fakeProcess } from "../fakes/process.ts";

const member: Lease = {
  id: "cbx-0123456789ab",
  provider: "aws",
  providerId: "i-1",
  crew: "pr-42",
  slug: "api",
  role: "api",
  owner: "alice",
  labels: {},
  expose: [8080],
  ssh: { host: "203.0.113.7", port: 22, user: "root" },
  tailscale: true,
  tailnet: { ipv4: "100.64.0.7", nodeId: "n1" },
  createdAt: "2026-01-01T00:00:00Z",
  state: "active",
};

function status(peers: Record<string, { ips: string[]; online: boolean }>, state = "Running") {
  return JSON.stringify({
    BackendState: state,
    Self: { TailscaleIPs: ["100.64.0.1"] },
    Peer: Object.fromEntries(
      Object.entries(peers).map(([k, p]) => [k, { TailscaleIPs: p.ips, Online: p.online }]),
    ),
  });
}

Deno.test("parseNetworkMode: the three modes; anything else is a usage error", () => {
  assert.equal(parseNetworkMode("auto"), "auto");
  assert.equal(parseNetworkMode("Tailscale"), "tailscale");
  assert.equal(parseNetworkMode("public"), "public");
  assert.throws(
    () => parseNetworkMode("vpn"),
    (e) => e instanceof CrabboxError && e.exitStatus === 2,
  );
});

Deno.test("parseLocalTailnetStatus: online peers' addresses; not Running or junk → not running", () => {
  const v = parseLocalTailnetStatus(status({
    a: { ips: ["100.64.0.7", "fd7a::7"], online: true },
    b: { ips: ["100.64.0.8"], online: false },
  }));
  assert.equal(v.running, true);
  assert.deepEqual([...v.online], ["100.64.0.7", "fd7a::7"]);
  assert.deepEqual(parseLocalTailnetStatus(status({}, "NeedsLogin")), {
    running: false,
    online: new Set(),
    reason: "tailscale here is NeedsLogin",
  });
  assert.equal(parseLocalTailnetStatus("{").running, false);
});

Deno.test("pickRoute: auto prefers the tailnet only when the peer is seen online; tailscale insists; public never looks", () => {
  const up = { running: true, online: new Set(["100.64.0.7"]) };
  const peerOff = { running: true, online: new Set<string>() };
  const down = {
    running: false,
    online: new Set<string>(),
    reason: "tailscale is not installed on this machine",
  };
  assert.deepEqual(pickRoute(member, "auto", up), { host: "100.64.0.7", via: "tailnet" });
  assert.deepEqual(pickRoute(member, "auto", peerOff), { host: "203.0.113.7", via: "public" });
  assert.deepEqual(pickRoute(member, "auto", down), { host: "203.0.113.7", via: "public" });
  assert.deepEqual(pickRoute(member, "public", up), { host: "203.0.113.7", via: "public" });
  assert.deepEqual(pickRoute(member, "tailscale", up), { host: "100.64.0.7", via: "tailnet" });
  const cases: [Lease, typeof up, RegExp][] = [
    [
      member,
      down,
      /this machine is not on the tailnet \(tailscale is not installed on this machine\)/,
    ],
    [member, peerOff, /\(100\.64\.0\.7\) is not online in this machine's tailnet view/],
    [{ ...member, tailnet: undefined }, up, /has no recorded tailnet address yet \(pending\)/],
    [{ ...member, tailscale: false }, up, /is not a tailnet member/],
  ];
  for (const [lease, view, re] of cases) {
    assert.throws(
      () => pickRoute(lease, "tailscale", view),
      (e) => e instanceof CrabboxError && e.exitStatus === 5 && re.test(e.message),
      String(re),
    );
  }
});

Deno.test("routeLease: asks the local tailscale (through the runner) only when it matters", async () => {
  const proc = fakeProcess({
    tailscale: (call) => {
      assert.deepEqual(call.args, ["status", "--json"]);
      return { stdout: status({ a: { ips: ["100.64.0.7"], online: true } }) };
    },
  });
  const routed = await routeLease(member, "auto", proc);
  assert.equal(routed.ssh?.host, "100.64.0.7");
  assert.equal(routed.ssh?.port, 22);
  assert.equal(proc.calls.length, 1);
  assert.equal((await routeLease(member, "public", proc)).ssh?.host, "203.0.113.7");
  assert.equal(
    (await routeLease({ ...member, tailscale: false }, "auto", proc)).ssh?.host,
    "203.0.113.7",
  );
  assert.equal(proc.calls.length, 1, "public and non-tailnet leases never run tailscale");
  // No tailscale on this machine: auto falls back, tailscale says why.
  const none = fakeProcess({});
  assert.equal((await routeLease(member, "auto", none)).ssh?.host, "203.0.113.7");
  await assert.rejects(
    routeLease(member, "tailscale", none),
    /this machine is not on the tailnet \(tailscale is not installed on this machine\)/,
  );
  // Logged out: exit 1 with JSON on stdout.
  const out = fakeProcess({ tailscale: () => ({ code: 1, stdout: status({}, "NeedsLogin") }) });
  assert.deepEqual(await localTailnetView(out), {
    running: false,
    online: new Set(),
    reason: "tailscale here is NeedsLogin",
  });
});
