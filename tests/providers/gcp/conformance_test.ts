/** GCP against the shared provider conformance suite (fake Compute Engine + OAuth). */
import { createGcpProvider } from "../../../providers/gcp/provider.ts";
import { startFakeGcp } from "../../fakes/gcp.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

runProviderConformance({
  name: "gcp",
  start: async (o) => {
    const fake = await startFakeGcp({ maxPerPage: o.pageSize ?? 500 });
    const sleeps = sleepRecorder();
    const files: Record<string, string> = {
      "/keys/sa.json": fake.keyFile,
      "/keys/wrong.json": fake.wrongKeyFile,
    };
    const provider = createGcpProvider({
      home: "/tmp/cbx-conformance-gcp",
      env: envOf({
        GOOGLE_APPLICATION_CREDENTIALS: o.credentials === "bad"
          ? "/keys/wrong.json"
          : "/keys/sa.json",
        CRABBOX_GCP_COMPUTE_URL: fake.url,
      }),
      config: {},
      fetch,
      log: () => {},
    }, {
      waitForSsh: sshRecorder().waitForSsh,
      pollIntervalMs: 1,
      sleep: sleeps.sleep,
      readFile: (p) =>
        files[p] !== undefined
          ? Promise.resolve(files[p])
          : Promise.reject(new Deno.errors.NotFound(p)),
    });
    const instance = (providerId: string) => {
      const i = fake.instances.get(providerId);
      if (!i) throw new Error(`the fake has no instance ${providerId}`);
      return i;
    };
    const wrongKey = JSON.parse(fake.wrongKeyFile).private_key.split("\n")[1] as string;
    return {
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      held: () => [
        ...[...fake.instances.values()].map((i) => i.name),
        ...[...fake.firewalls.keys()],
      ],
      handedOut: (l) => ({ host: instance(l.providerId).natIp, port: 22 }),
      delivered: (l) => {
        const i = instance(l.providerId);
        return {
          userData: i.metadata["user-data"],
          publicKeys: (i.metadata["ssh-keys"] ?? "").split("\n").filter(Boolean)
            .map((line) => line.slice(line.indexOf(":") + 1)),
        };
      },
      listPages: () =>
        fake.requests.filter((r) => r.method === "GET" && r.path.endsWith("/aggregated/instances"))
          .length,
      credentialsVariable: "GOOGLE_APPLICATION_CREDENTIALS",
      badSecret: wrongKey,
      rateLimitHeader: "Retry-After",
      rateLimitNext: (seconds) =>
        fake.inject({
          method: "GET",
          match: /\/aggregated\/instances$/,
          status: 429,
          code: "rateLimitExceeded",
          message: "Rate Limit Exceeded",
          headers: { "retry-after": String(seconds) },
        }),
      capacityNext: () => {
        fake.exhausted.add("e2-standard-2");
        return "does not have enough resources available to fulfill the request";
      },
      failHalfwayNext: () =>
        fake.inject({
          method: "POST",
          match: /\/instances$/,
          status: 400,
          code: "invalid",
          message: "Invalid value for field 'resource.disks[0]'",
        }),
      [Symbol.asyncDispose]: () => fake.close(),
    };
  },
});
