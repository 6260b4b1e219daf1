import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/mod.ts";
import { leaseUserConfigPath } from "../../../lib/ssh/mod.ts";
import { createDaytonaProvider } from "../../../providers/daytona/provider.ts";
import { daytonaAuth, listPath, parseSshAccess } from "../../../providers/daytona/api.ts";
import { type FakeDaytonaOptions, startFakeDaytona } from "../../fakes/daytona.ts";
import {
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";

async function setup(extra: Record<string, string> = {}, fakeOptions: FakeDaytonaOptions = {}) {
  const fake = startFakeDaytona(fakeOptions);
  const home = await Deno.makeTempDir({ prefix: "cbx-dtn-" });
  const env: Record<string, string> = {
    DAYTONA_API_KEY: fake.apiKey,
    CRABBOX_DAYTONA_API_URL: fake.url,
    DAYTONA_SNAPSHOT: "daytonaio/sandbox:0.4.3",
    ...extra,
  };
  const log = logRecorder();
  const sleep = sleepRecorder();
  const ssh = sshRecorder();
  const p = createDaytonaProvider(
    { home, env: envOf(env), config: {}, fetch, log: log.log },
    { waitForSsh: ssh.waitForSsh, pollIntervalMs: 5, sleep: sleep.sleep },
  );
  return {
    fake,
    home,
    env,
    p,
    log,
    sleep,
    ssh,
    async [Symbol.asyncDispose]() {
      await fake.close();
      await Deno.remove(home, { recursive: true });
    },
  };
}

const spec = (slug: string, crew?: string) =>
  specFor(slug, crew, fakePublicKey(), { tailscale: false, userData: undefined });

Deno.test("daytona: create posts labels with auto-stop off, waits for started, the gateway token is the user (in a 0600 file, never logged)", async () => {
  await using t = await setup({}, { statePolls: 2, gatewayHost: "gw.example", gatewayPort: 2200 });
  const s = spec("api", "pr-42");
  const lease = await t.p.create(s);
  const sb = t.fake.sandboxes.get(lease.providerId)!;
  assert.deepEqual(sb.labels, s.labels);
  assert.equal(sb.body.autoStopInterval, 0);
  assert.equal(sb.body.autoDeleteInterval, -1);
  assert.equal(sb.body.snapshot, "daytonaio/sandbox:0.4.3");
  assert.equal(sb.body.name, `crabbox-api-${s.leaseId.slice(4)}`);
  assert.ok(sb.polls >= 6, "creating → pulling_snapshot → starting → started, two reads each");
  const [token] = [...t.fake.tokens.keys()];
  const userFile = leaseUserConfigPath(t.home, s.leaseId);
  assert.equal(lease.ssh?.host, "gw.example");
  assert.equal(lease.ssh?.port, 2200);
  assert.equal(lease.ssh?.user, "");
  assert.equal(lease.ssh?.userFile, userFile);
  assert.ok(Date.parse(lease.ssh!.expiresAt!) > Date.now() + 50 * 60_000);
  assert.equal(await Deno.readTextFile(userFile), `User ${token}\n`);
  assert.equal((await Deno.stat(userFile)).mode! & 0o777, 0o600);
  assert.ok(!JSON.stringify(lease).includes(token), "the token is not in the lease (claim)");
  assert.ok(!t.log.lines.join("\n").includes(token), "the token is never logged");
  assert.equal(t.ssh.calls.length, 1);
  const access = t.fake.requests.find((r) => r.path.endsWith("/ssh-access"))!;
  assert.equal(access.query.expiresInMinutes, "60");
});

Deno.test("daytona: refreshSsh hands out a new token and rewrites the user file", async () => {
  await using t = await setup({}, { tokens: ["tokenAAAA1111", "tokenBBBB2222"] });
  const s = spec("api", "c");
  const lease = await t.p.create(s);
  const userFile = lease.ssh!.userFile!;
  assert.equal(await Deno.readTextFile(userFile), "User tokenAAAA1111\n");
  const fresh = await t.p.refreshSsh!(lease);
  assert.equal(fresh.userFile, userFile);
  assert.equal(await Deno.readTextFile(userFile), "User tokenBBBB2222\n");
  assert.ok(!t.log.lines.join("\n").includes("tokenBBBB"));
});

Deno.test("daytona: list uses the labels JSON query and follows nextCursor; crew filter; owner separation", async () => {
  await using t = await setup({}, { statePolls: 0, maxLimit: 2 });
  const a = await t.p.create(spec("api", "alpha"));
  const b = await t.p.create(spec("web", "alpha"));
  const c = await t.p.create(spec("db", "alpha"));
  const d = await t.p.create(spec("api", "beta"));
  const alpha = await t.p.list({ crew: "alpha" });
  assert.deepEqual(
    alpha.map((l) => l.providerId).sort(),
    [a, b, c].map((l) => l.providerId).sort(),
  );
  const q = t.fake.requests.filter((r) => r.method === "GET" && r.path === "/sandbox");
  assert.deepEqual(JSON.parse(q[0].query.labels), { crabbox: "true", crew: "alpha" });
  assert.ok(q.some((r) => r.query.cursor), "second page requested with the cursor");
  assert.equal((await t.p.list({})).length, 4);
  void d;
  await assert.rejects(
    t.p.list({ crew: "BAD crew" }),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 2,
  );
});

Deno.test("daytona: the older plain-array list answer is accepted and filtered client-side", async () => {
  await using t = await setup({}, { statePolls: 0, legacyList: true });
  const a = await t.p.create(spec("api", "alpha"));
  await t.p.create(spec("api", "beta"));
  // A sandbox someone made by hand (no crabbox labels).
  const raw = await fetch(`${t.fake.url}/sandbox`, {
    method: "POST",
    headers: { authorization: `Bearer ${t.fake.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "mine", snapshot: "crabbox-test", labels: { team: "x" } }),
  });
  await raw.body?.cancel();
  assert.deepEqual((await t.p.list({ crew: "alpha" })).map((l) => l.providerId), [a.providerId]);
  assert.equal((await t.p.list({})).length, 2);
});

Deno.test("daytona: delete retries 409 (state change in progress) a bounded number of times", async () => {
  await using t = await setup({}, { statePolls: 0, deleteConflicts: 3 });
  const lease = await t.p.create(spec("api", "c"));
  await t.p.delete(lease);
  const deletes = t.fake.requests.filter((r) => r.method === "DELETE");
  assert.deepEqual(deletes.map((r) => r.status), [409, 409, 409, 200]);
  await assert.rejects(Deno.stat(leaseUserConfigPath(t.home, lease.leaseId)), Deno.errors.NotFound);
  assert.equal((await t.p.get(lease.providerId))?.state, "deleting");
  assert.equal(await t.p.get(lease.providerId), undefined, "destroying, then gone");
  await t.p.delete(lease); // gone: fine
  await using t2 = await setup({}, { statePolls: 0, deleteConflicts: 100 });
  const l2 = await t2.p.create(spec("api", "c"));
  await assert.rejects(
    t2.p.delete(l2),
    (e: unknown) => e instanceof CrabboxError && e.code === "daytona_conflict",
  );
  assert.equal(t2.fake.requests.filter((r) => r.method === "DELETE").length, 8);
});

Deno.test("daytona: a JWT needs the organization header; a bad key is exit 9 and never printed", async () => {
  await using t = await setup();
  const fake = t.fake;
  const jwtEnv = {
    CRABBOX_DAYTONA_API_URL: fake.url,
    DAYTONA_SNAPSHOT: "crabbox-test",
    DAYTONA_JWT_TOKEN: fake.jwt,
  };
  assert.throws(
    () => daytonaAuth(envOf(jwtEnv)),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 9,
  );
  const p = createDaytonaProvider(
    {
      home: t.home,
      env: envOf({ ...jwtEnv, DAYTONA_ORGANIZATION_ID: fake.organizationId }),
      config: {},
      fetch,
      log: () => {},
    },
    { waitForSsh: false },
  );
  assert.deepEqual(await p.list({}), []);
  const last = fake.requests.at(-1)!;
  assert.equal(last.headers["x-daytona-organization-id"], fake.organizationId);
  const bad = createDaytonaProvider(
    {
      home: t.home,
      env: envOf({ ...t.env, DAYTONA_API_KEY: "dtn_wrongwrongwrong" }),
      config: {},
      fetch,
      log: () => {},
    },
    { waitForSsh: false },
  );
  await assert.rejects(bad.list({}), (e: unknown) => {
    assert.ok(e instanceof CrabboxError);
    assert.equal(e.exitStatus, 9);
    assert.ok(!e.message.includes("wrongwrong"));
    return true;
  });
});

Deno.test("daytona: a quota error is exit 4 with Daytona's words; nothing is left behind", async () => {
  await using t = await setup({}, { statePolls: 0, quota: 1 });
  await t.p.create(spec("api", "c"));
  await assert.rejects(
    t.p.create(spec("web", "c")),
    (e: unknown) =>
      e instanceof CrabboxError && e.code === "daytona_capacity" && e.exitStatus === 4 &&
      /quota exceeded/.test(e.message),
  );
  assert.equal(t.fake.sandboxes.size, 1);
});

Deno.test("daytona: a sandbox that fails to start is deleted and the token file removed", async () => {
  await using t = await setup({}, { statePolls: 1 });
  t.fake.inject({
    method: "POST",
    match: /\/ssh-access$/,
    status: 500,
    code: "boom",
    message: "gateway down",
  });
  const s = spec("api", "c");
  await assert.rejects(t.p.create(s), /gateway down/);
  const sb = [...t.fake.sandboxes.values()][0];
  assert.ok(sb === undefined || sb.destroyingPolls !== undefined, "sandbox deleted");
  await assert.rejects(Deno.stat(leaseUserConfigPath(t.home, s.leaseId)), Deno.errors.NotFound);
});

Deno.test("daytona: 429 is retried a bounded number of times", async () => {
  await using t = await setup();
  t.fake.inject({
    method: "GET",
    match: "/sandbox",
    status: 429,
    code: "slow",
    headers: { "retry-after": "3" },
    times: 1,
  });
  assert.deepEqual(await t.p.list({}), []);
  assert.deepEqual(t.sleep.delays, [3000]);
  t.fake.inject({ method: "GET", match: "/sandbox", status: 429, code: "slow", times: 99 });
  await assert.rejects(
    t.p.list({}),
    (e: unknown) => e instanceof CrabboxError && e.code === "daytona_rate_limited",
  );
});

Deno.test("daytona: sshCommand parsing and list query", () => {
  const a = parseSshAccess({
    token: "tok12345",
    expiresAt: "2030-01-01T00:00:00Z",
    sshCommand: "ssh tok12345@ssh.app.daytona.io",
  }, "x");
  assert.deepEqual([a.host, a.port], ["ssh.app.daytona.io", 22]);
  assert.throws(() =>
    parseSshAccess({
      token: "tok12345",
      expiresAt: "2030-01-01T00:00:00Z",
      sshCommand: "ssh -oProxyCommand=x tok12345@-evil",
    }, "x")
  );
  assert.throws(() =>
    parseSshAccess({ token: "bad token", expiresAt: "2030-01-01T00:00:00Z" }, "x")
  );
  assert.equal(
    listPath({ crabbox: "true" }, "abc"),
    "/sandbox?labels=%7B%22crabbox%22%3A%22true%22%7D&limit=100&cursor=abc",
  );
});
