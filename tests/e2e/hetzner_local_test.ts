/**
 * A Hetzner-shaped lease over real SSH: the fake Hetzner API hands out the
 * address of a real `local` box as the server's public IPv4, so
 * `warmup --provider hetzner` → `run` → `crew connect` → a TCP round trip all
 * go through the Hetzner provider code and a real sshd.
 */
import assert from "node:assert/strict";
import { startFakeHetzner } from "../fakes/hetzner.ts";
import { runCloudFlow } from "./_cloud_flow.ts";
import { requireE2E } from "./_local.ts";

const enabled = requireE2E();

Deno.test({
  name:
    "e2e: warmup --provider hetzner against the fake API lands on a real box; connect reaches it",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runCloudFlow({
      provider: "hetzner",
      crew: "hz",
      startFake: (backing) => {
        const fake = startFakeHetzner({ onCreate: () => ({ ipv4: backing.host }) });
        return Promise.resolve({
          env: { HCLOUD_TOKEN: fake.token, CRABBOX_HETZNER_API_URL: fake.url },
          config: ["location: fsn1"],
          held: () => [
            ...[...fake.servers.values()].map((s) => s.name),
            ...[...fake.sshKeys.values()].map((k) => k.name),
          ],
          listCalls: () =>
            fake.requests.filter((r) => r.method === "GET" && r.path === "/servers").length,
          checkBox: () => {
            const [server] = [...fake.servers.values()];
            assert.equal(server.labels.crew, "hz");
            assert.equal(server.labels["crabbox-expose"], "8080");
            assert.ok(String(server.userData ?? "").startsWith("#cloud-config"));
          },
          userData: () => [...fake.servers.values()][0]?.userData,
          [Symbol.asyncDispose]: () => fake.close(),
        });
      },
    }),
});
