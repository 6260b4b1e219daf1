import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { netnsNames, requireE2E } from "./_local.ts";

const enabled = requireE2E();

Deno.test({
  name: "e2e: a local box with a TTL of a few seconds is released by cleanup, not by --dry-run",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-e2e-ttl-" });
    const ours: string[] = [];
    try {
      const short = await crabbox(home, [
        "warmup",
        "--crew",
        "ttl",
        "--slug",
        "short",
        "--provider",
        "local",
        "--ttl",
        "3s",
        "--json",
      ]);
      assert.equal(short.code, 0, short.stderr);
      const s = JSON.parse(short.stdout);
      ours.push(s.id);
      const keep = await crabbox(home, ["warmup", "--crew", "ttl", "--slug", "keep", "--json"]);
      assert.equal(keep.code, 0, keep.stderr);
      const k = JSON.parse(keep.stdout);
      ours.push(k.id);
      assert.equal(k.lifetime.expiresAt, null, "local boxes have no default TTL");

      // Used before it expires: run touches it (last-touched moves, expiry does not).
      const run = await crabbox(home, ["run", "--id", s.id, "--", "true"]);
      assert.equal(run.code, 0, run.stderr);

      const wait = s.lifetime.expiresAt * 1000 - Date.now() + 1100;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));

      const dry = await crabbox(home, ["cleanup", "--dry-run", "--json"]);
      assert.equal(dry.code, 0, dry.stderr);
      const d = JSON.parse(dry.stdout);
      assert.deepEqual(d.expired.map((e: { id: string }) => e.id), [s.id]);
      assert.deepEqual(d.released, []);
      assert.ok((await netnsNames()).includes(s.id), "--dry-run left the box running");

      const real = await crabbox(home, ["cleanup"]);
      assert.equal(real.code, 0, real.stderr);
      assert.match(real.stdout, new RegExp(`${s.id}\\s+ttl\\s+short\\s+local\\s+.*released`));
      const names = await netnsNames();
      assert.ok(!names.includes(s.id), "the expired box is gone");
      assert.ok(names.includes(k.id), "the box without a TTL stays");
      const list = await crabbox(home, ["list", "--json"]);
      assert.deepEqual(JSON.parse(list.stdout).map((l: { id: string }) => l.id), [k.id]);
    } finally {
      await crabbox(home, ["release", "--crew", "ttl"]);
      await Deno.remove(home, { recursive: true }).catch(() => {});
      assert.deepEqual((await netnsNames()).filter((n) => ours.includes(n)), []);
    }
  },
});
