import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

Deno.test("--type/--location/--image/--arch: validated per provider, passed to it, recorded, shown", async () => {
  // Named like the registry entries, so the registry's shape rules apply.
  const hetzner = memoryProvider("hetzner", ["ssh", "cloud-init"]);
  const local = memoryProvider("local", []);
  const world = await cliWorld({ hetzner, local });
  try {
    const w = await world.run([
      "warmup",
      "--crew",
      "s",
      "--slug",
      "db",
      "--provider",
      "hetzner",
      "--type",
      "cax21",
      "--region",
      "hel1",
      "--image",
      "debian-12",
      "--json",
    ]);
    assert.equal(w.code, 0, w.stderr);
    const lease = JSON.parse(w.stdout);
    assert.deepEqual(lease.shape, {
      type: "cax21",
      location: "hel1",
      image: "debian-12",
      arch: null,
    });
    assert.equal(lease.labels["crabbox-type"], "cax21");
    assert.deepEqual(hetzner.creates[0].shape, {
      type: "cax21",
      location: "hel1",
      image: "debian-12",
    });

    const wide = await world.run(["list", "--wide"]);
    assert.match(wide.stdout.split("\n")[0], /\bTYPE\s+LOCATION\s+IMAGE\s+ARCH$/);
    assert.match(wide.stdout.split("\n")[1], /\bcax21\s+hel1\s+debian-12\s+-$/);
    const narrow = await world.run(["list"]);
    assert.doesNotMatch(narrow.stdout, /TYPE/);
    const status = await world.run(["status", "--id", "s/db"]);
    assert.match(status.stdout, /cax21\s+hel1/);

    const bad: [string[], RegExp][] = [
      [
        ["--provider", "hetzner", "--type", "m5.large"],
        /^crabbox: --type "m5\.large" is not a hetzner type/,
      ],
      [["--provider", "hetzner", "--type", "cpx22", "--arch", "arm"], /is x86, not --arch arm/],
      [
        ["--provider", "local", "--type", "big"],
        /^crabbox: --type is not supported by provider local/,
      ],
      [
        ["--provider", "hetzner", "--location", "fsn1", "--region", "hel1"],
        /--location or --region/,
      ],
    ];
    for (const [args, re] of bad) {
      const r = await world.run(["warmup", "--crew", "s", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    assert.equal(hetzner.creates.length + local.creates.length, 1, "nothing created by bad shapes");
  } finally {
    await world.close();
  }
});
