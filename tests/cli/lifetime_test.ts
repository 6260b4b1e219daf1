import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

const now = () => Math.floor(Date.now() / 1000);

function near(actual: number | null, expected: number, what: string) {
  assert.ok(
    actual !== null && Math.abs(actual - expected) <= 3,
    `${what}: ${actual} vs ${expected}`,
  );
}

Deno.test("lifetime defaults: cloud 90m/30m, local none, flags and CRABBOX_TTL override, 0 = none", async () => {
  const cloud = memoryProvider("hetzner", ["ssh", "cloud-init"]);
  const local = memoryProvider("local", []);
  const world = await cliWorld({ hetzner: cloud, local });
  try {
    const warm = async (...args: string[]) => {
      const r = await world.run(["warmup", "--json", ...args]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const c = await warm("--provider", "hetzner");
    near(c.lifetime.expiresAt, now() + 5400, "cloud ttl");
    assert.equal(c.lifetime.idleTimeout, 1800);
    near(c.lifetime.touchedAt, now(), "touched");
    assert.equal(c.labels["crabbox-idle"], "1800");
    // The box enforces it itself: cloud-init carries the lifetime timer.
    const userData = cloud.creates[0].userData ?? "";
    assert.match(userData, /crabbox-lifetime\.timer/);
    assert.match(userData, new RegExp(`expires=${c.lifetime.expiresAt}\\n`));

    const l = await warm("--provider", "local");
    assert.equal(l.lifetime.expiresAt, null);
    assert.equal(l.lifetime.idleTimeout, null);
    assert.equal(l.labels["crabbox-expires"], undefined);

    const none = await warm("--provider", "hetzner", "--ttl", "0", "--idle-timeout", "0");
    assert.equal(none.lifetime.expiresAt, null);
    assert.equal(none.lifetime.idleTimeout, null);
    assert.doesNotMatch(cloud.creates[1].userData ?? "", /crabbox-lifetime/);

    const flags = await warm("--provider", "local", "--ttl", "2h", "--idle-timeout", "10m");
    near(flags.lifetime.expiresAt, now() + 7200, "flag ttl");
    assert.equal(flags.lifetime.idleTimeout, 600);

    world.env.CRABBOX_TTL = "45m";
    const conf = await warm("--provider", "local");
    near(conf.lifetime.expiresAt, now() + 2700, "CRABBOX_TTL");

    const bad = await world.run(["warmup", "--provider", "local", "--ttl", "90x"]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.split("\n")[0], 'crabbox: --ttl "90x" is not a duration');
    assert.equal(local.creates.length, 3, "nothing created on a bad --ttl");
  } finally {
    await world.close();
  }
});

Deno.test("cleanup: --dry-run releases nothing; cleanup releases only this owner's expired leases", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const warm = async (slug: string, ttl: string) => {
      const r = await world.run(
        ["warmup", "--crew", "c1", "--slug", slug, "--provider", "memory", "--ttl", ttl],
      );
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    const short = await warm("short", "1s");
    const long = await warm("long", "1h");
    // Someone else's expired box in the same crew, listed by the provider.
    mem.boxes.set("srv-foreign", {
      providerId: "srv-foreign",
      leaseId: "cbx-00000000f0f0",
      labels: {
        crabbox: "true",
        "crabbox-lease": "cbx-00000000f0f0",
        crew: "c1",
        slug: "theirs",
        role: "theirs",
        "crabbox-owner": "someone",
        "crabbox-expires": "1000",
      },
      state: "running",
    });
    await new Promise((r) => setTimeout(r, 1100));

    const dry = await world.run(["cleanup", "--provider", "memory", "--dry-run", "--json"]);
    assert.equal(dry.code, 0, dry.stderr);
    const d = JSON.parse(dry.stdout);
    assert.deepEqual(Object.keys(d).sort(), ["dryRun", "expired", "failed", "owner", "released"]);
    assert.equal(d.dryRun, true);
    assert.equal(d.owner, "tester");
    assert.deepEqual(d.expired.map((e: { id: string }) => e.id), [short]);
    assert.deepEqual(Object.keys(d.expired[0]).sort(), [
      "crew",
      "expiredAt",
      "id",
      "provider",
      "reason",
      "slug",
    ]);
    assert.equal(d.expired[0].reason, "ttl");
    assert.deepEqual(d.released, []);
    assert.equal(mem.boxes.size, 3, "dry run deletes nothing");

    const text = await world.run(["cleanup", "--dry-run"]);
    assert.match(
      text.stdout,
      new RegExp(`${short}\\s+c1\\s+short\\s+memory\\s+\\S+ ago \\(ttl\\)\\s+would release`),
    );

    const real = await world.run(["cleanup", "--json"]);
    assert.equal(real.code, 0, real.stderr);
    assert.deepEqual(JSON.parse(real.stdout).released, [short]);
    assert.deepEqual([...mem.boxes.values()].map((b) => b.leaseId).sort(), [
      "cbx-00000000f0f0",
      long,
    ]);

    const again = await world.run(["cleanup"]);
    assert.equal(again.code, 0);
    assert.equal(again.stdout, "no expired leases of owner tester\n");
  } finally {
    await world.close();
  }
});

Deno.test("cleanup: idle past the timeout by the labels is expired; a touch saves it", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const warm = async (slug: string) => {
      const r = await world.run(
        ["warmup", "--crew", "c2", "--slug", slug, "--provider", "memory", "--idle-timeout", "2s"],
      );
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    const idle = await warm("idle");
    const used = await warm("used");
    // Lifetimes count whole seconds: a 2 s timeout leaves the touched lease a
    // full second of margin however the touch and the cleanup straddle a
    // second boundary (with 1 s, a boundary between them expired it too).
    await new Promise((r) => setTimeout(r, 2100));
    const t = await world.run(["touch", "c2/used"]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, `touched ${used} (no expiry)\n`);
    const r = await world.run(["cleanup", "--json"]);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.expired.map((e: { id: string; reason: string }) => [e.id, e.reason]), [
      [idle, "idle"],
    ]);
    assert.deepEqual(out.released, [idle]);
  } finally {
    await world.close();
  }
});

