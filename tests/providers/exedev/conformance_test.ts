/** exe.dev against the shared provider conformance suite (fake exe.dev HTTPS API). */
import { createExedevProvider } from "../../../providers/exedev/provider.ts";
import { startFakeExedev } from "../../fakes/exedev.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_TOKEN = "exe1.wrong-token-do-not-echo";

runProviderConformance({
  name: "exe-dev",
  start: (o) => {
    const fake = startFakeExedev({
      foreign: [{
        vm_name: "personal",
        ssh_dest: "personal.exe.xyz",
        status: "running",
        tags: [],
        flags: {},
      }],
    });
    const sleeps = sleepRecorder();
    const provider = createExedevProvider({
      home: "/tmp/cbx-conformance-exedev",
      env: envOf({
        EXE_TOKEN: o.credentials === "bad" ? BAD_TOKEN : fake.token,
        CRABBOX_EXEDEV_API_URL: fake.url,
        HOME: "/home/alice",
      }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep });
    return Promise.resolve({
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      held: () => [...fake.vms.keys()].filter((n) => n !== "personal"),
      handedOut: (l) => ({ host: fake.vms.get(l.providerId)!.ssh_dest, port: 22 }),
      // `ls` has no pagination (one answer holds every VM): no listPages, the
      // pagination case still checks that all five boxes are listed once.
      // No `delivered`: exe.dev has no per-VM key injection (the user's own key).
      credentialsVariable: "EXE_TOKEN",
      badSecret: BAD_TOKEN,
      rateLimitHeader: "Retry-After",
      rateLimitNext: (seconds) =>
        fake.inject({ verb: "ls", status: 429, error: "rate limited", retryAfter: seconds }),
      capacityNext: () => {
        const words = "no capacity in region lon, try again later";
        fake.inject({ verb: "new", error: words });
        return words;
      },
      failHalfwayNext: () => {
        // The VM is made but still starting; then ls fails on every retry (1 + 4).
        fake.startPolls = 2;
        fake.inject({ verb: "ls", status: 500, error: "internal error", times: 5 });
      },
      [Symbol.asyncDispose]: () => fake.close(),
    });
  },
});
