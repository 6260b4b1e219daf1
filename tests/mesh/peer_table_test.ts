import assert from "node:assert/strict";
import { CrabboxError } from "../../lib/core/errors.ts";
import type { Lease } from "../../lib/lease/claims.ts";
import type { MeshForward } from "../../lib/mesh/files.ts";
import type { MeshMember } from "../../lib/mesh/forwards.ts";
import {
  assignPeerOctets,
  type PeerEntry,
  peerEnvLines,
  peerHostsLines,
  peerTable,
  procNetAddress,
  remoteForwardSpec,
} from "../../lib/mesh/peer_table.ts";

function member(name: string, id: string, ports: number[]): MeshMember {
  return { name, lease: { id, slug: name } as unknown as Lease, ports };
}

const API = member("api-1", "cbx-000000000001", [8080]);
const DB = member("db", "cbx-000000000002", [80, 5432]);
const WEB = member("web", "cbx-000000000003", [8080]);
const ALL = [API, DB, WEB];
const FW: MeshForward[] = [
  { peer: "api-1", leaseId: API.lease.id, remotePort: 8080, localPort: 51820 },
  { peer: "db", leaseId: DB.lease.id, remotePort: 80, localPort: 51821 },
  { peer: "db", leaseId: DB.lease.id, remotePort: 5432, localPort: 51822 },
  { peer: "web", leaseId: WEB.lease.id, remotePort: 8080, localPort: 51823 },
];

Deno.test("assignPeerOctets: stable, lowest free, skips .1 .53 .54 and the probe address", () => {
  const m = assignPeerOctets(new Map(), ["a", "b"]);
  assert.deepEqual([...m], [["a", 2], ["b", 3]]);
  m.delete("a");
  assignPeerOctets(m, ["b", "c", "d"]);
  assert.deepEqual([...m].sort(), [["b", 3], ["c", 2], ["d", 4]]);
  const big = assignPeerOctets(new Map(), Array.from({ length: 60 }, (_, i) => `x${i}`));
  const used = new Set(big.values());
  assert.ok(!used.has(1) && !used.has(53) && !used.has(54) && !used.has(254));
  assert.throws(
    () => assignPeerOctets(new Map(), Array.from({ length: 251 }, (_, i) => `x${i}`)),
    (e) => e instanceof CrabboxError && e.code === "too_many_peers",
  );
});

Deno.test("peerTable: every other member's ports, own address each, role alias once", () => {
  const octets = assignPeerOctets(new Map(), ALL.map((m) => m.lease.id));
  const { entries, skipped } = peerTable(WEB, ALL, FW, octets, {
    clientSpecified: true,
    root: true,
  });
  assert.deepEqual(skipped, []);
  assert.deepEqual(
    entries.map((
      e,
    ) => [e.peer, e.role, e.remotePort, e.mode, e.bindAddress, e.bindPort, e.operatorPort]),
    [
      ["api-1", "api", 8080, "address", "127.0.0.2", 8080, 51820],
      ["db", undefined, 80, "address", "127.0.0.3", 80, 51821],
      ["db", undefined, 5432, "address", "127.0.0.3", 5432, 51822],
    ],
  );
  assert.deepEqual(peerHostsLines(entries), ["127.0.0.2 api-1.cbx api.cbx", "127.0.0.3 db.cbx"]);
  assert.deepEqual(peerEnvLines(entries), [
    "export CRABBOX_CREW_API_1_8080=127.0.0.2:8080",
    "export CRABBOX_CREW_DB_80=127.0.0.3:80",
    "export CRABBOX_CREW_DB_5432=127.0.0.3:5432",
  ]);
  assert.deepEqual(entries.map(remoteForwardSpec), [
    "127.0.0.2:8080:127.0.0.1:51820",
    "127.0.0.3:80:127.0.0.1:51821",
    "127.0.0.3:5432:127.0.0.1:51822",
  ]);
});

