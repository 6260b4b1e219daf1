import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import type { Provider } from "../../providers/types.ts";

const HSKEY = "hskey-auth-8f3Jk29dLq0ZpXw7"; // a Headscale key: no tskey- prefix to match

/** A provider whose API error echoes the request body (user-data with the auth key) back. */
function echoing(): Provider {
  const p = memoryProvider("echo");
  return {
    ...p,
    create(spec) {
      return Promise.reject(
        new CrabboxError(
          "provider",
          "echo",
          `create rejected: ${JSON.stringify({ user_data: spec.userData })}`,
        ),
      );
    },
  };
}

Deno.test("an auth key is redacted by value (hskey-…) even when a provider error echoes the request body", async () => {
  const world = await cliWorld({ echo: echoing() });
  world.env.CRABBOX_TAILSCALE_AUTH_KEY = HSKEY;
  try {
    const r = await world.run([
      "warmup",
      "--crew",
      "hs",
      "--slug",
      "a",
      "--provider",
      "echo",
      "--tailscale",
    ]);
    assert.equal(r.code, 4, r.stderr);
    assert.ok(r.stderr.includes("create rejected"), r.stderr);
    assert.ok(!r.stderr.includes(HSKEY), "the key never reaches stderr");
    assert.ok(!r.stdout.includes(HSKEY));
    assert.ok(r.stderr.includes("[redacted]"), r.stderr);
  } finally {
    await world.close();
  }
});
