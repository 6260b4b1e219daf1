import assert from "node:assert/strict";
import { CrabboxError } from "../../lib/core/errors.ts";
import {
  allocateForwards,
  disambiguateNames,
  forwardAddress,
  isLoopbackPortFree,
  memberSshArgs,
  nextFreePort,
  selectMembers,
  shortLeaseId,
} from "../../lib/mesh/forwards.ts";
import { crewPeers } from "../../lib/mesh/peers.ts";
import { describeCrew } from "../../lib/mesh/describe.ts";
import { planCrew } from "../../lib/mesh/plan.ts";
import { connectLocal, lastLogReason, probeForward } from "../../lib/mesh/probe.ts";
import { fakeHostKey } from "../ssh/_host_key.ts";
import { testLease } from "./_lease.ts";

Deno.test("disambiguateNames: the collision vector", () => {
  const names = disambiguateNames([
    { slug: "web", provider: "aws", id: "cbx-000000000001" },
    { slug: "web", provider: "gcp", id: "cbx-000000000002" },
    { slug: "web-aws", provider: "hetzner", id: "cbx-000000000003" },
    { slug: "api-a", provider: "runpod", id: "cbx-000000000004" },
    { slug: "api_a", provider: "proxmox", id: "cbx-000000000005" },
  ]);
  assert.deepEqual(names, [
    "web-aws",
    "web-gcp",
    "web-aws-hetzner",
    "api-a-runpod",
    "api-a-proxmox",
  ]);
});

Deno.test("disambiguateNames: unique slugs stay; same provider falls back to the short lease id", () => {
  assert.deepEqual(
    disambiguateNames([
      { slug: "api", provider: "local", id: "cbx-00000000aaaa" },
      { slug: "db", provider: "local", id: "cbx-00000000bbbb" },
    ]),
    ["api", "db"],
  );
  assert.deepEqual(
    disambiguateNames([
      { slug: "web", provider: "local", id: "cbx-0000001aaaaa" },
      { slug: "web", provider: "local", id: "cbx-0000002bbbbb" },
    ]),
    ["web-local", "web-local-2bbbbb"],
  );
  assert.equal(shortLeaseId("cbx-3f9a0c1b7d2e"), "1b7d2e");
});

Deno.test("selectMembers: ssh feature only, portless kept, name order, ports ascending", () => {
  const a = testLease("web", "local", [9090, 8080]);
  const b = testLease("api", "local", []);
  const c = testLease("gpu", "tailnet-only", [80]);
  const d = testLease("db", "local", [5432], { ssh: undefined });
  const e = testLease("cache", "local", [], { ssh: undefined }); // port-less, no endpoint yet: listed
  const { members, skipped } = selectMembers([a, b, c, d, e], (p) => p === "local");
  assert.deepEqual(members.map((m) => [m.name, m.ports]), [
    ["api", []],
    ["cache", []],
    ["web", [8080, 9090]],
  ]);
  assert.deepEqual(skipped.map((s) => s.lease.slug), ["gpu", "db"]);
  assert.match(skipped[0].reason, /no SSH-mesh/);
  assert.match(skipped[1].reason, /no SSH endpoint/);
});

Deno.test("allocateForwards: members in name order, ports ascending, bound ports skipped", () => {
  const web = testLease("web", "local", [8080, 9090]);
  const api = testLease("api", "local", [8080]);
  const { members } = selectMembers([web, api], () => true);
  const busy = new Set([51821]);
  const fw = allocateForwards(members, (p) => !busy.has(p));
  assert.deepEqual(fw, [
    { peer: "api", leaseId: api.id, remotePort: 8080, localPort: 51820 },
    { peer: "web", leaseId: web.id, remotePort: 8080, localPort: 51822 },
    { peer: "web", leaseId: web.id, remotePort: 9090, localPort: 51823 },
  ]);
  assert.equal(forwardAddress(fw, "web", 9090), "127.0.0.1:51823");
  assert.throws(
    () => forwardAddress(fw, "web", 1),
    (e) => e instanceof CrabboxError && e.kind === "notFound",
  );
});

Deno.test("allocateForwards: a port really bound on 127.0.0.1 is skipped (probe by binding)", () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  try {
    assert.equal(isLoopbackPortFree(port), false);
    const { members } = selectMembers([testLease("api", "local", [8080])], () => true);
    const fw = allocateForwards(members, isLoopbackPortFree, { first: port, last: port + 50 });
    assert.notEqual(fw[0].localPort, port);
    assert.ok(fw[0].localPort > port);
  } finally {
    l.close();
  }
  assert.equal(isLoopbackPortFree(port), true);
});

