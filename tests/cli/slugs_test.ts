import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

Deno.test("warmup --role worker --count 3 yields worker-1..3; later ones take the next free numbers", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const three = await world.run(
      [
        "warmup",
        "--crew",
        "ci",
        "--role",
        "worker",
        "--count",
        "3",
        "--provider",
        "memory",
        "--json",
      ],
    );
    assert.equal(three.code, 0, three.stderr);
    const leases = JSON.parse(three.stdout) as { slug: string; role: string; id: string }[];
    assert.deepEqual(leases.map((l) => [l.slug, l.role]), [
      ["worker-1", "worker"],
      ["worker-2", "worker"],
      ["worker-3", "worker"],
    ]);
    const rel = await world.run(["release", "--id", "ci/worker-2"]);
    assert.equal(rel.code, 0, rel.stderr);
    const next = await world.run(
      ["warmup", "--crew", "ci", "--role", "worker", "--count", "2", "--provider", "memory"],
    );
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.stdout.trim().split("\n").length, 2);
    const list = await world.run(["list", "--crew", "ci", "--json"]);
    assert.deepEqual(JSON.parse(list.stdout).map((l: { slug: string }) => l.slug), [
      "worker-1",
      "worker-2",
      "worker-3",
      "worker-4",
    ]);
  } finally {
    await world.close();
  }
});

Deno.test("concurrent --role warmups never pick the same number", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const runs = await Promise.all(
      [1, 2, 3, 4].map(() =>
        world.run(["warmup", "--crew", "par", "--role", "w", "--provider", "memory", "--json"])
      ),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(runs.map((r) => JSON.parse(r.stdout).slug).sort(), [
      "w-1",
      "w-2",
      "w-3",
      "w-4",
    ]);
  } finally {
    await world.close();
  }
});

Deno.test("warmup without --slug or --role gets a readable generated slug", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const slugs = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = await world.run(["warmup", "--crew", "gen", "--provider", "memory", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const slug = JSON.parse(r.stdout).slug;
      assert.match(slug, /^[a-z]+-[a-z]+(-[0-9]+)?$/);
      slugs.add(slug);
    }
    assert.equal(slugs.size, 3, "three different members");
    const solo = await world.run(["warmup", "--provider", "memory", "--json"]);
    assert.equal(solo.code, 0, solo.stderr);
    assert.match(JSON.parse(solo.stdout).slug, /^[a-z]+-[a-z]+/);
  } finally {
    await world.close();
  }
});

Deno.test("a taken slug exits 2 with the holder's lease id; bad --role/--count combinations exit 2", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  try {
    const first = await world.run(
      ["warmup", "--crew", "t", "--slug", "db", "--provider", "memory"],
    );
    const holder = first.stdout.trim();
    const dup = await world.run(["warmup", "--crew", "t", "--slug", "db", "--provider", "memory"]);
    assert.equal(dup.code, 2);
    assert.equal(dup.stderr.split("\n")[0], `crabbox: crew t already has a member db (${holder})`);
    const cases: string[][] = [
      ["--crew", "t", "--slug", "a", "--role", "w"],
      ["--role", "w", "--count", "2"],
      ["--crew", "t", "--slug", "a", "--count", "2"],
      ["--crew", "t", "--role", "w", "--count", "0"],
      ["--crew", "t", "--role", "w", "--count", "x"],
      ["--crew", "t", "--role", "-w"],
    ];
    for (const c of cases) {
      const r = await world.run(["warmup", "--provider", "memory", ...c]);
      assert.equal(r.code, 2, `${c.join(" ")}: ${r.stderr}`);
    }
    assert.equal(mem.creates.length, 1, "nothing created by bad input");
  } finally {
    await world.close();
  }
});
