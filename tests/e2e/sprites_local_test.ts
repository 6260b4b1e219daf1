/**
 * A Sprites lease over real SSH through the proxy seam: the fake Sprites API
 * runs the sshd install script over its exec WebSocket stand-in (which puts
 * the crew key on a real `local` box) and bridges its proxy WebSocket to that
 * box's sshd; everything goes through `crabbox proxy` as ssh's ProxyCommand.
 *
 * What this cannot exercise here: a real package install (sshd is already on
 * this machine, so the script skips apt-get), `sprite-env` (a recording
 * shim), and hibernation.
 */
import assert from "node:assert/strict";
import { requireE2E } from "./_local.ts";
import { runGatewayFlow } from "./_gateway_flow.ts";
import { startFakeSprites } from "../fakes/sprites.ts";

Deno.test({
  name:
    "e2e: warmup --provider sprites installs sshd over exec and reaches it through crabbox proxy",
  ignore: !requireE2E(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runGatewayFlow({
      provider: "sprites",
      crew: "sp",
      config: () => "sprites:\n  sshUser: root\n",
      startFake: (box) => {
        const fake = startFakeSprites({
          bridge: () => ({ hostname: box.target.host, port: box.target.port }),
          authorizedKeysFile: () => box.authorizedKeysFile,
        });
        return Promise.resolve({
          env: { SPRITES_TOKEN: fake.token, CRABBOX_SPRITES_API_URL: fake.url },
          secret: fake.token,
          held: () => [...fake.sprites.keys()],
          proxyConnections: () => fake.proxyHellos.length,
          checkBox: (lease) => {
            const sprite = [...fake.sprites.values()][0];
            assert.equal(lease.ssh.host, sprite.name, "ssh names the sprite");
            assert.equal(sprite.execs.length, 1, "sshd installed through one exec");
            assert.deepEqual(sprite.services, ["sshd"], "sshd registered as a service");
            assert.ok(fake.proxyHellos.length >= 1, "ssh went through the proxy");
          },
          [Symbol.asyncDispose]: () => fake.close(),
        });
      },
    }),
});
