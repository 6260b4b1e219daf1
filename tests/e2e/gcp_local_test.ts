/**
 * A GCP lease over real SSH: the fake Compute Engine API hands out a real
 * `local` box's address as the instance's natIP; the CLI authenticates with
 * a service-account key whose JWT the fake verifies.
 */
import assert from "node:assert/strict";
import { startFakeGcp } from "../fakes/gcp.ts";
import { runCloudFlow } from "./_cloud_flow.ts";
import { requireE2E } from "./_local.ts";

const enabled = requireE2E();

Deno.test({
  name:
    "e2e: gcp against the fake API lands on a real box: warmup, list, run, doctor --online, connect, release",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runCloudFlow({
      provider: "gcp",
      crew: "gc",
      startFake: async (backing, home) => {
        const fake = await startFakeGcp({ onCreate: () => ({ natIp: backing.host }) });
        const keyFile = `${home}/gcp-sa.json`;
        await Deno.writeTextFile(keyFile, fake.keyFile, { mode: 0o600 });
        return {
          env: { GOOGLE_APPLICATION_CREDENTIALS: keyFile, CRABBOX_GCP_COMPUTE_URL: fake.url },
          held: () => [...fake.instances.keys(), ...fake.firewalls.keys()],
          listCalls: () =>
            fake.requests.filter((r) => r.path.endsWith("/aggregated/instances")).length,
          checkBox: () => {
            const [inst] = [...fake.instances.values()];
            assert.equal(inst.labels.crew, "gc");
            assert.equal(inst.labels["crabbox-expose"], "8080");
            assert.ok(inst.metadata["user-data"].startsWith("#cloud-config"));
            assert.match(inst.metadata["ssh-keys"], /^root:ssh-ed25519 /);
            assert.deepEqual([...fake.firewalls.keys()], ["crabbox-crew-gc"]);
          },
          userData: () => [...fake.instances.values()][0]?.metadata["user-data"],
          [Symbol.asyncDispose]: () => fake.close(),
        };
      },
    }),
});
