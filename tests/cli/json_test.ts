import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

const LEASE_KEYS = [
  "crew",
  "createdAt",
  "expose",
  "id",
  "labels",
  "lifetime",
  "owner",
  "provider",
  "providerId",
  "role",
  "shape",
  "slug",
  "ssh",
  "state",
  "tailnet",
  "tailscale",
].sort();

Deno.test("--json shapes of warmup, list, status and release", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const w = await world.run([
      "warmup",
      "--crew",
      "pr-42",
      "--slug",
      "api",
      "--provider",
      "memory",
      "--expose",
      "8080,9090",
      "--json",
    ]);
    assert.equal(w.code, 0, w.stderr);
    const lease = JSON.parse(w.stdout);
    assert.deepEqual(Object.keys(lease).sort(), LEASE_KEYS);
    assert.equal(lease.crew, "pr-42");
    assert.equal(lease.slug, "api");
    assert.equal(lease.role, "api");
    assert.equal(lease.provider, "memory");
    assert.deepEqual(lease.expose, [8080, 9090]);
    assert.equal(lease.ssh, null);
    assert.equal(lease.tailscale, false);
    assert.equal(lease.labels.crew, "pr-42");
    assert.equal(lease.state, "active");
    assert.equal(mem.creates.length, 1);

    const list = await world.run(["list", "--json"]);
    assert.equal(list.code, 0, list.stderr);
    const leases = JSON.parse(list.stdout);
    assert.equal(leases.length, 1);
    assert.deepEqual(Object.keys(leases[0]).sort(), LEASE_KEYS);
    assert.equal(leases[0].id, lease.id);

    const one = await world.run(["status", "--id", "pr-42/api", "--json"]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(JSON.parse(one.stdout).id, lease.id);

    const crew = await world.run(["status", "--crew", "pr-42", "--json"]);
    assert.equal(crew.code, 0, crew.stderr);
    assert.deepEqual(JSON.parse(crew.stdout).map((l: { id: string }) => l.id), [lease.id]);

    const peers = await world.run(["crew", "peers", "pr-42", "--json"]);
    assert.equal(peers.code, 0, peers.stderr);
    const members = JSON.parse(peers.stdout).members;
    assert.equal(members.length, 1);
    assert.equal(members[0].peer, "api");
    assert.equal(members[0].leaseId, lease.id);
    assert.deepEqual(members[0].expose, [8080, 9090]);

    const rel = await world.run(["release", "--id", lease.id]);
    assert.deepEqual(rel, {
      code: 0,
      stdout: `released ${lease.id} (removed: memory box srv-1, claim, client key)\n`,
      stderr: "",
    });
    assert.equal(mem.boxes.size, 0);
    const empty = await world.run(["list", "--json"]);
    assert.deepEqual(JSON.parse(empty.stdout), []);
  } finally {
    await world.close();
  }
});

Deno.test("list without leases says so on stderr; the table has a header", async () => {
  const world = await cliWorld({ memory: memoryProvider("memory") });
  try {
    assert.deepEqual(await world.run(["list"]), {
      code: 0,
      stdout: "",
      stderr: "no leases\n",
    });
    await world.run(["warmup", "--crew", "c1", "--slug", "db", "--provider", "memory"]);
    const r = await world.run(["list"]);
    assert.equal(r.code, 0, r.stderr);
    const [header, row] = r.stdout.trimEnd().split("\n");
    assert.match(
      header,
      /^ID\s+CREW\s+SLUG\s+PROVIDER\s+STATE\s+SSH\s+EXPIRES\s+EXPOSE\s+TAILNET$/,
    );
    assert.match(row, /^cbx-[0-9a-f]{12}\s+c1\s+db\s+memory\s+active\s+-\s+-\s+-\s+-$/);
  } finally {
    await world.close();
  }
});

Deno.test("doctor --json reports checks and ok, through the fake ssh", async () => {
  const world = await cliWorld({ memory: memoryProvider("memory") });
  try {
    const r = await world.run(["doctor", "--json"]);
    const report = JSON.parse(r.stdout);
    assert.equal(typeof report.ok, "boolean");
    assert.equal(r.code, report.ok ? 0 : 1);
    const ssh = report.checks.find((c: { name: string }) => c.name === "ssh");
    assert.equal(ssh.details.version, "OpenSSH_9.6p1 fake");
    assert.deepEqual(
      report.checks.map((c: { name: string }) => c.name).slice(0, 3),
      ["ssh", "home", "providers"],
    );
    assert.ok(world.process.calls.some((c) => c.program === "ssh" && c.args[0] === "-V"));
  } finally {
    await world.close();
  }
});

Deno.test("crew release releases every member and says so", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    for (const slug of ["a", "b"]) {
      const w = await world.run(["warmup", "--crew", "t9", "--slug", slug, "--provider", "memory"]);
      assert.equal(w.code, 0, w.stderr);
    }
    const r = await world.run(["crew", "release", "t9"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trimEnd().split("\n").filter((l) => l.startsWith("released ")).length, 2);
    assert.equal(mem.boxes.size, 0);
    const again = await world.run(["release", "--crew", "t9"]);
    assert.equal(again.code, 0);
    assert.equal(again.stdout, 'crew "t9" has no leases\n');
    // The providers without credentials were not asked: stderr says which.
    assert.match(again.stderr, /^hint: not queried for lack of credentials: aws, .*\n$/);
  } finally {
    await world.close();
  }
});
