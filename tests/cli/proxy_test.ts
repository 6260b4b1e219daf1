import assert from "node:assert/strict";
import { cliArgv, cliEnv, crabbox } from "../e2e/_cli.ts";
import { startFakeSprites } from "../fakes/sprites.ts";

Deno.test("crabbox proxy: bad lease id exits 2, unknown lease exits 3, a direct provider exits 2", async () => {
  const home = await Deno.makeTempDir({ prefix: "cbx-proxy-cli-" });
  try {
    const bad = await crabbox(home, ["proxy", "not-a-lease"]);
    assert.equal(bad.code, 2, bad.stderr);
    const missing = await crabbox(home, ["proxy", "cbx-0123456789ab"]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.equal(missing.stderr.trim().split("\n").length, 1);
    const direct = await crabbox(home, [
      "proxy",
      "--provider",
      "local",
      "--box",
      "x",
      "cbx-0123456789ab",
    ]);
    assert.equal(direct.code, 2, direct.stderr);
    assert.match(direct.stderr, /has no proxy/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("crabbox proxy: joins stdin/stdout to the box through the provider's proxy; no token in argv", async () => {
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of echo) c.readable.pipeTo(c.writable).catch(() => {});
  })();
  await using fake = startFakeSprites({
    bridge: () => ({ hostname: "127.0.0.1", port: (echo.addr as Deno.NetAddr).port }),
  });
  const home = await Deno.makeTempDir({ prefix: "cbx-proxy-cli-" });
  try {
    const made = await fetch(`${fake.url}/v1/sprites`, {
      method: "POST",
      headers: { authorization: `Bearer ${fake.token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "crabbox-a-0123456789ab", labels: [] }),
    });
    assert.equal(made.status, 201);
    await made.body?.cancel();
    const args = cliArgv([
      "proxy",
      "--provider",
      "sprites",
      "--box",
      "crabbox-a-0123456789ab",
      "cbx-0123456789ab",
    ]);
    assert.ok(!args.join(" ").includes(fake.token));
    const child = new Deno.Command(Deno.execPath(), {
      args,
      env: cliEnv(home, { SPRITES_TOKEN: fake.token, CRABBOX_SPRITES_API_URL: fake.url }),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("round trip\n"));
    const reader = child.stdout.getReader();
    let got = "";
    while (!got.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      got += new TextDecoder().decode(value);
    }
    assert.equal(got, "round trip\n");
    assert.deepEqual(fake.proxyHellos, [{ host: "localhost", port: 22 }]);
    await w.close();
    reader.releaseLock();
    await child.stdout.cancel();
    const status = await child.output().catch(() => undefined);
    assert.ok(status === undefined || status.code === 0);
  } finally {
    echo.close();
    await Deno.remove(home, { recursive: true });
  }
});
