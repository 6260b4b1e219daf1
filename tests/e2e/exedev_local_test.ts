/**
 * An exe.dev lease over real SSH: the fake exe.dev API answers `new` with an
 * `ssh_dest` of `root@<a real local box>`, and the box authorizes only the
 * user's own key (what exe.dev's SSH router does with keys registered on the
 * account), never the crew key.
 */
import assert from "node:assert/strict";
import { requireE2E } from "./_local.ts";
import { runGatewayFlow } from "./_gateway_flow.ts";
import { startFakeExedev } from "../fakes/exedev.ts";

Deno.test({
  name:
    "e2e: warmup --provider exe-dev reaches ssh_dest with the user's own key; connect reaches it",
  ignore: !requireE2E(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runGatewayFlow({
      provider: "exe-dev",
      crew: "ex",
      config: (box) => `exe-dev:\n  sshPort: ${box.target.port}\n  identityFile: ${box.keyPath}\n`,
      startFake: (box) => {
        const fake = startFakeExedev({ sshDest: () => `root@${box.target.host}` });
        return Promise.resolve({
          env: { EXE_TOKEN: fake.token, CRABBOX_EXEDEV_API_URL: fake.url },
          secret: fake.token,
          held: () => [...fake.vms.keys()],
          checkBox: (lease) => {
            const vm = [...fake.vms.values()][0];
            assert.equal(lease.ssh.host, box.target.host);
            // The box authorizes only box.keyPath (config identityFile): every ssh below
            // succeeds only with the user's own key.
            assert.ok(vm.tags.includes("crabbox-crew-ex"), JSON.stringify(vm.tags));
            assert.doesNotMatch(vm.vm_name, /-[0-9]+$/);
          },
          [Symbol.asyncDispose]: () => fake.close(),
        });
      },
    }),
});
