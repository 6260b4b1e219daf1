import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { netnsNames, requireE2E } from "./_local.ts";

const enabled = requireE2E();

Deno.test({
  name: "e2e: warmup --role worker --count 3 on local yields worker-1..3, each its own box",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-e2e-count-" });
    let ids: string[] = [];
    try {
      const r = await crabbox(home, [
        "warmup",
        "--crew",
        "cnt",
        "--role",
        "worker",
        "--count",
        "3",
        "--provider",
        "local",
        "--json",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const leases = JSON.parse(r.stdout) as { id: string; slug: string }[];
      ids = leases.map((l) => l.id);
      assert.deepEqual(leases.map((l) => l.slug), ["worker-1", "worker-2", "worker-3"]);
      const names = await netnsNames();
      for (const id of ids) assert.ok(names.includes(id), `box ${id} exists`);
      for (const slug of ["worker-1", "worker-2", "worker-3"]) {
        const h = await crabbox(home, ["run", "--id", `cnt/${slug}`, "--", "hostname"]);
        assert.equal(h.code, 0, h.stderr);
        assert.equal(h.stdout.trim(), `crabbox-${slug}`);
      }
    } finally {
      const rel = await crabbox(home, ["crew", "release", "cnt"]);
      await Deno.remove(home, { recursive: true }).catch(() => {});
      assert.equal(rel.code, 0, rel.stderr);
      assert.deepEqual((await netnsNames()).filter((n) => ids.includes(n)), []);
    }
  },
});
