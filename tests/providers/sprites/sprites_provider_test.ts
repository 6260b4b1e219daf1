import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/mod.ts";
import { createSpritesProvider, type SpritesOptions } from "../../../providers/sprites/provider.ts";
import { type FakeSpritesOptions, startFakeSprites } from "../../fakes/sprites.ts";
import {
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";
import { pipeTunnel } from "../../../lib/lease/mod.ts";

const HOME = "/tmp/cbx-sprites-test";

function setup(
  fakeOptions: FakeSpritesOptions = {},
  options: SpritesOptions = {},
  env: Record<string, string> = {},
) {
  const fake = startFakeSprites({ maxPerPage: 2, ...fakeOptions });
  const logs = logRecorder();
  const ssh = sshRecorder();
  const sleeps = sleepRecorder();
  const provider = createSpritesProvider({
    home: HOME,
    env: envOf({ SPRITES_TOKEN: fake.token, CRABBOX_SPRITES_API_URL: fake.url, ...env }),
    config: {},
    fetch,
    log: logs.log,
  }, { waitForSsh: ssh.waitForSsh, sleep: sleeps.sleep, ...options });
  return { fake, logs, ssh, sleeps, provider };
}

async function rejectsWith(p: Promise<unknown>, check: (e: CrabboxError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CrabboxError, `expected CrabboxError, got ${e}`);
    check(e);
    return true;
  });
}

Deno.test("sprites: create runs the sshd install over exec, authorizes the key, registers the service", async () => {
  const { fake, ssh, provider } = setup();
  await using _ = fake;
  const key = fakePublicKey();
  const spec = specFor("api", "pr-42", key);
  const lease = await provider.create(spec);
  const sprite = fake.sprites.get(lease.providerId)!;
  assert.ok(sprite, "sprite exists at the fake");
  assert.equal(sprite.execs.length, 1);
  assert.deepEqual(sprite.execs[0].argv.slice(0, 2), ["bash", "-lc"]);
  assert.equal(sprite.execs[0].env.CRABBOX_SSH_PUBLIC_KEY, key);
  assert.equal(sprite.execs[0].code, 0);
  assert.equal(
    (await Deno.readTextFile(`${sprite.home}/.ssh/authorized_keys`)).trim(),
    key,
  );
  assert.deepEqual(sprite.services, ["sshd"]);
  assert.equal(lease.labels.crew, "pr-42");
  assert.equal(lease.ssh?.host, lease.providerId);
  assert.equal(lease.ssh?.user, "sprite");
  const proxy = lease.ssh!.proxyCommand!;
  assert.deepEqual(
    proxy.slice(-10),
    [
      "proxy",
      "--home",
      HOME,
      "--provider",
      "sprites",
      "--box",
      lease.providerId,
      "--port",
      "22",
      spec.leaseId,
    ].slice(-11),
  );
  assert.ok(!proxy.join(" ").includes(fake.token), "no token in the proxy command");
  assert.equal(ssh.calls.length, 1, "waited for ssh through the proxy target");
  assert.ok(ssh.calls[0].target.proxyCommand);
  // A second install run (e.g. a retry) adds the key once and keeps one service.
  const post = fake.requests.find((r) => r.method === "POST")!;
  assert.equal(post.status, 201);
  assert.equal(post.headers.authorization, "[redacted]");
});

Deno.test("sprites: list pages through continuation tokens, reads labels per sprite, filters by crew", async () => {
  const { fake, provider } = setup({ maxPerPage: 2 }, { waitForSsh: false });
  await using _ = fake;
  const key = fakePublicKey();
  const made = [];
  for (
    const [slug, crew] of [["a", "x"], ["b", "x"], ["c", "y"], ["d", "x"], [
      "e",
      undefined,
    ]] as const
  ) {
    made.push(await provider.create(specFor(slug, crew, key)));
  }
  fake.sprites.set("crabbox-personal", {
    ...fake.sprites.get(made[0].providerId)!,
    name: "crabbox-personal",
    labels: ["mine"],
    execs: [],
    services: [],
  });
  const all = await provider.list({});
  assert.equal(all.length, 5);
  const xs = await provider.list({ crew: "x" });
  assert.deepEqual(xs.map((l) => l.labels.slug).sort(), ["a", "b", "d"]);
  const pages = fake.requests.filter((r) => r.method === "GET" && r.path === "/v1/sprites");
  assert.ok(pages.some((r) => r.query.continuation_token), "followed a continuation token");
  assert.ok(pages.every((r) => r.query.prefix === "crabbox-" && r.query.max_results === "50"));
  fake.sprites.delete("crabbox-personal");
  for (const l of made) await provider.delete(l);
  assert.equal(fake.sprites.size, 0);
  assert.deepEqual(await provider.list({}), []);
});

Deno.test("sprites: list uses labels in list items when the API returns them (no per-sprite GET)", async () => {
  const { fake, provider } = setup({ listLabels: true }, { waitForSsh: false });
  await using _ = fake;
  await provider.create(specFor("a", "x", fakePublicKey()));
  const before = fake.requests.length;
  assert.equal((await provider.list({ crew: "x" })).length, 1);
  assert.ok(fake.requests.slice(before).every((r) => r.path === "/v1/sprites"));
});

