import assert from "node:assert/strict";
import { cliWorld, entries } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";
import { encodeLabels } from "../../lib/core/labels.ts";
import type { Lease } from "../../lib/lease/claims.ts";

const DEAD = { pid: 2 ** 22 + 12345, startTime: "1" }; // above pid_max on this kernel: never alive

/** A claim as `createMember` leaves it when its process dies mid-create. */
function creatingClaim(id: string, crew: string, slug: string, providerId = ""): Lease {
  return {
    id,
    provider: "memory",
    providerId,
    crew,
    slug,
    role: slug,
    owner: "tester",
    labels: encodeLabels({ leaseId: id, crew, slug, owner: "tester" }),
    expose: [80],
    tailscale: false,
    createdAt: new Date().toISOString(),
    state: "creating",
    creator: DEAD,
  };
}

async function writeClaim(home: string, id: string, body: string): Promise<string> {
  await Deno.mkdir(`${home}/claims`, { recursive: true, mode: 0o700 });
  const path = `${home}/claims/${id}.json`;
  await Deno.writeTextFile(path, body, { mode: 0o600 });
  return path;
}

type Row = { id: string; slug: string; state: string };

Deno.test("a create whose process died stays listed as failed, fails doctor --crew, and release --crew removes its box and claim", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const id = "cbx-00000000dead";
    const claim = creatingClaim(id, "k", "k1");
    await writeClaim(world.home, id, JSON.stringify(claim));
    // The provider made the box (netns/sshd/VM) but never answered: no provider id in the claim.
    mem.boxes.set("srv-77", {
      providerId: "srv-77",
      leaseId: id,
      labels: claim.labels,
      state: "stopped",
    });
    const list = await world.run(["list", "--crew", "k", "--json"]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).map((r: Row) => [r.id, r.slug, r.state]),
      [[id, "k1", "failed"]],
    );
    const doctor = await world.run(["doctor", "--crew", "k", "--json"]);
    assert.equal(doctor.code, 1, doctor.stderr);
    const crewCheck = JSON.parse(doctor.stdout).checks.find((c: { name: string }) =>
      c.name === "crew"
    );
    assert.equal(crewCheck.status, "fail");
    assert.match(crewCheck.message, /k1 \(cbx-00000000dead\) is failed/);
    const taken = await world.run([
      "warmup",
      "--crew",
      "k",
      "--slug",
      "k1",
      "--provider",
      "memory",
    ]);
    assert.equal(taken.code, 2, "the slug stays taken until the failed lease is released");
    const rel = await world.run(["release", "--crew", "k"]);
    assert.equal(rel.code, 0, rel.stderr);
    assert.equal(rel.stdout, `released ${id} (removed: memory box srv-77, claim)\n`);
    assert.equal(mem.boxes.size, 0);
    assert.deepEqual(await entries(`${world.home}/claims`), [".lock"]);
    const again = await world.run([
      "warmup",
      "--crew",
      "k",
      "--slug",
      "k1",
      "--provider",
      "memory",
    ]);
    assert.equal(again.code, 0, again.stderr);
  } finally {
    await world.close();
  }
});

Deno.test("release --id works on a failed create the provider never saw (claim only)", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const id = "cbx-0000000dead2";
    await writeClaim(world.home, id, JSON.stringify(creatingClaim(id, "k", "k2")));
    const list = await world.run(["list", "--json"]);
    assert.deepEqual(JSON.parse(list.stdout).map((r: Row) => r.state), ["failed"]);
    const rel = await world.run(["release", "--id", id]);
    assert.equal(rel.code, 0, rel.stderr);
    assert.equal(rel.stdout, `released ${id} (removed: claim)\n`);
  } finally {
    await world.close();
  }
});

Deno.test("a box whose sshd died is listed unreachable, run refuses it with a hint, release --id removes it", async () => {
  const mem = memoryProvider("memory", ["ssh"]);
  const world = await cliWorld({ memory: mem });
  try {
    const w = await world.run(["warmup", "--crew", "k", "--slug", "k3", "--provider", "memory"]);
    assert.equal(w.code, 0, w.stderr);
    const id = w.stdout.trim();
    for (const box of mem.boxes.values()) box.state = "stopped";
    const list = await world.run(["list", "--json"]);
    assert.deepEqual(JSON.parse(list.stdout).map((r: Row) => [r.id, r.state]), [[
      id,
      "unreachable",
    ]]);
    const run = await world.run(["run", "--id", id, "--", "true"]);
    assert.equal(run.code, 5);
    assert.equal(
      run.stderr,
      `crabbox: lease ${id} (k/k3) is unreachable\nhint: release it with: crabbox release --id ${id}\n`,
    );
    const rel = await world.run(["release", "--id", "k/k3"]);
    assert.equal(rel.code, 0, rel.stderr);
    assert.match(
      rel.stdout,
      /^released cbx-[0-9a-f]{12} \(removed: memory box srv-1, claim, client key\)\n$/,
    );
    assert.equal(mem.boxes.size, 0);
  } finally {
    await world.close();
  }
});

Deno.test("a claim whose box is gone at the provider is orphaned and releasable", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const w = await world.run(["warmup", "--crew", "k", "--slug", "k4", "--provider", "memory"]);
    const id = w.stdout.trim();
    mem.boxes.clear(); // deleted in the provider's console
    const list = await world.run(["list", "--crew", "k", "--json"]);
    assert.deepEqual(JSON.parse(list.stdout).map((r: Row) => r.state), ["orphaned"]);
    const rel = await world.run(["release", "--crew", "k"]);
    assert.equal(rel.stdout, `released ${id} (removed: claim, client key)\n`);
  } finally {
    await world.close();
  }
});

