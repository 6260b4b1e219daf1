/** Proxmox VE against the shared provider conformance suite (fake PVE API). */
import { createProxmoxProvider } from "../../../providers/proxmox/provider.ts";
import { startFakeProxmox } from "../../fakes/proxmox.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_SECRET = "11111111-2222-3333-4444-do-not-echo0";

runProviderConformance({
  name: "proxmox",
  start: (o) => {
    const fake = startFakeProxmox({ taskPolls: 1, agentPolls: 1 });
    const sleeps = sleepRecorder();
    const provider = createProxmoxProvider({
      home: "/tmp/cbx-conformance-proxmox",
      env: envOf({
        CRABBOX_PROXMOX_API_URL: fake.url,
        CRABBOX_PROXMOX_TOKEN_ID: fake.tokenId,
        CRABBOX_PROXMOX_TOKEN_SECRET: o.credentials === "bad" ? BAD_SECRET : fake.tokenSecret,
        CRABBOX_PROXMOX_NODE: fake.node,
        CRABBOX_PROXMOX_TEMPLATE_ID: String(fake.templateId),
      }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep });
    const vm = (id: string) => {
      const v = fake.vms.get(Number(id));
      if (!v) throw new Error(`the fake has no VM ${id}`);
      return v;
    };
    return Promise.resolve({
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      held: () => [...fake.vms.values()].filter((v) => !v.template).map((v) => v.name),
      handedOut: (l) => ({ host: vm(l.providerId).ip, port: 22 }),
      delivered: (l) => ({
        publicKeys: decodeURIComponent(vm(l.providerId).config.sshkeys ?? "").split("\n"),
      }),
      // GET /nodes/{node}/qemu has no pagination.
      credentialsVariable: "CRABBOX_PROXMOX_TOKEN_SECRET",
      badSecret: BAD_SECRET,
      rateLimitHeader: "Retry-After",
      rateLimitNext: (seconds) =>
        fake.inject({
          method: "GET",
          match: `/nodes/${fake.node}/qemu`,
          status: 429,
          code: "too many requests",
          headers: { "retry-after": String(seconds) },
        }),
      capacityNext: () => {
        const words = "storage 'local-lvm' does not have enough free space";
        fake.inject({
          method: "POST",
          match: /\/clone$/,
          status: 500,
          code: "full",
          message: words,
        });
        return words;
      },
      failHalfwayNext: () =>
        fake.inject({
          method: "POST",
          match: /\/status\/start$/,
          status: 500,
          code: "start failed",
          message: "start failed: QEMU exited with code 1",
        }),
      [Symbol.asyncDispose]: () => fake.close(),
    });
  },
});