Deno.test("sprites: delete refuses a sprite of another lease; deleting a gone sprite succeeds", async () => {
  const { fake, provider } = setup({}, { waitForSsh: false });
  await using _ = fake;
  const lease = await provider.create(specFor("a", "x", fakePublicKey()));
  await rejectsWith(
    provider.delete({ ...lease, leaseId: "cbx-ffffffffffff" }),
    (e) => assert.equal(e.code, "sprites_not_ours"),
  );
  await provider.delete(lease);
  await provider.delete(lease);
  assert.equal(await provider.get(lease.providerId), undefined);
  await rejectsWith(
    provider.delete({ ...lease, providerId: "../x" }),
    (e) => assert.equal(e.exitStatus, 2),
  );
});

Deno.test("sprites: 429 waits Retry-After (bounded), then succeeds or exits 4 with Sprites' message", async () => {
  const { fake, sleeps, provider } = setup({}, { waitForSsh: false, maxRetries: 2 });
  await using _ = fake;
  fake.inject({
    method: "POST",
    match: "/v1/sprites",
    status: 429,
    code: "sprite_creation_rate_limited",
    message: "too many sprites created",
    retryAfter: 3,
  });
  await provider.create(specFor("a", "x", fakePublicKey()));
  assert.deepEqual(sleeps.delays, [3000]);
  fake.inject({
    method: "POST",
    match: "/v1/sprites",
    status: 429,
    code: "sprite_creation_rate_limited",
    message: "too many sprites created",
    retryAfter: 2,
    times: 5,
  });
  await rejectsWith(provider.create(specFor("b", "x", fakePublicKey())), (e) => {
    assert.equal(e.exitStatus, 4);
    assert.match(e.message, /too many sprites created/);
  });
  assert.deepEqual(sleeps.delays, [3000, 2000, 2000]);
  assert.equal(fake.sprites.size, 1, "nothing half-created");
});

Deno.test("sprites: a concurrent-sprite limit is a provider error (exit 4); bad token exits 9", async () => {
  const { fake, provider } = setup({}, { waitForSsh: false });
  await using _ = fake;
  fake.inject({
    method: "POST",
    match: "/v1/sprites",
    status: 403,
    code: "concurrent_sprite_limit_exceeded",
    message: "limit of 3 sprites",
  });
  await rejectsWith(provider.create(specFor("a", "x", fakePublicKey())), (e) => {
    assert.equal(e.exitStatus, 4);
    assert.match(e.message, /limit of 3 sprites/);
  });
  const bad = createSpritesProvider({
    home: HOME,
    env: envOf({ SPRITES_TOKEN: "wrong-token", CRABBOX_SPRITES_API_URL: fake.url }),
    config: {},
    fetch,
    log: () => {},
  }, { waitForSsh: false });
  await rejectsWith(bad.list({}), (e) => {
    assert.equal(e.exitStatus, 9);
    assert.ok(!e.message.includes("wrong-token"));
  });
});

Deno.test("sprites: a failing sshd install deletes the sprite; --tailscale is refused", async () => {
  const { fake, provider } = setup({}, { waitForSsh: false });
  await using _ = fake;
  await rejectsWith(
    provider.create({ ...specFor("a", "x", fakePublicKey()), sshPublicKey: "" }),
    (e) => assert.equal(e.code, "sprites_sshd_install_failed"),
  );
  assert.equal(fake.sprites.size, 0, "the half-created sprite was deleted");
  await rejectsWith(
    provider.create({ ...specFor("a", "x", fakePublicKey()), tailscale: true }),
    (e) => assert.equal(e.exitStatus, 2),
  );
});

Deno.test("sprites: openTunnel sends the hello, waits for connected, then relays raw bytes", async () => {
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of echo) c.readable.pipeTo(c.writable).catch(() => {});
  })();
  const { fake, provider } = setup({
    bridge: () => ({ hostname: "127.0.0.1", port: (echo.addr as Deno.NetAddr).port }),
  }, { waitForSsh: false });
  try {
    const lease = await provider.create(specFor("a", "x", fakePublicKey()));
    const tunnel = await provider.openTunnel!(lease, 22);
    assert.deepEqual(fake.proxyHellos, [{ host: "localhost", port: 22 }]);
    const payload = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7919) & 0xff);
    const chunks: Uint8Array[] = [];
    let got = 0;
    const done = pipeTunnel(
      tunnel,
      new ReadableStream({ start: (c) => c.enqueue(payload) }),
      new WritableStream({
        write: (chunk, ctl) => {
          chunks.push(chunk);
          got += chunk.length;
          if (got >= payload.length) ctl.error(new Error("enough"));
        },
      }),
    ).catch(() => {});
    while (got < payload.length) await new Promise((r) => setTimeout(r, 5));
    const joined = new Uint8Array(got);
    let o = 0;
    for (const c of chunks) (joined.set(c, o), o += c.length);
    assert.deepEqual(joined, payload);
    await tunnel.writable.abort().catch(() => {});
    await done;
    // No bridge → the proxy answers an error status: an ssh error (exit 5).
    const noBridge = startFakeSprites();
    try {
      const p2 = createSpritesProvider({
        home: HOME,
        env: envOf({ SPRITES_TOKEN: noBridge.token, CRABBOX_SPRITES_API_URL: noBridge.url }),
        config: {},
        fetch,
        log: () => {},
      }, { waitForSsh: false });
      const l2 = await p2.create(specFor("b", "x", fakePublicKey()));
      await rejectsWith(p2.openTunnel!(l2, 22), (e) => assert.equal(e.exitStatus, 5));
    } finally {
      await noBridge.close();
    }
  } finally {
    echo.close();
    await fake.close();
  }
});