Deno.test("ports exhausted: its own error kind, exit status and message", () => {
  const { members } = selectMembers([testLease("api", "local", [1, 2, 3])], () => true);
  assert.throws(
    () => allocateForwards(members, () => true, { first: 60000, last: 60001 }),
    (e) =>
      e instanceof CrabboxError && e.kind === "portsExhausted" && e.exitStatus === 8 &&
      e.message === "no free loopback ports between 60000 and 60001 for SSH-mesh forwards",
  );
  assert.throws(
    () => nextFreePort(() => false, new Set()),
    /no free loopback ports between 51820 and 52819/,
  );
  assert.equal(nextFreePort(() => true, new Set([51820, 51821])), 51822);
  // The range is inclusive: its last port is used.
  assert.equal(nextFreePort((p) => p === 52819, new Set()), 52819);
  assert.equal(nextFreePort(() => true, new Set([60000]), { first: 60000, last: 60001 }), 60001);
  const { members: two } = selectMembers([testLease("api", "local", [1, 2])], () => true);
  assert.deepEqual(
    allocateForwards(two, () => true, { first: 60000, last: 60001 }).map((f) => f.localPort),
    [60000, 60001],
  );
});

Deno.test("memberSshArgs: exact argv of a member tunnel", () => {
  const args = memberSshArgs(
    { host: "127.77.0.2", port: 22, user: "root", keyPath: "/h/keys/crew-t1/id_ed25519" },
    [{ localPort: 51820, remotePort: 8080 }, { localPort: 51821, remotePort: 9090 }],
    {
      knownHostsFile: "/h/crew/t1/known_hosts",
      controlPath: "/h/crew/t1/cm/cbx-000000000001",
      logFile: "/h/crew/t1/log/cbx-000000000001.log",
    },
  );
  assert.deepEqual(args, [
    "-F",
    "none",
    "-p",
    "22",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=3",
    "-o",
    "StrictHostKeyChecking=accept-new",
    "-o",
    "UserKnownHostsFile=/h/crew/t1/known_hosts",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "ForwardAgent=no",
    "-o",
    "LogLevel=INFO",
    "-o",
    "IdentitiesOnly=yes",
    "-i",
    "/h/keys/crew-t1/id_ed25519",
    "-o",
    "ControlMaster=yes",
    "-o",
    "ControlPath=/h/crew/t1/cm/cbx-000000000001",
    "-o",
    "ControlPersist=no",
    "-N",
    "-o",
    "ExitOnForwardFailure=yes",
    "-E",
    "/h/crew/t1/log/cbx-000000000001.log",
    "-L",
    "127.0.0.1:51820:127.0.0.1:8080",
    "-L",
    "127.0.0.1:51821:127.0.0.1:9090",
    "--",
    "root@127.77.0.2",
  ]);
});

Deno.test("memberSshArgs: pinned host key → StrictHostKeyChecking=yes; unsafe host rejected", () => {
  const files = { knownHostsFile: "/kh", controlPath: "/cm", logFile: "/log" };
  const args = memberSshArgs(
    { host: "h", port: 2222, user: "root", hostKey: fakeHostKey() },
    [{ localPort: 51820, remotePort: 80 }],
    files,
  );
  assert.ok(args.includes("StrictHostKeyChecking=yes"));
  assert.deepEqual(args.slice(2, 4), ["-p", "2222"]);
  assert.throws(
    () => memberSshArgs({ host: "-oProxyCommand=x", port: 22, user: "root" }, [], files),
    (e) => e instanceof CrabboxError && e.kind === "usage",
  );
});

Deno.test("lastLogReason skips known-hosts noise and CRLF", () => {
  assert.equal(
    lastLogReason(
      "Warning: Permanently added 'h' (ED25519) to the list of known hosts.\r\nssh: connect to host h port 22: Connection refused\r\n",
    ),
    "ssh: connect to host h port 22: Connection refused",
  );
  assert.equal(lastLogReason("\r\n"), undefined);
});

