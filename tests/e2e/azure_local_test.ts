/**
 * An Azure lease over real SSH: the fake ARM API hands out a real `local`
 * box's address as the VM's public IP; the CLI authenticates with client
 * credentials against the fake Entra token endpoint.
 */
import assert from "node:assert/strict";
import { startFakeAzure } from "../fakes/azure.ts";
import { runCloudFlow } from "./_cloud_flow.ts";
import { requireE2E } from "./_local.ts";

const enabled = requireE2E();

Deno.test({
  name:
    "e2e: azure against the fake API lands on a real box: warmup, list, run, doctor --online, connect, release",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runCloudFlow({
      provider: "azure",
      crew: "az",
      startFake: (backing) => {
        const fake = startFakeAzure({
          onCreate: () => ({ ipAddress: backing.host }),
          retryAfter: 0,
          // The backing box only has root; Azure itself would refuse that admin name.
          reservedAdminNames: false,
        });
        return Promise.resolve({
          env: fake.env,
          held: () => [...fake.resources.keys()],
          listCalls: () =>
            fake.requests.filter((r) => r.method === "GET" && r.path.endsWith("/virtualMachines"))
              .length,
          checkBox: () => {
            const vm = [...fake.resources.values()].find((r) => r.kind === "vm")!;
            assert.equal(vm.tags.crew, "az");
            assert.equal(vm.tags["crabbox-expose"], "8080");
            assert.ok(vm.customData?.startsWith("#cloud-config"));
          },
          userData: () => [...fake.resources.values()].find((r) => r.kind === "vm")?.customData,
          [Symbol.asyncDispose]: () => fake.close(),
        });
      },
    }),
});