Deno.test("touch: --ttl moves the expiry at the provider and in the claim; --crew touches all", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    for (const slug of ["a", "b"]) {
      const r = await world.run(
        ["warmup", "--crew", "c3", "--slug", slug, "--provider", "memory", "--ttl", "10m"],
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const one = await world.run(["touch", "c3/a", "--ttl", "2h", "--json"]);
    assert.equal(one.code, 0, one.stderr);
    const [a] = JSON.parse(one.stdout).touched;
    assert.deepEqual(Object.keys(a).sort(), [
      "box",
      "crew",
      "id",
      "lifetime",
      "provider",
      "slug",
      "updated",
    ]);
    near(a.lifetime.expiresAt, now() + 7200, "touched ttl");
    assert.deepEqual(a.updated, ["provider", "claim"]);
    const box = [...mem.boxes.values()].find((b) => b.leaseId === a.id)!;
    assert.equal(box.labels["crabbox-expires"], String(a.lifetime.expiresAt));
    const claim = JSON.parse(await Deno.readTextFile(`${world.home}/claims/${a.id}.json`));
    assert.equal(claim.labels["crabbox-expires"], String(a.lifetime.expiresAt));
    const status = await world.run(["status", "--id", a.id]);
    assert.match(status.stdout, /expires in (1h59m|2h)/);

    const crew = await world.run(["touch", "--crew", "c3", "--ttl", "0", "--json"]);
    const touched = JSON.parse(crew.stdout).touched;
    assert.equal(touched.length, 2);
    for (const t of touched) assert.equal(t.lifetime.expiresAt, null);

    const neither = await world.run(["touch"]);
    assert.equal(neither.code, 2);
    const both = await world.run(["touch", "c3/a", "--crew", "c3"]);
    assert.equal(both.code, 2);
    const badTtl = await world.run(["touch", "c3/a", "--ttl", "forever"]);
    assert.equal(badTtl.code, 2);
    const gone = await world.run(["touch", "--crew", "nope"]);
    assert.equal(gone.code, 3);
  } finally {
    await world.close();
  }
});

Deno.test("ssh --id touches the lease before connecting", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const w = await world.run(["warmup", "--crew", "c4", "--slug", "a", "--provider", "memory"]);
    const id = w.stdout.trim();
    const box = [...mem.boxes.values()][0];
    box.labels["crabbox-touched"] = "1000";
    const path = `${world.home}/claims/${id}.json`;
    const claim = JSON.parse(await Deno.readTextFile(path));
    claim.labels["crabbox-touched"] = "1000";
    await Deno.writeTextFile(path, JSON.stringify(claim));
    const r = await world.run(["ssh", "--id", id, "--", "true"]);
    assert.equal(r.code, 5, "the memory box has no ssh endpoint");
    near(Number(box.labels["crabbox-touched"]), now(), "provider label");
    const after = JSON.parse(await Deno.readTextFile(path));
    near(Number(after.labels["crabbox-touched"]), now(), "claim label");
  } finally {
    await world.close();
  }
});
