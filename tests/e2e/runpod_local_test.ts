/**
 * A RunPod-shaped lease over real SSH: the fake RunPod API hands out a pod
 * whose public IP and mapped port 22 are a port relay (a non-22 port, the way
 * RunPod maps a pod's sshd) in front of a real `local` box, through the
 * shared cloud flow (warmup → list → run → doctor --online → crew connect
 * --export + TCP → release, fake empty). `--tailscale` is refused first.
 */
import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { runCloudFlow } from "./_cloud_flow.ts";
import { requireE2E } from "./_local.ts";
import { startPortRelay } from "./_ssh_standins.ts";
import { startFakeRunpod } from "../fakes/runpod.ts";

const enabled = requireE2E();

Deno.test({
  name:
    "e2e: runpod pod on a mapped non-22 port: warmup, list, run, doctor --online, connect, release",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runCloudFlow({
      provider: "runpod",
      crew: "rp",
      sshConfig: false,
      startFake: async (backing, home) => {
        const relay = await startPortRelay(backing);
        assert.notEqual(relay.port, 22);
        const fake = startFakeRunpod({
          onCreate: () => ({ publicIp: relay.host, sshPort: relay.port }),
        });
        const env = { RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url };
        const refused = await crabbox(home, [
          "warmup",
          "--crew",
          "rp",
          "--slug",
          "ts",
          "--provider",
          "runpod",
          "--tailscale",
        ], env);
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(refused.stderr, /runpod cannot join a tailnet/);
        assert.equal(fake.pods.size, 0);
        return {
          env,
          endpoint: { host: relay.host, port: relay.port, user: "root" },
          held: () => [...fake.pods.values()].map((p) => String(p.body.name)),
          listCalls: () =>
            fake.requests.filter((r) => r.method === "GET" && r.path === "/pods").length,
          checkBox: () => {
            const [pod] = [...fake.pods.values()];
            const env = pod.body.env as Record<string, string>;
            const crewKey = Deno.readTextFileSync(`${home}/keys/crew-rp/id_ed25519.pub`).trim();
            assert.equal(env.PUBLIC_KEY, crewKey, "the crew key travels as PUBLIC_KEY");
            assert.equal(env.CRABBOX_LABEL_CREW, "rp");
            assert.equal(pod.body.volumeInGb, 0);
            assert.deepEqual(pod.body.ports, ["22/tcp"]);
            assert.match(String(pod.body.name), /^crabbox-api-[0-9a-f]{12}$/);
          },
          [Symbol.asyncDispose]: async () => {
            await fake.close();
            await relay.stop();
          },
        };
      },
    }),
});
