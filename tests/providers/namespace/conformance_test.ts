/** Namespace against the shared provider conformance suite (fake Compute API, Connect JSON). */
import { createNamespaceProvider } from "../../../providers/namespace/provider.ts";
import { startFakeNamespace } from "../../fakes/namespace.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_TOKEN = "nsc-wrong-token-do-not-echo";

runProviderConformance({
  name: "namespace",
  start: async (o) => {
    const fake = startFakeNamespace({ maxPerPage: o.pageSize ?? 100 });
    const dir = await Deno.makeTempDir({ prefix: "cbx-conf-nsc-" });
    await Deno.writeTextFile(
      `${dir}/token.json`,
      JSON.stringify({ bearer_token: o.credentials === "bad" ? BAD_TOKEN : fake.token }),
    );
    const sleeps = sleepRecorder();
    const provider = createNamespaceProvider({
      home: "/tmp/cbx-conformance-namespace",
      env: envOf({ NSC_TOKEN_FILE: `${dir}/token.json`, CRABBOX_NAMESPACE_API_URL: fake.url }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep });
    const instance = (id: string) => {
      const i = fake.instances.get(id);
      if (!i) throw new Error(`the fake has no instance ${id}`);
      return i;
    };
    return {
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      held: () => [...fake.instances.keys()],
      // No address: ssh names the instance and goes through its ingress endpoint.
      handedOut: (l) => ({ host: instance(l.providerId).instanceId, port: 22 }),
      delivered: (l) => ({ publicKeys: instance(l.providerId).authorizedSshKeys }),
      listPages: () => fake.requests.filter((r) => r.path.endsWith("/ListInstances")).length,
      credentialsVariable: "NSC_TOKEN_FILE",
      badSecret: BAD_TOKEN,
      rateLimitHeader: "Retry-After",
      rateLimitNext: (seconds) =>
        fake.inject({
          method: "ListInstances",
          code: "resource_exhausted",
          message: "rate limit exceeded",
          retryAfter: seconds,
        }),
      capacityNext: () => {
        const words = "no capacity for 2 vCPU / 4096 MB in us";
        fake.inject({ method: "CreateInstance", code: "resource_exhausted", message: words });
        return words;
      },
      failHalfwayNext: () =>
        fake.inject({ method: "WaitInstanceSync", code: "internal", message: "boot failed" }),
      [Symbol.asyncDispose]: async () => {
        await fake.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
});
