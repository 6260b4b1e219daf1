// doctor's crew-mesh check and an --export start that never finished: the
// ssh argv recorded as `starting` in daemon.json, with or without a process
// running it (a connect killed between spawn and record, or before spawn).
import assert from "node:assert/strict";
import { runDoctor } from "../../lib/doctor/checks.ts";
import { daemonFixture } from "./_daemon_fixture.ts";

Deno.test({
  name:
    "doctor crew-mesh: an unfinished --export start is a warning naming the member, with or without its ssh",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // Stands in for the member's ssh: a process of ours with a unique argv.
    const argv = ["sleep", `30.${crypto.getRandomValues(new Uint32Array(1))[0]}`];
    await using f = await daemonFixture("uf", (paths, lease) => ({
      version: 1,
      crew: "uf",
      startedAt: new Date().toISOString(),
      processes: [],
      starting: [{
        leaseId: lease.id,
        peer: "api",
        argv,
        controlPath: `${paths.dir}/cm/${lease.id}`,
      }],
    }));
    const child = new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null" }).spawn();
    try {
      const mesh = async () =>
        (await runDoctor({ ...f.options, crew: "uf" })).checks.find((c) => c.name === "crew-mesh")!;
      const running = await mesh();
      assert.equal(running.status, "warn");
      assert.equal(
        running.message,
        "an unfinished --export start (running, or cut off) has ssh running but unrecorded for api",
      );
      assert.deepEqual(running.details?.unrecorded, ["api"]);
      assert.match(String(running.details?.hint), /^crabbox crew disconnect uf stops every ssh/);

      child.kill("SIGKILL");
      await child.status;
      const gone = await mesh();
      assert.equal(gone.status, "warn");
      assert.equal(
        gone.message,
        "an unfinished --export start (running, or cut off) has no ssh for api",
      );
      assert.deepEqual(gone.details?.notStarted, ["api"]);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
    }
  },
});
