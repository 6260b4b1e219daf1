/**
 * `--tailscale` on gcp and azure goes through the generic lease path only
 * (registry features + cloud-init): the auth key minted at the fake
 * Tailscale API reaches the fake cloud inside the user data and nowhere
 * else, and the box carries the `crabbox-tailscale` label.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../lib/core/config.ts";
import { leaseBox } from "../../lib/lease/create.ts";
import { releaseLease } from "../../lib/lease/release.ts";
import { createAzureProvider } from "../../providers/azure/provider.ts";
import { createGcpProvider } from "../../providers/gcp/provider.ts";
import type { Provider } from "../../providers/types.ts";
import { startFakeAzure } from "../fakes/azure.ts";
import { startFakeGcp } from "../fakes/gcp.ts";
import { startFakeTailscale } from "../fakes/tailscale.ts";

interface Cloud extends AsyncDisposable {
  provider: Provider;
  /** User data the fake cloud received for its one box. */
  userData(): string;
  /** Every request body the fake cloud logged, as text. */
  bodies(): string;
  /** Labels/tags of its one box. */
  labels(): Record<string, string>;
  /** What it still holds. */
  held(): string[];
}

const clouds: Record<string, (env: Record<string, string>) => Promise<Cloud>> = {
  gcp: async (env) => {
    const fake = await startFakeGcp();
    Object.assign(env, {
      GOOGLE_OAUTH_ACCESS_TOKEN: fake.accessToken,
      CRABBOX_GCP_PROJECT: fake.project,
      CRABBOX_GCP_COMPUTE_URL: fake.url,
    });
    const provider = createGcpProvider(
      { home: "/tmp/unused", env: (k) => env[k], config: {}, fetch, log: () => {} },
      { waitForSsh: false, pollIntervalMs: 1 },
    );
    const one = () => [...fake.instances.values()][0];
    return {
      provider,
      userData: () => one().metadata["user-data"],
      bodies: () => JSON.stringify(fake.requests.map((r) => r.body ?? null)),
      labels: () => one().labels,
      held: () => [...fake.instances.keys(), ...fake.firewalls.keys()],
      [Symbol.asyncDispose]: () => fake.close(),
    };
  },
  azure: (env) => {
    const fake = startFakeAzure({ retryAfter: 0 });
    Object.assign(env, fake.env);
    const provider = createAzureProvider(
      { home: "/tmp/unused", env: (k) => env[k], config: {}, fetch, log: () => {} },
      { waitForSsh: false, pollIntervalMs: 1, sleep: () => Promise.resolve() },
    );
    const vm = () => [...fake.resources.values()].find((r) => r.kind === "vm")!;
    return Promise.resolve({
      provider,
      userData: () => vm().customData ?? "",
      // customData travels base64-encoded; decode it so a leaked key would show.
      bodies: () =>
        JSON.stringify(fake.requests.map((r) => r.body ?? null)).replace(
          /"customData":"([A-Za-z0-9+/=]*)"/g,
          (_, b64) =>
            JSON.stringify(
              new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))),
            ),
        ),
      labels: () => vm().tags,
      held: () => [...fake.resources.keys()],
      [Symbol.asyncDispose]: () => fake.close(),
    });
  },
};

for (const [name, start] of Object.entries(clouds)) {
  Deno.test(`--tailscale on ${name}: the auth key travels only in the cloud-init user data`, async () => {
    await using ts = startFakeTailscale();
    const env: Record<string, string> = { CRABBOX_OWNER: "alice@example.com", ...ts.env() };
    await using cloud = await start(env);
    const home = await Deno.makeTempDir({ prefix: `cbx-ts-${name}-` });
    try {
      const options = {
        home,
        env: (k: string) => env[k],
        config: await parseConfig("", `${home}/config.yaml`, () => undefined, {}),
        providers: { [name]: cloud.provider },
        log: () => {},
        noWait: true,
      };
      const lease = await leaseBox(
        { slug: "api", provider: name, expose: [8080], tailscale: true },
        { ...options, crew: "tsc" },
      );
      assert.equal(ts.keys.length, 1);
      const key = ts.keys[0].key;
      const userData = cloud.userData();
      assert.ok(userData.startsWith("#cloud-config\n"));
      assert.equal(userData.split(key).length - 1, 1, "the key is in the user data once");
      assert.equal(cloud.bodies().split(key).length - 1, 1, "and nowhere else the cloud saw");
      assert.equal(cloud.labels()["crabbox-tailscale"], "true");
      assert.equal(lease.tailscale, true);
      await releaseLease(lease, options);
      assert.deepEqual(cloud.held(), []);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
}
