/** Daytona against the shared provider conformance suite (fake Daytona API). */
import { createDaytonaProvider } from "../../../providers/daytona/provider.ts";
import { startFakeDaytona } from "../../fakes/daytona.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_KEY = "dtn_wrong_key_do_not_echo_000000";

runProviderConformance({
  name: "daytona",
  start: async (o) => {
    const fake = startFakeDaytona({ maxLimit: o.pageSize ?? 100, statePolls: 1, quota: undefined });
    const home = await Deno.makeTempDir({ prefix: "cbx-conformance-daytona-" });
    const sleeps = sleepRecorder();
    const provider = createDaytonaProvider({
      home,
      env: envOf({
        DAYTONA_API_KEY: o.credentials === "bad" ? BAD_KEY : fake.apiKey,
        CRABBOX_DAYTONA_API_URL: fake.url,
        DAYTONA_SNAPSHOT: "daytonaio/sandbox:0.4.3",
      }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep });
    return {
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      // Live sandboxes and gateway tokens crabbox stored.
      held: async () => {
        const files: string[] = [];
        try {
          for await (const e of Deno.readDir(`${home}/keys`)) {
            for await (const f of Deno.readDir(`${home}/keys/${e.name}`)) {
              files.push(`${e.name}/${f.name}`);
            }
          }
        } catch { /* none */ }
        return [
          ...[...fake.sandboxes.values()].filter((s) => s.destroyingPolls === undefined)
            .map((s) => String(s.body.name)),
          ...files,
        ];
      },
      // The gateway of the fake's sshCommand (no -p: port 22).
      handedOut: () => ({ host: "ssh.app.daytona.io", port: 22 }),
      // No `delivered`: the gateway authenticates the token, not the crew key.
      listPages: () =>
        fake.requests.filter((r) => r.method === "GET" && r.path === "/sandbox").length,
      credentialsVariable: "DAYTONA_API_KEY",
      badSecret: BAD_KEY,
      rateLimitHeader: "Retry-After",
      rateLimitNext: (seconds) =>
        fake.inject({
          method: "GET",
          match: "/sandbox",
          status: 429,
          code: "ThrottlerException",
          message: "Too Many Requests",
          headers: { "retry-after": String(seconds) },
        }),
      capacityNext: () => {
        const words = "Total CPU quota exceeded. Maximum allowed: 4";
        fake.inject({
          method: "POST",
          match: "/sandbox",
          status: 400,
          code: "quota",
          message: words,
        });
        return words;
      },
      // The sandbox starts, but no gateway token can be had.
      failHalfwayNext: () =>
        fake.inject({
          method: "POST",
          match: /\/ssh-access$/,
          status: 503,
          code: "unavailable",
          message: "ssh gateway unavailable",
        }),
      [Symbol.asyncDispose]: async () => {
        await fake.close();
        await Deno.remove(home, { recursive: true });
      },
    };
  },
});
