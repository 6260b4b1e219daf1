import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

const CREW = `crew: ci
provider: memory
members:
  - slug: db
    expose: [5432]
  - role: worker
    count: 2
    expose: 8080
`;

Deno.test("crew up -f twice creates once; drift is reported, --replace re-creates; down releases", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  const file = `${world.home}/crew.yaml`;
  try {
    await Deno.writeTextFile(file, CREW);
    const first = await world.run(["crew", "up", "-f", file, "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const up = JSON.parse(first.stdout);
    assert.deepEqual(Object.keys(up).sort(), [
      "created",
      "crew",
      "drift",
      "exports",
      "extra",
      "kept",
      "replaced",
    ]);
    assert.deepEqual(up.created.map((l: { slug: string }) => l.slug), [
      "db",
      "worker-1",
      "worker-2",
    ]);
    assert.equal(mem.creates.length, 3);

    const second = await world.run(["crew", "up", "-f", file]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(mem.creates.length, 3, "the second up creates nothing");
    assert.match(second.stderr, /crew "ci": 0 created, 3 unchanged, 0 drifted/);
    assert.equal(second.stdout, "");

    // The file changes: one more worker, and db exposes another port.
    await Deno.writeTextFile(
      file,
      CREW.replace("count: 2", "count: 3").replace("[5432]", "[5432, 9187]"),
    );
    const third = await world.run(["crew", "up", "-f", file, "--json"]);
    assert.equal(third.code, 0, third.stderr);
    const t = JSON.parse(third.stdout);
    assert.deepEqual(t.created.map((l: { slug: string }) => l.slug), ["worker-3"]);
    assert.deepEqual(
      t.drift.map((d: { slug: string; differences: string[] }) => [d.slug, d.differences]),
      [
        ["db", ["expose: 5432, declared 5432,9187"]],
      ],
    );
    const dbId = t.drift[0].id;
    assert.ok(
      [...mem.boxes.values()].some((b) => b.leaseId === dbId),
      "drift alone destroys nothing",
    );

    const replaced = await world.run(["crew", "up", "-f", file, "--replace", "--json"]);
    assert.equal(replaced.code, 0, replaced.stderr);
    const r = JSON.parse(replaced.stdout);
    assert.deepEqual(r.replaced, [dbId]);
    assert.deepEqual(r.created.map((l: { slug: string; expose: number[] }) => [l.slug, l.expose]), [
      ["db", [5432, 9187]],
    ]);
    assert.deepEqual(r.drift, []);

    const down = await world.run(["crew", "down", "-f", file, "--json"]);
    assert.equal(down.code, 0, down.stderr);
    const d = JSON.parse(down.stdout);
    assert.deepEqual(Object.keys(d).sort(), ["crew", "disconnected", "failed", "released"]);
    assert.equal(d.released.length, 4);
    assert.equal(mem.boxes.size, 0);
  } finally {
    await world.close();
  }
});

Deno.test("crew up -f with a bad file exits 2 naming file:line and creates nothing", async () => {
  const mem = memoryProvider("memory");
  const world = await cliWorld({ memory: mem });
  const file = `${world.home}/crew.yaml`;
  try {
    await Deno.writeTextFile(file, CREW.replace("count: 2", "count: 2\n    colour: red"));
    const r = await world.run(["crew", "up", "-f", file]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr.split("\n")[0],
      `crabbox: ${file}:8: unknown key "colour" (allowed: slug, role, count, provider, expose, tailscale, init, ttl, idleTimeout, type, location, image, arch)`,
    );
    assert.equal(mem.creates.length, 0);
    const missing = await world.run(["crew", "up", "-f", `${world.home}/nope.yaml`]);
    assert.equal(missing.code, 2);
    const noFlag = await world.run(["crew", "up"]);
    assert.equal(noFlag.code, 2);
  } finally {
    await world.close();
  }
});
