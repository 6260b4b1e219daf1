/**
 * A Proxmox-shaped lease over real SSH: the fake PVE API clones, configures
 * and starts a "VM" whose guest-agent IPv4 is a stand-in sshd (port 22 on its
 * own loopback address) inside a real `local` box; at boot the fake applies
 * cloud-init's `ciuser` and the double-encoded `sshkeys` the provider sent.
 * Through the shared cloud flow; release stops and destroys the VM.
 */
import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { runCloudFlow } from "./_cloud_flow.ts";
import { requireE2E } from "./_local.ts";
import { startSshStandIn } from "./_ssh_standins.ts";
import { startFakeProxmox } from "../fakes/proxmox.ts";

const enabled = requireE2E();

Deno.test({
  name: "e2e: proxmox VM at its guest-agent address as the cloud-init user: warmup … release",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runCloudFlow({
      provider: "proxmox",
      crew: "pve",
      sshConfig: false,
      startFake: async (_backing, _home, box) => {
        const [a, b, c] = crypto.getRandomValues(new Uint8Array(3));
        const address = `127.${200 + (a % 50)}.${b}.${1 + (c % 250)}`;
        const guest = await startSshStandIn(box.netns, box.hostname, [{ name: "crabbox" }], {
          address,
        });
        const fake = startFakeProxmox({
          taskPolls: 1,
          agentPolls: 1,
          onCreate: () => ({ ip: guest.host }),
          // cloud-init at first boot: the keys in `sshkeys` become the ciuser's authorized keys.
          onStart: (vm) => {
            for (const line of decodeURIComponent(vm.config.sshkeys ?? "").split("\n")) {
              if (line.trim()) guest.authorize(vm.config.ciuser, line);
            }
          },
        });
        return {
          env: {
            CRABBOX_PROXMOX_API_URL: fake.url,
            CRABBOX_PROXMOX_TOKEN_ID: fake.tokenId,
            CRABBOX_PROXMOX_TOKEN_SECRET: fake.tokenSecret,
            CRABBOX_PROXMOX_NODE: fake.node,
            CRABBOX_PROXMOX_TEMPLATE_ID: String(fake.templateId),
          },
          endpoint: { host: address, port: 22, user: "crabbox" },
          held: () => [...fake.vms.values()].filter((v) => !v.template).map((v) => v.name),
          listCalls: () =>
            fake.requests.filter((r) => r.method === "GET" && r.path === `/nodes/${fake.node}/qemu`)
              .length,
          checkBox: () => {
            const [vm] = [...fake.vms.values()].filter((v) => !v.template);
            assert.equal(vm.config.tags, "crabbox");
            assert.match(vm.config.description, /^crabbox labels\n/);
          },
          afterRun: async (home, env) => {
            const who = await crabbox(home, [
              "run",
              "--id",
              "pve/api",
              "--",
              "sh",
              "-c",
              'echo "$USER"',
            ], env);
            assert.equal(who.code, 0, who.stderr);
            assert.equal(who.stdout.trim(), "crabbox");
          },
          [Symbol.asyncDispose]: async () => {
            await fake.close();
            await guest.stop();
          },
        };
      },
    }),
});
