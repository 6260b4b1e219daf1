import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/mod.ts";
import {
  checkProxyReply,
  createSpriteBody,
  execUrl,
  listPath,
  parseSpritePage,
  parseSpritesError,
  proxyHello,
  rateLimitWaitMs,
  spriteName,
  spritesError,
  spritesSettings,
  spritesToken,
  spriteToLease,
} from "../../../providers/sprites/api.ts";
import {
  collectFrame,
  decodeFrame,
  encodeFrame,
  type ExecResult,
  exitFrame,
  StreamId,
} from "../../../providers/sprites/frames.ts";
import { sshdInstallScript } from "../../../providers/sprites/install.ts";
import { decodeFlatTags, encodeFlatTags } from "../../../providers/cloud/mod.ts";
import { encodeLabels } from "../../../lib/core/mod.ts";
import { envOf, fakePublicKey, specFor } from "../cloud_helpers.ts";

Deno.test("sprites frames: encode/decode round trip for every stream id", () => {
  for (const id of Object.values(StreamId)) {
    const payload = crypto.getRandomValues(new Uint8Array(17));
    const frame = encodeFrame(id, payload);
    assert.equal(frame[0], id);
    const back = decodeFrame(frame)!;
    assert.equal(back.stream, id);
    assert.deepEqual(back.payload, payload);
  }
  assert.equal(decodeFrame(new Uint8Array()), undefined);
  assert.equal(decodeFrame(Uint8Array.of(9, 1)), undefined, "unknown stream id");
  assert.deepEqual(exitFrame(300), Uint8Array.of(3, 300 & 0xff));
});

Deno.test("sprites frames: the collector keeps stdout/stderr apart and stops at the exit frame", () => {
  const r: ExecResult = { stdout: "", stderr: "" };
  const t = new TextEncoder();
  assert.equal(collectFrame(r, encodeFrame(StreamId.stdout, t.encode("hel"))), false);
  assert.equal(collectFrame(r, encodeFrame(StreamId.stderr, t.encode("warn"))), false);
  assert.equal(collectFrame(r, encodeFrame(StreamId.stdout, t.encode("lo"))), false);
  assert.equal(collectFrame(r, encodeFrame(StreamId.stdin, t.encode("ignored"))), false);
  assert.equal(collectFrame(r, exitFrame(7)), true);
  assert.deepEqual(r, { stdout: "hello", stderr: "warn", code: 7 });
  const bare: ExecResult = { stdout: "", stderr: "" };
  assert.equal(collectFrame(bare, Uint8Array.of(StreamId.exit)), true);
  assert.equal(bare.code, 0);
});

Deno.test("flat tags: reserved labels round-trip, values with '-' included; foreign tags ignored", () => {
  const labels = encodeLabels({
    leaseId: "cbx-0123456789ab",
    crew: "pr-42",
    slug: "db-2",
    expose: [5432, 8080],
    owner: "alice",
    tailscale: true,
  });
  const tags = encodeFlatTags(labels);
  assert.ok(tags.includes("crabbox"));
  assert.ok(tags.includes("crabbox-lease-cbx-0123456789ab"));
  assert.ok(tags.includes("crabbox-crew-pr-42"));
  for (const tag of tags) assert.match(tag, /^[a-z0-9-]+$/);
  assert.deepEqual(decodeFlatTags([...tags, "personal", "crabbox-unknown-x", 7]), labels);
});

