/**
 * A Semaphore-shaped lease over real SSH: the fake Semaphore API hands out a
 * running job whose agent is a stand-in sshd inside a real `local` box,
 * reached as user `semaphore` on a non-22 port with the debug key the API
 * hands out, through the shared cloud flow. The key is stored 0600 under the
 * lease and deleted on release; the job is stopped.
 */
import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { runCloudFlow } from "./_cloud_flow.ts";
import { requireE2E } from "./_local.ts";
import { startSshStandIn } from "./_ssh_standins.ts";
import { tempKeyPair } from "./_e2e_util.ts";
import { startFakeSemaphore } from "../fakes/semaphore.ts";

const enabled = requireE2E();

async function leaseKeys(home: string): Promise<string[]> {
  const out: string[] = [];
  for await (const d of Deno.readDir(`${home}/keys`)) {
    try {
      await Deno.stat(`${home}/keys/${d.name}/provider_key`);
      out.push(`${home}/keys/${d.name}/provider_key`);
    } catch { /* none */ }
  }
  return out;
}

Deno.test({
  name: "e2e: semaphore job agent as semaphore with the handed-out key: warmup … release",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runCloudFlow({
      provider: "semaphore",
      crew: "sem",
      sshConfig: false,
      startFake: async (_backing, _home, box) => {
        const debug = await tempKeyPair("semaphore-debug");
        const agent = await startSshStandIn(box.netns, box.hostname, [
          { name: "semaphore", authorizedKey: debug.publicKey },
        ]);
        const fake = startFakeSemaphore({
          debugKey: debug.privateKey,
          onCreate: () => ({ ip: agent.host, sshPort: agent.port }),
        });
        return {
          env: {
            SEMAPHORE_API_TOKEN: fake.token,
            CRABBOX_SEMAPHORE_API_URL: fake.url,
            SEMAPHORE_PROJECT: "web",
          },
          endpoint: { host: agent.host, port: agent.port, user: "semaphore" },
          held: () =>
            fake.activeJobs().map((j) => String((j.body.metadata as { name: string }).name)),
          listCalls: () =>
            fake.requests.filter((r) => r.method === "GET" && r.path === "/jobs").length,
          checkBox: () => {
            const [job] = fake.activeJobs();
            const spec = job.body.spec as { commands: string[] };
            assert.match(spec.commands.at(-1)!, /^sleep [0-9]+$/, "a keepalive keeps the job up");
          },
          afterRun: async (home, env) => {
            const keys = await leaseKeys(home);
            assert.equal(keys.length, 1);
            assert.equal((await Deno.stat(keys[0])).mode! & 0o777, 0o600);
            const who = await crabbox(home, [
              "run",
              "--id",
              "sem/api",
              "--",
              "sh",
              "-c",
              'echo "$USER"',
            ], env);
            assert.equal(who.code, 0, who.stderr);
            assert.equal(who.stdout.trim(), "semaphore");
          },
          afterRelease: async (home) => {
            assert.deepEqual(await leaseKeys(home), [], "the debug key is deleted on release");
            assert.ok([...fake.jobs.values()].every((j) => j.result === "STOPPED"));
          },
          [Symbol.asyncDispose]: async () => {
            await fake.close();
            await agent.stop();
            await debug.remove();
          },
        };
      },
    }),
});