Deno.test("a wrong-typed claim is named with exit 7 while list still shows the others; other crews are unaffected", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const a = await world.run(["warmup", "--crew", "good", "--slug", "a", "--provider", "memory"]);
    const b = await world.run(["warmup", "--crew", "k", "--slug", "b", "--provider", "memory"]);
    const bad = b.stdout.trim();
    const path = `${world.home}/claims/${bad}.json`;
    const claim = JSON.parse(await Deno.readTextFile(path));
    await Deno.writeTextFile(path, JSON.stringify({ ...claim, expose: "80" }));
    const list = await world.run(["list", "--json"]);
    assert.equal(list.code, 7, list.stderr);
    const ids = JSON.parse(list.stdout).map((r: Row) => r.id);
    assert.ok(ids.includes(a.stdout.trim()), "the good crew is still listed");
    assert.ok(ids.includes(bad), "the provider still lists the box of the bad claim");
    assert.ok(
      // --json: the error is the JSON error object on stderr.
      JSON.parse(list.stderr.trim().split("\n").at(-1)!).error.message ===
        `unusable claim file: ${path} (expose is not a list of ports)`,
      list.stderr,
    );
    assert.ok(!list.stderr.includes("join is not a function"));
    const other = await world.run(["list", "--crew", "good", "--json"]);
    assert.equal(other.code, 0, other.stderr);
    const status = await world.run(["status", "--crew", "good"]);
    assert.equal(status.code, 0, status.stderr);
    // The provider still lists the box: release --crew k releases it and drops the bad file.
    const rel = await world.run(["release", "--crew", "k"]);
    assert.equal(rel.code, 0, rel.stderr);
    assert.match(rel.stdout, new RegExp(`^released ${bad} `));
    assert.equal([...mem.boxes.values()].filter((x) => x.labels.crew === "k").length, 0);
    assert.equal(await Deno.stat(path).then(() => true, () => false), false);
  } finally {
    await world.close();
  }
});

Deno.test("a truncated claim never lets release --crew report success", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    await world.run(["warmup", "--crew", "k", "--slug", "c", "--provider", "memory"]);
    const path = await writeClaim(
      world.home,
      "cbx-00000000bad1",
      '{"id":"cbx-00000000bad1","crew"',
    );
    const rel = await world.run(["release", "--crew", "k"]);
    assert.equal(rel.code, 7, rel.stderr);
    assert.match(rel.stdout, /^released cbx-/);
    assert.ok(rel.stderr.includes(`${path} (not valid JSON (truncated?))`), rel.stderr);
  } finally {
    await world.close();
  }
});

Deno.test("crews belong to their owner: list/status/peers/release select by crew and owner; --all-owners shows and releases others", async () => {
  const mem = memoryProvider("memory");
  const alice = await cliWorld({ memory: mem });
  const bob = await cliWorld({ memory: mem });
  alice.env.CRABBOX_OWNER = "alice@example.com";
  bob.env.CRABBOX_OWNER = "bob@example.com";
  try {
    const a = await alice.run([
      "warmup",
      "--crew",
      "pr-42",
      "--slug",
      "api",
      "--provider",
      "memory",
    ]);
    const b = await bob.run(["warmup", "--crew", "pr-42", "--slug", "api", "--provider", "memory"]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const aliceId = a.stdout.trim();
    const bobId = b.stdout.trim();
    const list = await bob.run(["list", "--crew", "pr-42", "--json"]);
    assert.deepEqual(JSON.parse(list.stdout).map((r: Row) => r.id), [bobId]);
    const status = await bob.run(["status", "--crew", "pr-42", "--json"]);
    assert.deepEqual(JSON.parse(status.stdout).map((r: Row) => r.id), [bobId]);
    const peers = await bob.run(["crew", "peers", "pr-42", "--json"]);
    assert.deepEqual(
      JSON.parse(peers.stdout).members.map((m: { leaseId: string }) => m.leaseId),
      [bobId],
    );
    const all = await bob.run(["list", "--crew", "pr-42", "--all-owners"]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`${aliceId} .* alice \\(other\\)`));
    assert.match(all.stdout, new RegExp(`${bobId} .* bob\\s*$`, "m"));

    const other = await bob.run(["release", "--id", aliceId]);
    assert.equal(other.code, 2, other.stderr);
    assert.equal(
      other.stderr,
      `crabbox: lease ${aliceId} belongs to owner alice, not bob\nhint: pass --all-owners to act on another owner's lease\n`,
    );
    assert.equal(mem.boxes.size, 2);

    const rel = await bob.run(["release", "--crew", "pr-42"]);
    assert.equal(rel.code, 0, rel.stderr);
    assert.match(rel.stdout, new RegExp(`^released ${bobId} `));
    assert.deepEqual([...mem.boxes.values()].map((x) => x.leaseId), [aliceId], "alice's box stays");

    const w2 = await bob.run(["warmup", "--crew", "pr-42", "--slug", "db", "--provider", "memory"]);
    assert.equal(w2.code, 0, w2.stderr);
    const forced = await bob.run(["release", "--crew", "pr-42", "--all-owners"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, new RegExp(`released ${aliceId}`));
    assert.equal(mem.boxes.size, 0);
  } finally {
    await alice.close();
    await bob.close();
  }
});