Deno.test("probeForward: data, closed, open, refused", async () => {
  const serve = (onConn: (c: Deno.TcpConn) => void) => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    (async () => {
      for await (const c of l) onConn(c);
    })().catch(() => {});
    return { l, port: (l.addr as Deno.NetAddr).port };
  };
  const held: Deno.TcpConn[] = [];
  const talker = serve((c) => c.write(new TextEncoder().encode("hi\n")).then(() => c.close()));
  const closer = serve((c) => c.close());
  const silent = serve((c) => held.push(c));
  try {
    assert.equal(await probeForward(talker.port, 500), "data");
    assert.equal(await probeForward(closer.port, 500), "closed");
    assert.equal(await probeForward(silent.port, 50), "open");
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (free.addr as Deno.NetAddr).port;
    free.close();
    assert.equal(await probeForward(port, 50), "refused");
  } finally {
    for (const s of [talker, closer, silent]) s.l.close();
    for (const c of held) c.close();
  }
});

/** A listening socket's accept backlog (ss's Send-Q for a listener). */
async function listenBacklog(port: number): Promise<number> {
  const out = await new Deno.Command("ss", { args: ["-Hltn", `sport = :${port}`] }).output();
  const cols = new TextDecoder().decode(out.stdout).trim().split(/\s+/);
  assert.equal(cols[0], "LISTEN", `ss: ${cols.join(" ")}`);
  return Number(cols[2]);
}

/** Connections waiting in a 127.0.0.1 listener's accept queue (/proc/net/tcp rx_queue of LISTEN). */
function acceptQueue(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const row = Deno.readTextFileSync("/proc/net/tcp").split("\n").map((l) => l.trim().split(/\s+/))
    .find((c) => c[1] === local && c[3] === "0A");
  assert.ok(row, `no listener ${local} in /proc/net/tcp`);
  return parseInt(row[4].split(":")[1], 16);
}

Deno.test("probeForward: a listener that accepts nothing (full accept queue) is stalled, not a connect that waits out every SYN retry", async () => {
  // Nobody ever accepts (a stuck ssh): once the kernel's accept queue holds backlog + 1
  // connections it drops new SYNs, and a connect without a bound waits ~127 s before it fails.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const held: Deno.TcpConn[] = [];
  try {
    const backlog = await listenBacklog(port);
    while (held.length <= backlog) held.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    while (acceptQueue(port) <= backlog) await new Promise((r) => setTimeout(r, 1)); // last ACKs
    assert.equal(acceptQueue(port), backlog + 1);
    assert.equal(await probeForward(port, 50), "stalled");
    assert.equal(await connectLocal(port, 50), "stalled");
  } finally {
    l.close();
    for (const c of held) c.close();
  }
});

Deno.test("planCrew / describeCrew / crewPeers with injected members touch nothing", async () => {
  const home = await Deno.makeTempDir({ prefix: "cbx-mesh-unit-" });
  try {
    const v6 = testLease("db", "local", [5432], {
      ssh: { host: "fd00::5", port: 2222, user: "root" },
    });
    const api = testLease("api", "local", [8080]);
    const gpu = testLease("gpu", "nossh", [80]);
    const fake = { name: "nossh", features: new Set<"tailscale">(["tailscale"]) };
    const opts = {
      home,
      env: () => undefined,
      members: [v6, api, gpu],
      isPortFree: () => true,
      providers: { nossh: fake as never },
    };
    const plan = await planCrew("t1", opts);
    assert.deepEqual(plan.forwards.map((f) => [f.peer, f.remotePort, f.localPort]), [
      ["api", 8080, 51820],
      ["db", 5432, 51821],
    ]);
    assert.deepEqual(plan.skipped.map((s) => s.lease.slug), ["gpu"]);
    const d = await describeCrew("t1", opts);
    assert.deepEqual(Object.keys(d), ["hostsPath", "envPath", "exports", "forwards"]);
    assert.equal(d.exports[1], "export CRABBOX_CREW_DB_5432=127.0.0.1:51821");
    assert.deepEqual([...Deno.readDirSync(home)], [], "describeCrew wrote nothing");
    const peers = await crewPeers("t1", opts);
    assert.deepEqual(peers.map((p) => [p.peer, p.transport, p.endpoint, p.planes]), [
      ["api", "ssh", "ssh://127.77.0.2:22", ["ssh", "ssh-peer"]],
      ["db", "ssh", "ssh://[fd00::5]:2222", ["ssh", "ssh-peer"]],
      ["gpu", "none", "", ["tailnet"]],
    ]);
    await assert.rejects(
      planCrew("empty", { ...opts, members: [] }),
      (e) => e instanceof CrabboxError && e.kind === "notFound",
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