Deno.test("sprites api: settings, token order, names, bodies, list path, exec and proxy URLs", () => {
  assert.equal(spritesSettings(envOf({}), {}).baseUrl, "https://api.sprites.dev");
  assert.equal(
    spritesSettings(envOf({ CRABBOX_SPRITES_API_URL: "http://127.0.0.1:9/" }), { sshUser: "root" })
      .sshUser,
    "root",
  );
  assert.throws(
    () => spritesSettings(envOf({ CRABBOX_SPRITES_API_URL: "http://example.com" }), {}),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 2,
  );
  assert.deepEqual(spritesToken(envOf({ SPRITE_TOKEN: "b", SETUP_SPRITE_TOKEN: "c" })), {
    token: "b",
    variable: "SPRITE_TOKEN",
  });
  assert.equal(spritesToken(envOf({ CRABBOX_SPRITES_TOKEN: "a", SPRITES_TOKEN: "b" })).token, "a");
  assert.throws(
    () => spritesToken(envOf({})),
    (e: unknown) =>
      e instanceof CrabboxError && e.exitStatus === 9 && e.message.includes("SPRITES_TOKEN"),
  );
  const spec = specFor("api", "pr-42", fakePublicKey());
  assert.equal(spriteName(spec), `crabbox-api-${spec.leaseId.slice(4)}`);
  const body = createSpriteBody(spec);
  assert.deepEqual(Object.keys(body).sort(), ["labels", "name"]);
  assert.deepEqual(decodeFlatTags(body.labels), spec.labels);
  assert.equal(listPath(undefined), "/v1/sprites?prefix=crabbox-&max_results=50");
  assert.equal(
    listPath("tok 1"),
    "/v1/sprites?prefix=crabbox-&max_results=50&continuation_token=tok+1",
  );
  const url = execUrl("https://api.sprites.dev", "crabbox-a-1", ["bash", "-lc", "echo 'x y'"], {
    K: "a=b",
  });
  assert.equal(url.protocol, "wss:");
  assert.equal(url.pathname, "/v1/sprites/crabbox-a-1/exec");
  assert.deepEqual(url.searchParams.getAll("cmd"), ["bash", "-lc", "echo 'x y'"]);
  assert.deepEqual(url.searchParams.getAll("env"), ["K=a=b"]);
  assert.equal(url.searchParams.get("stdin"), "false");
  assert.deepEqual(JSON.parse(proxyHello(22)), { host: "localhost", port: 22 });
});

Deno.test("sprites api: pages, leases from labels, hibernated sprites count as running", () => {
  const page = parseSpritePage({
    sprites: [{ name: "crabbox-a-1", status: "cold" }],
    has_more: true,
    next_continuation_token: "t2",
  });
  assert.equal(page.next, "t2");
  assert.equal(page.sprites[0].labels, undefined);
  assert.equal(
    parseSpritePage({ sprites: [], has_more: false, next_continuation_token: "x" }).next,
    undefined,
  );
  assert.throws(() => parseSpritePage({}), (e: unknown) => e instanceof CrabboxError);
  const labels = encodeLabels({ leaseId: "cbx-0123456789ab", crew: "c", slug: "a" });
  const lease = spriteToLease({
    name: "crabbox-a-0123456789ab",
    status: "cold",
    labels: encodeFlatTags(labels),
  })!;
  assert.equal(lease.state, "running");
  assert.equal(lease.leaseId, "cbx-0123456789ab");
  assert.deepEqual(lease.labels, labels);
  assert.equal(spriteToLease({ name: "crabbox-x", labels: ["personal"] }), undefined);
});

Deno.test("sprites api: errors map to exit statuses; Retry-After wins over the body; capped", () => {
  const rl = parseSpritesError(
    429,
    JSON.stringify({
      error: "sprite_creation_rate_limited",
      message: "slow down",
      retry_after_seconds: 9,
    }),
  );
  assert.equal(rl.code, "sprite_creation_rate_limited");
  assert.equal(
    rateLimitWaitMs(new Headers({ "retry-after": "2" }), rl.retryAfterSeconds, 30_000, 0),
    2000,
  );
  assert.equal(rateLimitWaitMs(new Headers(), rl.retryAfterSeconds, 30_000, 0), 9000);
  assert.equal(
    rateLimitWaitMs(new Headers({ "retry-after": "600" }), undefined, 30_000, 0),
    30_000,
  );
  assert.equal(spritesError(429, rl, "POST /v1/sprites").exitStatus, 4);
  assert.match(spritesError(429, rl, "POST /v1/sprites").message, /slow down/);
  assert.equal(spritesError(401, parseSpritesError(401, "nope"), "GET").exitStatus, 9);
  assert.equal(spritesError(404, parseSpritesError(404, "{}"), "GET").exitStatus, 3);
});

Deno.test("sprites api: the proxy reply must say connected", () => {
  checkProxyReply('{"status":"connected","target":"localhost:22"}', "s");
  for (const bad of ['{"status":"error","message":"no"}', "garbage", undefined, Uint8Array.of(1)]) {
    assert.throws(
      () => checkProxyReply(bad, "s"),
      (e: unknown) => e instanceof CrabboxError && e.exitStatus === 5,
    );
  }
});

Deno.test("sprites install script: key from the environment, sshd as a service, idempotent", () => {
  const script = sshdInstallScript();
  assert.ok(!script.includes("ssh-ed25519"), "no key in the script text");
  assert.match(script, /CRABBOX_SSH_PUBLIC_KEY/);
  assert.match(script, /sprite-env services create sshd/);
  assert.match(script, /grep -qxF/);
});
