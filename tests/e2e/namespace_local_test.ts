/**
 * A Namespace lease over real SSH through the proxy seam: the fake Compute
 * API (Connect JSON) boots an "instance" by writing its
 * `experimental.authorizedSshKeys` into a real `local` box's authorized_keys,
 * and the instance's `ssh` service endpoint (PROXY_OVER_SECURE_WEBSOCKET)
 * bridges to that box's sshd; everything goes through `crabbox proxy`.
 */
import assert from "node:assert/strict";
import { requireE2E } from "./_local.ts";
import { runGatewayFlow } from "./_gateway_flow.ts";
import { startFakeNamespace } from "../fakes/namespace.ts";

Deno.test({
  name:
    "e2e: warmup --provider namespace authorizes the crew key and reaches sshd through the ingress via crabbox proxy",
  ignore: !requireE2E(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runGatewayFlow({
      provider: "namespace",
      crew: "ns",
      config: () => "",
      startFake: async (box) => {
        const fake = startFakeNamespace({
          bridge: () => ({ hostname: box.target.host, port: box.target.port }),
          authorizedKeysFile: () => box.authorizedKeysFile,
        });
        const tokenFile = `${box.authorizedKeysFile}.nsc-token.json`;
        await Deno.writeTextFile(tokenFile, JSON.stringify({ bearer_token: fake.token }));
        return {
          env: { NSC_TOKEN_FILE: tokenFile, CRABBOX_NAMESPACE_API_URL: fake.url },
          secret: fake.token,
          held: () => [...fake.instances.keys()],
          proxyConnections: () => fake.ingressConnections,
          checkBox: (lease) => {
            const inst = [...fake.instances.values()][0];
            assert.equal(lease.ssh.host, inst.instanceId, "ssh names the instance");
            assert.equal(inst.status, "RUNNING");
            assert.ok(inst.labels.some((l) => l.name === "crew" && l.value === "ns"));
            assert.ok(fake.ingressConnections >= 1, "ssh went through the ingress");
            assert.ok(inst.extensions.length >= 1, "each connection extends the deadline");
          },
          [Symbol.asyncDispose]: () => fake.close(),
        };
      },
    }),
});
