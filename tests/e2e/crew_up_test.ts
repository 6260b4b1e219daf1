import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { netnsNames, requireE2E } from "./_local.ts";

const enabled = requireE2E();

Deno.test({
  name: "e2e: crew up -f twice on local creates the crew once; crew down -f releases it",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-e2e-up-" });
    const file = `${home}/crew.yaml`;
    // local boxes share this machine's filesystem: the init leaves a mark in the test's home.
    await Deno.writeTextFile(
      `${home}/init.sh`,
      `#!/bin/sh\necho ready > ${home}/init-ran-$(hostname)\n`,
    );
    await Deno.writeTextFile(
      file,
      [
        "crew: upd",
        "provider: local",
        "members:",
        "  - slug: db",
        "    expose: [5432]",
        "  - role: worker",
        "    count: 2",
        "    init: init.sh",
        "",
      ].join("\n"),
    );
    let ids: string[] = [];
    try {
      const first = await crabbox(home, ["crew", "up", "-f", file, "--json"]);
      assert.equal(first.code, 0, first.stderr);
      const up = JSON.parse(first.stdout);
      ids = up.created.map((l: { id: string }) => l.id);
      assert.deepEqual(up.created.map((l: { slug: string }) => l.slug), [
        "db",
        "worker-1",
        "worker-2",
      ]);
      const ran = await crabbox(home, [
        "run",
        "--id",
        "upd/worker-2",
        "--",
        "cat",
        "/tmp/crabbox-init-ran",
      ]);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(ran.stdout.trim(), "ready");

      const second = await crabbox(home, ["crew", "up", "-f", file, "--json"]);
      assert.equal(second.code, 0, second.stderr);
      const again = JSON.parse(second.stdout);
      assert.deepEqual(again.created, []);
      assert.deepEqual([...again.kept].sort(), [...ids].sort());
      const names = await netnsNames();
      assert.equal(names.filter((n) => ids.includes(n)).length, 3);
      const list = await crabbox(home, ["list", "--crew", "upd", "--json"]);
      assert.equal(JSON.parse(list.stdout).length, 3, "three members, not six");

      const down = await crabbox(home, ["crew", "down", "-f", file]);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual((await netnsNames()).filter((n) => ids.includes(n)), []);
    } finally {
      await crabbox(home, ["crew", "release", "upd"]);
      await Deno.remove(home, { recursive: true }).catch(() => {});
      assert.deepEqual((await netnsNames()).filter((n) => ids.includes(n)), []);
    }
  },
});
