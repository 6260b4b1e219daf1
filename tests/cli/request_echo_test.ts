/**
 * A provider error that echoes the request (user data, auth key and all) is
 * printed without it: on stderr and in the `--json` error. The key is in the
 * `--init` file only, never in the environment, and has a prefix no list
 * knows, so by-value and by-prefix redaction cannot be what keeps it out.
 */

import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { createHetznerProvider } from "../../providers/hetzner/mod.ts";
import { startFakeHetzner } from "../fakes/hetzner.ts";
import { fakeProcess } from "../fakes/process.ts";
import { ensureClientKey } from "../../lib/ssh/keys.ts";
import { newLeaseId } from "../../lib/core/names.ts";
import {
  assertNoRequestData,
  ECHO_AUTH_KEY,
  ECHO_USER_DATA,
  envOf,
  fakePublicKey,
  sshRecorder,
} from "../providers/cloud_helpers.ts";

Deno.test("warmup: a Hetzner 422 echoing the request prints neither the init's key nor its lines (stderr and --json)", async () => {
  await using fake = startFakeHetzner();
  const provider = (home: string) =>
    createHetznerProvider({
      home,
      env: envOf({ HCLOUD_TOKEN: fake.token, CRABBOX_HETZNER_API_URL: fake.url }),
      config: {},
      fetch,
      log: () => {},
    }, { waitForSsh: sshRecorder().waitForSsh, pollIntervalMs: 1 });
  const world = await cliWorld();
  world.providers.hetzner = provider(world.home);
  // The crew key, made ahead with a public key the fake Hetzner accepts.
  await ensureClientKey(world.home, { crew: "echo", leaseId: newLeaseId() }, {
    process: fakeProcess({
      "ssh-keygen": async (call) => {
        const path = call.args[call.args.indexOf("-f") + 1];
        await Deno.writeTextFile(path, "fake private key\n", { mode: 0o600 });
        await Deno.writeTextFile(`${path}.pub`, `${fakePublicKey()}\n`);
        return {};
      },
    }),
  });
  const init = `${world.home}/init.sh`;
  // The init script carries the cloud-init lines and the key (as a user's script could).
  await Deno.writeTextFile(init, ECHO_USER_DATA);
  try {
    assert.ok(!Object.values(world.env).some((v) => v.includes(ECHO_AUTH_KEY)));
    for (const json of [false, true]) {
      fake.inject({
        method: "POST",
        match: "/servers",
        status: 422,
        code: "invalid_input",
        echoRequest: true,
      });
      const r = await world.run([
        "warmup",
        "--crew",
        "echo",
        "--slug",
        `a${json ? 1 : 0}`,
        "--provider",
        "hetzner",
        "--init",
        init,
        ...(json ? ["--json"] : []),
      ]);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /Hetzner rejected POST \/servers: invalid_input: \[request data\]/);
      if (json) {
        const last = r.stderr.trim().split("\n").at(-1) ?? "";
        assert.equal(JSON.parse(last).error.code, "hetzner_invalid_input");
      }
      assertNoRequestData(r.stderr);
      assertNoRequestData(r.stdout);
    }
  } finally {
    await world.close();
  }
});
