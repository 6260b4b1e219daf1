/** Sprites against the shared provider conformance suite (fake Sprites API with a real exec stand-in). */
import { createSpritesProvider } from "../../../providers/sprites/provider.ts";
import { startFakeSprites } from "../../fakes/sprites.ts";
import { envOf, sleepRecorder, sshRecorder } from "../cloud_helpers.ts";
import { fakeConformanceKey, runProviderConformance } from "../conformance.ts";

const BAD_TOKEN = "sprites-wrong-token-do-not-echo";

runProviderConformance({
  name: "sprites",
  start: (o) => {
    const fake = startFakeSprites({ maxPerPage: o.pageSize ?? 50 });
    const sleeps = sleepRecorder();
    const provider = createSpritesProvider({
      home: "/tmp/cbx-conformance-sprites",
      env: envOf({
        SPRITES_TOKEN: o.credentials === "bad" ? BAD_TOKEN : fake.token,
        CRABBOX_SPRITES_API_URL: fake.url,
      }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep });
    const sprite = (name: string) => {
      const s = fake.sprites.get(name);
      if (!s) throw new Error(`the fake has no sprite ${name}`);
      return s;
    };
    return Promise.resolve({
      provider,
      sleeps: sleeps.delays,
      key: fakeConformanceKey,
      held: () => [...fake.sprites.keys()],
      // A sprite has no address: ssh names the sprite and goes through its proxy.
      handedOut: (l) => ({ host: sprite(l.providerId).name, port: 22 }),
      delivered: async (l) => ({
        publicKeys: (await Deno.readTextFile(`${sprite(l.providerId).home}/.ssh/authorized_keys`))
          .split("\n").filter(Boolean),
      }),
      listPages: () =>
        fake.requests.filter((r) => r.method === "GET" && r.path === "/v1/sprites").length,
      credentialsVariable: "SPRITES_TOKEN",
      badSecret: BAD_TOKEN,
      rateLimitHeader: "Retry-After",
      rateLimitNext: (seconds) =>
        fake.inject({
          method: "GET",
          match: "/v1/sprites",
          status: 429,
          code: "rate_limited",
          message: "too many requests",
          retryAfter: seconds,
        }),
      capacityNext: () => {
        const words = "you have reached the limit of 3 concurrent sprites";
        fake.inject({
          method: "POST",
          match: "/v1/sprites",
          status: 429,
          code: "concurrent_sprite_limit_exceeded",
          message: words,
        });
        return words;
      },
      failHalfwayNext: () =>
        fake.inject({
          match: /\/exec$/,
          status: 502,
          code: "exec_unavailable",
          message: "exec gateway unavailable",
        }),
      [Symbol.asyncDispose]: () => fake.close(),
    });
  },
});
