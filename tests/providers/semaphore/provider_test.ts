import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/mod.ts";
import { leaseKeyPath } from "../../../lib/ssh/mod.ts";
import { createSemaphoreProvider } from "../../../providers/semaphore/provider.ts";
import {
  nextLinkPath,
  parseDurationSeconds,
  semaphoreSettings,
} from "../../../providers/semaphore/api.ts";
import { startFakeSemaphore } from "../../fakes/semaphore.ts";
import {
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";

const KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VtYXBob3JlLWRlYnVnLWtleQ==\n-----END OPENSSH PRIVATE KEY-----";

async function setup(extra: Record<string, string> = {}, fakeOptions = {}) {
  const fake = startFakeSemaphore({ debugKey: KEY, ...fakeOptions });
  const home = await Deno.makeTempDir({ prefix: "cbx-sem-" });
  const env = {
    SEMAPHORE_API_TOKEN: fake.token,
    CRABBOX_SEMAPHORE_API_URL: fake.url,
    SEMAPHORE_PROJECT: "web",
    ...extra,
  };
  const log = logRecorder();
  const sleep = sleepRecorder();
  const ssh = sshRecorder();
  const p = createSemaphoreProvider(
    { home, env: envOf(env), config: {}, fetch, log: log.log },
    { waitForSsh: ssh.waitForSsh, pollIntervalMs: 5, sleep: sleep.sleep },
  );
  return {
    fake,
    home,
    p,
    log,
    sleep,
    ssh,
    env,
    async [Symbol.asyncDispose]() {
      await fake.close();
      await Deno.remove(home, { recursive: true });
    },
  };
}

const spec = (slug: string, crew?: string) =>
  specFor(slug, crew, fakePublicKey(), { tailscale: false, userData: undefined });

Deno.test("semaphore: create posts a keepalive debug job, waits for RUNNING, stores the debug key 0600; ssh as semaphore", async () => {
  await using t = await setup({}, { pendingPolls: 2, queuedPolls: 2 });
  const s = spec("api", "pr-42");
  const lease = await t.p.create(s);
  const job = t.fake.jobs.get(lease.providerId)!;
  const body = job.body as { metadata: { name: string }; spec: Record<string, unknown> };
  assert.equal(body.metadata.name, `crabbox-api-${s.leaseId.slice(4)}`);
  assert.equal(body.spec.project_id, t.fake.projects.get("web"));
  assert.deepEqual(body.spec.agent, { machine: { type: "f1-standard-2", os_image: "ubuntu2204" } });
  assert.deepEqual(body.spec.commands, ["echo crabbox-ready", "sleep 1800"]);
  assert.ok(
    (body.spec.env_vars as { name: string; value: string }[]).some((e) =>
      e.name === "CRABBOX_LABEL_CRABBOX_LEASE" && e.value === s.leaseId
    ),
  );
  assert.equal(job.polls, 5, "PENDING×2, QUEUED×2, then RUNNING");
  const keyPath = leaseKeyPath(t.home, s.leaseId);
  assert.deepEqual(lease.ssh, {
    host: job.ip,
    port: job.sshPort,
    user: "semaphore",
    identity: "lease-key",
    keyPath,
  });
  assert.equal(await Deno.readTextFile(keyPath), KEY + "\n");
  assert.equal((await Deno.stat(keyPath)).mode! & 0o777, 0o600);
  assert.equal((await Deno.stat(`${t.home}/keys/${s.leaseId}`)).mode! & 0o777, 0o700);
  assert.equal(lease.leaseId, s.leaseId);
  assert.match(lease.leaseId, /^cbx-[0-9a-f]{12}$/);
  assert.deepEqual(t.ssh.calls.map((c) => c.target.user), ["semaphore"]);
  assert.ok(t.fake.requests.every((r) => r.headers.authorization === "[redacted]"));
  assert.ok(!t.log.lines.join("\n").includes("PRIVATE KEY"));
});

Deno.test("semaphore: release stops the job and deletes the stored key; a stopped job is gone", async () => {
  await using t = await setup();
  const s = spec("db", "c1");
  const lease = await t.p.create(s);
  await t.p.delete(lease);
  assert.equal(t.fake.jobs.get(lease.providerId)!.result, "STOPPED");
  assert.deepEqual(t.fake.activeJobs(), []);
  await assert.rejects(Deno.stat(leaseKeyPath(t.home, s.leaseId)), Deno.errors.NotFound);
  assert.equal(await t.p.get(lease.providerId), undefined);
  await t.p.delete(lease); // idempotent
  assert.deepEqual(await t.p.list({}), []);
});

Deno.test("semaphore: list follows next_page_token, filters by crew, parses identity strictly", async () => {
  await using t = await setup({}, { pendingPolls: 0, queuedPolls: 0, maxPageSize: 2 });
  const a = await t.p.create(spec("api", "alpha"));
  const b = await t.p.create(spec("web", "alpha"));
  const c = await t.p.create(spec("api", "beta"));
  const d = await t.p.create(spec("solo"));
  // Tampered env (slug disagrees with the name) and a hand-made job are not leases.
  const bad = await t.p.create(spec("x", "alpha"));
  const badJob = t.fake.jobs.get(bad.providerId)!;
  const envs = (badJob.body.spec as { env_vars: { name: string; value: string }[] }).env_vars;
  envs.find((e) => e.name === "CRABBOX_LABEL_SLUG")!.value = "y";
  const alpha = await t.p.list({ crew: "alpha" });
  assert.deepEqual(alpha.map((l) => l.providerId).sort(), [a.providerId, b.providerId].sort());
  const all = await t.p.list({});
  assert.deepEqual(
    all.map((l) => l.providerId).sort(),
    [a.providerId, b.providerId, c.providerId, d.providerId].sort(),
  );
  const listCalls = t.fake.requests.filter((r) => r.method === "GET" && r.path === "/jobs");
  assert.ok(listCalls.some((r) => r.query.page_token), "second page requested");
  await assert.rejects(t.p.delete(bad), /not lease/);
  assert.equal(
    t.fake.jobs.get(bad.providerId)!.result,
    undefined,
    "a job that is not ours keeps running",
  );
});

Deno.test("semaphore: the states filter is the multi-value query parameter", async () => {
  await using t = await setup();
  await t.p.list({});
  const u = t.fake.requests.find((r) => r.path === "/jobs")!;
  assert.equal(u.status, 200);
  const raw = await fetch(`${t.fake.url}/jobs?states=RUNNING&states=BOGUS`, {
    headers: { authorization: `Token ${t.fake.token}` },
  });
  assert.equal(raw.status, 400);
  await raw.body?.cancel();
});

Deno.test("semaphore: a project given by id is found through the Link-paginated list; a missing one is a config error", async () => {
  await using t = await setup({ SEMAPHORE_PROJECT: "missing" });
  await assert.rejects(
    t.p.list({}),
    (e: unknown) =>
      e instanceof CrabboxError && e.code === "semaphore_no_such_project" && e.exitStatus === 11,
  );
  assert.ok(
    t.fake.requests.some((r) => r.path === "/projects" && r.query.page === "2"),
    "followed rel=next",
  );
  const apiId = t.fake.projects.get("api")!;
  const p = createSemaphoreProvider(
    {
      home: t.home,
      env: envOf({ ...t.env, SEMAPHORE_PROJECT: apiId }),
      config: {},
      fetch,
      log: () => {},
    },
    { waitForSsh: false, pollIntervalMs: 1, sleep: sleepRecorder().sleep },
  );
  const lease = await p.create(spec("p", "c"));
  assert.equal(
    (t.fake.jobs.get(lease.providerId)!.body.spec as { project_id: string }).project_id,
    apiId,
  );
});

Deno.test("semaphore: a job without a keepalive finishes; create fails clearly and leaves no key", async () => {
  await using t = await setup();
  const s = spec("api", "c");
  t.fake.inject({
    method: "POST",
    match: "/jobs",
    status: 422,
    code: "bad",
    message: "spec.commands invalid",
  });
  await assert.rejects(
    t.p.create(s),
    (e: unknown) =>
      e instanceof CrabboxError && e.code === "semaphore_invalid" && e.exitStatus === 4,
  );
  // The fake finishes jobs whose commands do not sleep: make the provider's job look like that.
  const p = createSemaphoreProvider(
    {
      home: t.home,
      env: envOf({ ...t.env, CRABBOX_SEMAPHORE_IDLE_TIMEOUT: "bogus" }),
      config: {},
      fetch,
      log: () => {},
    },
    { waitForSsh: false },
  );
  await assert.rejects(
    p.create(s),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 11,
  );
  const raw = await fetch(`${t.fake.url}/jobs`, {
    method: "POST",
    headers: { authorization: `Token ${t.fake.token}`, "content-type": "application/json" },
    body: JSON.stringify({
      apiVersion: "v1alpha",
      kind: "Job",
      metadata: { name: "no keepalive" },
      spec: {
        project_id: t.fake.projects.get("web"),
        agent: { machine: { type: "f1-standard-2", os_image: "ubuntu2204" } },
        commands: ["echo hi"],
      },
    }),
  });
  const id = (await raw.json()).metadata.id;
  for (let i = 0; i < 3; i++) {
    await (await fetch(`${t.fake.url}/jobs/${id}`, {
      headers: { authorization: `Token ${t.fake.token}` },
    })).body?.cancel();
  }
  assert.equal(t.fake.jobs.get(id)!.result, "PASSED");
  await assert.rejects(Deno.stat(leaseKeyPath(t.home, s.leaseId)), Deno.errors.NotFound);
});

Deno.test("semaphore: a job that never runs is stopped when create times out (exit 4)", async () => {
  await using t = await setup({}, { pendingPolls: 1_000_000 });
  let now = 0;
  const p = createSemaphoreProvider(
    { home: t.home, env: envOf(t.env), config: {}, fetch, log: () => {} },
    {
      waitForSsh: false,
      pollIntervalMs: 1000,
      readyTimeoutMs: 4000,
      sleep: (ms) => (now += ms, Promise.resolve()),
      now: () => now,
    },
  );
  await assert.rejects(
    p.create(spec("api", "c")),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 4,
  );
  assert.deepEqual(t.fake.activeJobs(), []);
});

Deno.test("semaphore: Bearer is not Token; a bad token is exit 9 and never printed", async () => {
  await using t = await setup();
  const raw = await fetch(`${t.fake.url}/jobs`, {
    headers: { authorization: `Bearer ${t.fake.token}` },
  });
  assert.equal(raw.status, 401);
  await raw.body?.cancel();
  const p = createSemaphoreProvider(
    {
      home: t.home,
      env: envOf({ ...t.env, SEMAPHORE_API_TOKEN: "sekrit-token-xyz" }),
      config: {},
      fetch,
      log: () => {},
    },
    { waitForSsh: false },
  );
  await assert.rejects(p.list({}), (e: unknown) => {
    assert.ok(e instanceof CrabboxError);
    assert.equal(e.exitStatus, 9);
    assert.ok(!e.message.includes("sekrit"));
    return true;
  });
});

Deno.test("semaphore: 429 is retried a bounded number of times", async () => {
  await using t = await setup();
  t.fake.inject({
    method: "GET",
    match: "/jobs",
    status: 429,
    code: "slow",
    headers: { "retry-after": "1" },
    times: 2,
  });
  assert.deepEqual(await t.p.list({}), []);
  assert.deepEqual(t.sleep.delays, [1000, 1000]);
  t.fake.inject({ method: "GET", match: "/jobs", status: 429, code: "slow", times: 99 });
  await assert.rejects(
    t.p.list({}),
    (e: unknown) => e instanceof CrabboxError && e.code === "semaphore_rate_limited",
  );
});

Deno.test("semaphore: settings and helpers", () => {
  assert.equal(parseDurationSeconds("30m"), 1800);
  assert.equal(parseDurationSeconds("2h"), 7200);
  assert.equal(parseDurationSeconds("25h"), undefined);
  assert.equal(parseDurationSeconds("-1"), undefined);
  assert.throws(() => semaphoreSettings(envOf({ SEMAPHORE_PROJECT: "x" }), {}), /SEMAPHORE_HOST/);
  assert.throws(
    () => semaphoreSettings(envOf({ SEMAPHORE_HOST: "a.semaphoreci.com" }), {}),
    /SEMAPHORE_PROJECT/,
  );
  assert.throws(
    () => semaphoreSettings(envOf({ SEMAPHORE_HOST: "evil.com/x?", SEMAPHORE_PROJECT: "x" }), {}),
    /not a host name/,
  );
  const base = "https://a.semaphoreci.com/api/v1alpha";
  assert.equal(nextLinkPath(`<${base}/projects?page=2>; rel="next"`, base), "/projects?page=2");
  assert.equal(
    nextLinkPath(`<https://evil.example/api/v1alpha/projects?page=2>; rel="next"`, base),
    undefined,
  );
  assert.equal(nextLinkPath(`<${base}/projects?page=1>; rel="prev"`, base), undefined);
});
