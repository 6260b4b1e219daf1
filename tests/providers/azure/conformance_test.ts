/** Azure against the shared provider conformance suite (fake ARM + Entra token endpoint). */
import { createAzureProvider } from "../../../providers/azure/provider.ts";
import { startFakeAzure } from "../../fakes/azure.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_SECRET = "azure-wrong-secret-do-not-echo";

runProviderConformance({
  name: "azure",
  start: (o) => {
    const fake = startFakeAzure({ maxPerPage: o.pageSize ?? 50 });
    const sleeps = sleepRecorder();
    const provider = createAzureProvider({
      home: "/tmp/cbx-conformance-azure",
      env: envOf({
        ...fake.env,
        ...(o.credentials === "bad" ? { AZURE_CLIENT_SECRET: BAD_SECRET } : {}),
      }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep });
    const vm = (name: string) => {
      const r = fake.resources.get(`vm/${name}`);
      if (!r) throw new Error(`the fake has no VM ${name}`);
      return r;
    };
    return Promise.resolve({
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      // The configured resource group is a container crabbox creates once and keeps.
      held: () => [...fake.resources.values()].map((r) => r.name),
      handedOut: (l) => ({
        host: String(fake.resources.get(`pip/${l.providerId}-pip`)?.properties.ipAddress ?? ""),
        port: 22,
      }),
      delivered: (l) => {
        const r = vm(l.providerId);
        const os = r.properties.osProfile as {
          linuxConfiguration?: { ssh?: { publicKeys?: { keyData: string }[] } };
        };
        return {
          userData: r.customData,
          publicKeys: (os.linuxConfiguration?.ssh?.publicKeys ?? []).map((k) => k.keyData),
        };
      },
      listPages: () =>
        fake.requests.filter((r) => r.method === "GET" && r.path.endsWith("/virtualMachines"))
          .length,
      credentialsVariable: "AZURE_CLIENT_SECRET",
      badSecret: BAD_SECRET,
      rateLimitHeader: "Retry-After",
      rateLimitNext: (seconds) =>
        fake.inject({
          method: "GET",
          match: /\/virtualMachines$/,
          status: 429,
          code: "TooManyRequests",
          message: "The request is being throttled.",
          headers: { "retry-after": String(seconds) },
        }),
      capacityNext: () => {
        const words = "exceeding approved standardBSFamily Cores quota";
        fake.inject({
          method: "PUT",
          match: /virtualMachines\/[^/]+$/,
          status: 409,
          code: "OperationNotAllowed",
          message: `Operation could not be completed as it results in ${words}.`,
        });
        return words;
      },
      failHalfwayNext: () =>
        fake.inject({
          method: "PUT",
          match: /networkInterfaces\/[^/]+$/,
          status: 400,
          code: "InvalidParameter",
          message: "The value of parameter ipConfigurations is invalid.",
        }),
      [Symbol.asyncDispose]: () => fake.close(),
    });
  },
});
