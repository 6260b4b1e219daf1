/** Semaphore against the shared provider conformance suite (fake Semaphore API v1alpha). */
import { createSemaphoreProvider } from "../../../providers/semaphore/provider.ts";
import { startFakeSemaphore } from "../../fakes/semaphore.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_TOKEN = "sem-wrong-token-do-not-echo";
const KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nY29uZm9ybWFuY2U=\n-----END OPENSSH PRIVATE KEY-----\n";

runProviderConformance({
  name: "semaphore",
  start: async (o) => {
    const fake = startFakeSemaphore({ debugKey: KEY, maxPageSize: o.pageSize ?? 100 });
    const home = await Deno.makeTempDir({ prefix: "cbx-conformance-semaphore-" });
    const sleeps = sleepRecorder();
    const provider = createSemaphoreProvider({
      home,
      env: envOf({
        SEMAPHORE_API_TOKEN: o.credentials === "bad" ? BAD_TOKEN : fake.token,
        CRABBOX_SEMAPHORE_API_URL: fake.url,
        SEMAPHORE_PROJECT: "web",
      }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep });
    const job = (id: string) => {
      const j = fake.jobs.get(id);
      if (!j) throw new Error(`the fake has no job ${id}`);
      return j;
    };
    return {
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      // Running jobs and debug keys crabbox stored: both must go with the lease.
      held: async () => {
        const keys: string[] = [];
        try {
          for await (const e of Deno.readDir(`${home}/keys`)) {
            try {
              await Deno.stat(`${home}/keys/${e.name}/provider_key`);
              keys.push(`key of ${e.name}`);
            } catch { /* no key */ }
          }
        } catch { /* no keys dir */ }
        return [
          ...fake.activeJobs().map((j) => String((j.body.metadata as { name: string }).name)),
          ...keys,
        ];
      },
      handedOut: (l) => ({ host: job(l.providerId).ip, port: job(l.providerId).sshPort }),
      // No `delivered`: Semaphore hands out its own key; the crew key never reaches the agent.
      listPages: () => fake.requests.filter((r) => r.method === "GET" && r.path === "/jobs").length,
      credentialsVariable: "SEMAPHORE_API_TOKEN",
      badSecret: BAD_TOKEN,
      rateLimitHeader: "Retry-After",
      rateLimitNext: (seconds) =>
        fake.inject({
          method: "GET",
          match: "/jobs",
          status: 429,
          code: "rate_limited",
          headers: { "retry-after": String(seconds) },
        }),
      capacityNext: () => {
        const words = "machine type f1-standard-2 is not available for your organization";
        fake.inject({
          method: "POST",
          match: "/jobs",
          status: 422,
          code: "unavailable",
          message: words,
        });
        return words;
      },
      // The job runs, but its debug key cannot be fetched.
      failHalfwayNext: () =>
        fake.inject({
          method: "GET",
          match: /\/debug_ssh_key$/,
          status: 500,
          code: "internal",
          message: "key service down",
          times: 50,
        }),
      [Symbol.asyncDispose]: async () => {
        await fake.close();
        await Deno.remove(home, { recursive: true });
      },
    };
  },
});
