/**
 * A Daytona-shaped lease over real SSH: the fake Daytona API hands out
 * gateway tokens whose `sshCommand` points at a stand-in gateway — an sshd in
 * a real `local` box where each token is a user that needs no key (the token
 * is the credential) — through the shared cloud flow. Tokens last one minute,
 * inside the renewal margin, so every use renews one; no token ever shows in
 * a claim or in output, and release voids them and deletes the user file.
 */
import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { runCloudFlow } from "./_cloud_flow.ts";
import { requireE2E } from "./_local.ts";
import { startSshStandIn } from "./_ssh_standins.ts";
import { startFakeDaytona } from "../fakes/daytona.ts";

const enabled = requireE2E();

Deno.test({
  name: "e2e: daytona sandbox through a token-as-user gateway, tokens renewed: warmup … release",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runCloudFlow({
      provider: "daytona",
      crew: "dtn",
      sshConfig: false,
      startFake: async (_backing, _home, box) => {
        const tokens = Array.from(
          { length: 12 },
          (_, i) => `dtnTok${i}${crypto.randomUUID().replaceAll("-", "")}`,
        );
        const gateway = await startSshStandIn(
          box.netns,
          box.hostname,
          tokens.map((name) => ({ name, noAuth: true })),
        );
        const fake = startFakeDaytona({
          tokens: [...tokens],
          gatewayHost: gateway.host,
          gatewayPort: gateway.port,
        });
        const noTokenIn = (text: string, where: string) => {
          for (const t of tokens) {
            assert.ok(!text.includes(t), `a gateway token leaked into ${where}`);
          }
        };
        return {
          env: {
            DAYTONA_API_KEY: fake.apiKey,
            CRABBOX_DAYTONA_API_URL: fake.url,
            DAYTONA_SNAPSHOT: "crabbox-test",
            CRABBOX_DAYTONA_SSH_ACCESS_MINUTES: "1",
          },
          endpoint: { host: gateway.host, port: gateway.port, user: "" },
          held: () =>
            [...fake.sandboxes.values()].filter((s) => s.destroyingPolls === undefined)
              .map((s) => String(s.body.name)),
          listCalls: () =>
            fake.requests.filter((r) => r.method === "GET" && r.path === "/sandbox").length,
          checkBox: () => {
            const [sb] = [...fake.sandboxes.values()];
            assert.equal(sb.labels.crew, "dtn");
            assert.equal(sb.body.autoStopInterval, 0);
          },
          afterRun: async (home, env) => {
            const issued = fake.tokens.size;
            const who = await crabbox(home, [
              "run",
              "--id",
              "dtn/api",
              "--",
              "sh",
              "-c",
              'echo "$USER"',
            ], env);
            assert.equal(who.code, 0, who.stderr);
            assert.ok(fake.tokens.size > issued, "the expiring token was renewed before ssh");
            assert.equal(
              who.stdout.trim(),
              [...fake.tokens.keys()].at(-1),
              "logged in as the new token",
            );
            for await (const c of Deno.readDir(`${home}/claims`)) {
              if (c.name.endsWith(".json")) {
                noTokenIn(await Deno.readTextFile(`${home}/claims/${c.name}`), "a claim");
              }
            }
            const list = await crabbox(home, ["list", "--json"], env);
            noTokenIn(list.stdout + list.stderr, "list output");
          },
          afterRelease: async (home) => {
            assert.equal(fake.tokens.size, 0, "the sandbox's gateway tokens are void");
            for await (const d of Deno.readDir(`${home}/keys`)) {
              await assert.rejects(
                Deno.stat(`${home}/keys/${d.name}/ssh_user.conf`),
                Deno.errors.NotFound,
              );
            }
          },
          [Symbol.asyncDispose]: async () => {
            await fake.close();
            await gateway.stop();
          },
        };
      },
    }),
});