Deno.test("peerTable: no GatewayPorts clientspecified → every port falls back to 127.0.0.1:<allocated>", () => {
  const octets = assignPeerOctets(new Map(), ALL.map((m) => m.lease.id));
  const { entries } = peerTable(API, ALL, FW, octets, { clientSpecified: false, root: true });
  assert.ok(entries.every((e) => e.mode === "fallback" && e.bindAddress === "127.0.0.1"));
  assert.ok(entries.every((e) => /GatewayPorts/.test(e.reason ?? "")));
  assert.deepEqual(entries.map(remoteForwardSpec), [
    "127.0.0.1:0:127.0.0.1:51821",
    "127.0.0.1:0:127.0.0.1:51822",
    "127.0.0.1:0:127.0.0.1:51823",
  ]);
  assert.deepEqual(peerHostsLines(entries), [], "no address of its own: no hosts line");
  assert.deepEqual(peerEnvLines(entries), [], "port not allocated yet: no env line");
  assert.deepEqual(peerEnvLines([{ ...entries[0], bindPort: 40001 }]), [
    "export CRABBOX_CREW_DB_80=127.0.0.1:40001",
  ]);
});

Deno.test("peerTable: ports below 1024 fall back when the login is not root", () => {
  const octets = assignPeerOctets(new Map(), ALL.map((m) => m.lease.id));
  const { entries } = peerTable(API, ALL, FW, octets, { clientSpecified: true, root: false });
  const byPort = Object.fromEntries(entries.map((e) => [`${e.peer}:${e.remotePort}`, e]));
  assert.equal(byPort["db:80"].mode, "fallback");
  assert.match(byPort["db:80"].reason!, /< 1024/);
  assert.equal(byPort["db:5432"].mode, "address");
  assert.deepEqual(peerHostsLines(entries), ["127.0.0.3 db.cbx", "127.0.0.4 web.cbx"]);
});

Deno.test("peerTable: names that are not DNS labels are skipped; a role equal to a name is no alias", () => {
  const odd = member("Bad_Name", "cbx-000000000009", [8080]);
  const worker = member("worker-2", "cbx-000000000004", [9000]);
  const workerRole = member("worker", "cbx-000000000005", [9001]);
  const members = [API, odd, worker, workerRole];
  const fw: MeshForward[] = [
    ...FW,
    { peer: "Bad_Name", leaseId: odd.lease.id, remotePort: 8080, localPort: 51830 },
    { peer: "worker-2", leaseId: worker.lease.id, remotePort: 9000, localPort: 51831 },
    { peer: "worker", leaseId: workerRole.lease.id, remotePort: 9001, localPort: 51832 },
  ];
  const octets = assignPeerOctets(new Map(), members.map((m) => m.lease.id));
  const { entries, skipped } = peerTable(API, members, fw, octets, {
    clientSpecified: true,
    root: true,
  });
  assert.deepEqual(skipped, [{ peer: "Bad_Name", reason: "name is not a DNS label" }]);
  assert.deepEqual(peerHostsLines(entries).map((l) => l.split(" ").slice(1).join(" ")), [
    "worker.cbx",
    "worker-2.cbx",
  ]);
});

Deno.test("peerHostsLines and remoteForwardSpec refuse what must never reach a box", () => {
  const bad: PeerEntry = {
    peer: "db",
    leaseId: "cbx-000000000002",
    remotePort: 5432,
    mode: "address",
    bindAddress: "127.0.0.1",
    bindPort: 5432,
    operatorPort: 51822,
  };
  assert.throws(() => peerHostsLines([bad]), (e) => e instanceof CrabboxError);
  assert.throws(
    () => peerHostsLines([{ ...bad, bindAddress: "127.0.0.3", peer: "db.evil\n1.2.3.4 x" }]),
    (e) => e instanceof CrabboxError && e.code === "bad_peer_name",
  );
  assert.throws(
    () => remoteForwardSpec({ ...bad, bindAddress: "0.0.0.0" }),
    (e) => e instanceof CrabboxError && e.code === "bad_peer_address",
  );
  assert.throws(() => remoteForwardSpec({ ...bad, operatorPort: 70000 }), CrabboxError);
});

Deno.test("procNetAddress: the /proc/net/tcp spelling of an IPv4 listener", () => {
  assert.equal(procNetAddress("127.0.0.2", 8080), "0200007F:1F90");
  assert.equal(procNetAddress("127.0.0.254", 22), "FE00007F:0016");
});

Deno.test("peerTable: sshd with GatewayPorts yes gets no forwards at all (every peer skipped)", () => {
  const octets = assignPeerOctets(new Map(), ALL.map((m) => m.lease.id));
  const { entries, skipped } = peerTable(API, ALL, FW, octets, {
    clientSpecified: false,
    root: true,
    wildcard: true,
  });
  assert.deepEqual(entries, []);
  assert.deepEqual(skipped.map((s) => s.peer), ["db", "web"]);
  assert.ok(skipped.every((s) => /every interface/.test(s.reason)));
});
