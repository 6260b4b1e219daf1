/** Hetzner against the shared provider conformance suite (fake Hetzner Cloud API). */
import { createHetznerProvider } from "../../../providers/hetzner/provider.ts";
import { startFakeHetzner } from "../../fakes/hetzner.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_TOKEN = "hcloud-wrong-token-do-not-echo";

runProviderConformance({
  name: "hetzner",
  start: (o) => {
    const fake = startFakeHetzner({ maxPerPage: o.pageSize ?? 50 });
    const sleeps = sleepRecorder();
    const provider = createHetznerProvider({
      home: "/tmp/cbx-conformance-hetzner",
      env: envOf({
        HCLOUD_TOKEN: o.credentials === "bad" ? BAD_TOKEN : fake.token,
        CRABBOX_HETZNER_API_URL: fake.url,
      }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep });
    const server = (id: string) => {
      const s = fake.servers.get(Number(id));
      if (!s) throw new Error(`the fake has no server ${id}`);
      return s;
    };
    return Promise.resolve({
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      held: () => [
        ...[...fake.servers.values()].map((s) => s.name),
        ...[...fake.sshKeys.values()].map((k) => k.name),
      ],
      handedOut: (l) => ({ host: server(l.providerId).ipv4, port: 22 }),
      delivered: (l) => {
        const s = server(l.providerId);
        return {
          userData: s.userData,
          publicKeys: s.sshKeyIds.map((id) => fake.sshKeys.get(id)?.publicKey ?? ""),
        };
      },
      listPages: () =>
        fake.requests.filter((r) => r.method === "GET" && r.path === "/servers").length,
      credentialsVariable: "HCLOUD_TOKEN",
      rateLimitHeader: "RateLimit-Reset",
      badSecret: BAD_TOKEN,
      rateLimitNext: (seconds) =>
        fake.inject({
          method: "GET",
          match: "/servers",
          status: 429,
          code: "rate_limit_exceeded",
          message: "limit reached",
          rateLimitResetIn: seconds,
        }),
      capacityNext: () => {
        const words = "server type cpx22 has no capacity in fsn1 right now";
        fake.inject({
          method: "POST",
          match: "/servers",
          status: 412,
          code: "resource_unavailable",
          message: words,
        });
        return words;
      },
      failHalfwayNext: () =>
        fake.inject({
          method: "POST",
          match: "/servers",
          status: 500,
          code: "server_error",
          message: "internal error",
        }),
      [Symbol.asyncDispose]: () => fake.close(),
    });
  },
});
