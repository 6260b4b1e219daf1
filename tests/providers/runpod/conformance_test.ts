/** RunPod against the shared provider conformance suite (fake RunPod REST API v1). */
import { createRunpodProvider } from "../../../providers/runpod/provider.ts";
import { startFakeRunpod } from "../../fakes/runpod.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_KEY = "rpa_WRONG_KEY_DO_NOT_ECHO_0000";

runProviderConformance({
  name: "runpod",
  start: (o) => {
    const fake = startFakeRunpod({ startPolls: 1 });
    const sleeps = sleepRecorder();
    const provider = createRunpodProvider({
      home: "/tmp/cbx-conformance-runpod",
      env: envOf({
        RUNPOD_API_KEY: o.credentials === "bad" ? BAD_KEY : fake.token,
        CRABBOX_RUNPOD_API_URL: fake.url,
      }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep });
    const pod = (id: string) => {
      const p = fake.pods.get(id);
      if (!p) throw new Error(`the fake has no pod ${id}`);
      return p;
    };
    return Promise.resolve({
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      held: () => [...fake.pods.values()].map((p) => String(p.body.name)),
      handedOut: (l) => ({ host: pod(l.providerId).publicIp, port: pod(l.providerId).sshPort }),
      delivered: (l) => ({
        publicKeys: [String((pod(l.providerId).body.env as Record<string, string>).PUBLIC_KEY)],
      }),
      // GET /pods is a plain array without pagination: no page count to check.
      credentialsVariable: "RUNPOD_API_KEY",
      badSecret: BAD_KEY,
      rateLimitHeader: "Retry-After",
      rateLimitNext: (seconds) =>
        fake.inject({
          method: "GET",
          match: "/pods",
          status: 429,
          code: "rate_limited",
          message: "Too Many Requests",
          headers: { "retry-after": String(seconds) },
        }),
      capacityNext: () => {
        const words =
          "There are no longer any instances available with the requested specifications";
        fake.inject({
          method: "POST",
          match: "/pods",
          status: 500,
          code: "capacity",
          message: words,
        });
        return words;
      },
      // The pod exists; every later read of it fails (after the bounded retries).
      failHalfwayNext: () =>
        fake.inject({
          method: "GET",
          match: /^\/pods\/.+/,
          status: 502,
          code: "bad_gateway",
          message: "upstream error",
          times: 50,
        }),
      [Symbol.asyncDispose]: () => fake.close(),
    });
  },
});
