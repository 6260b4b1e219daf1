import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/mod.ts";
import { createRunpodProvider } from "../../../providers/runpod/provider.ts";
import { runpodError, runpodSettings } from "../../../providers/runpod/api.ts";
import { labelsToEnv } from "../../../providers/cloud/mod.ts";
import { startFakeRunpod } from "../../fakes/runpod.ts";
import {
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";

function provider(env: Record<string, string>, config: Record<string, unknown> = {}) {
  const log = logRecorder();
  const sleep = sleepRecorder();
  const ssh = sshRecorder();
  const p = createRunpodProvider(
    { home: "/tmp/cbx-runpod-test", env: envOf(env), config, fetch, log: log.log },
    { waitForSsh: ssh.waitForSsh, pollIntervalMs: 5, sleep: sleep.sleep, readyTimeoutMs: 5_000 },
  );
  return { p, log, sleep, ssh };
}

Deno.test("runpod: create sends explicit volumeInGb, 22/tcp, public IP and PUBLIC_KEY; waits for the port mapping", async () => {
  await using fake = startFakeRunpod({ startPolls: 3 });
  const { p, ssh } = provider({ RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url });
  const key = fakePublicKey();
  const spec = specFor("api", "pr-42", key, { tailscale: false });
  const lease = await p.create(spec);
  const pod = fake.pods.get(lease.providerId)!;
  assert.equal(pod.body.name, `crabbox-api-${spec.leaseId.slice(4)}`);
  assert.equal(pod.body.volumeInGb, 0);
  assert.equal(pod.volumeInGb, 0);
  assert.deepEqual(pod.body.ports, ["22/tcp"]);
  assert.equal(pod.body.supportPublicIp, true);
  assert.equal((pod.body.env as Record<string, string>).PUBLIC_KEY, key);
  assert.equal((pod.body.env as Record<string, string>).CRABBOX_LABEL_CREW, "pr-42");
  assert.equal(pod.polls, 3, "polled until publicIp and portMappings appeared");
  assert.deepEqual(lease.ssh, {
    host: pod.publicIp,
    port: pod.sshPort,
    user: "root",
    keyPath: spec.sshKeyPath,
  });
  assert.equal(lease.leaseId, spec.leaseId);
  assert.deepEqual(lease.labels, spec.labels);
  assert.deepEqual(ssh.calls.map((c) => c.target.port), [pod.sshPort]);
  assert.equal(ssh.calls[0].knownHostsFile, "/tmp/cbx-runpod-test/crew/pr-42/known_hosts");
  const auth = fake.requests.every((r) => r.headers.authorization === "[redacted]");
  assert.ok(auth);
});

Deno.test("runpod: portMappings values as strings are accepted", async () => {
  await using fake = startFakeRunpod({ portsAsStrings: true, startPolls: 1 });
  const { p } = provider({ RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url });
  const lease = await p.create(specFor("db", "c1", fakePublicKey(), { tailscale: false }));
  assert.equal(lease.ssh?.port, fake.pods.get(lease.providerId)!.sshPort);
});

Deno.test("runpod: list by crew, identity parsed strictly from name + env, foreign pods ignored", async () => {
  await using fake = startFakeRunpod({ startPolls: 0 });
  const { p } = provider({ CRABBOX_RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url });
  const a = await p.create(specFor("api", "alpha", fakePublicKey(), { tailscale: false }));
  const b = await p.create(specFor("api", "beta", fakePublicKey(), { tailscale: false }));
  const c = await p.create(specFor("web", undefined, fakePublicKey(), { tailscale: false }));
  // A pod with a crabbox-looking name whose env disagrees (slug) is not a lease.
  const tampered = await p.create(specFor("x", "alpha", fakePublicKey(), { tailscale: false }));
  const tp = fake.pods.get(tampered.providerId)!;
  (tp.body.env as Record<string, string>).CRABBOX_LABEL_SLUG = "other";
  // A pod someone else made by hand.
  fake.pods.set("handmade01", {
    id: "handmade01",
    body: { name: "crabbox-api-0123456789ab", imageName: "x", env: {} },
    volumeInGb: 0,
    polls: 9,
    publicIp: "203.0.113.99",
    sshPort: 1,
  });
  const alpha = await p.list({ crew: "alpha" });
  assert.deepEqual(alpha.map((l) => l.providerId), [a.providerId]);
  const all = await p.list({});
  assert.deepEqual(
    all.map((l) => l.providerId).sort(),
    [a.providerId, b.providerId, c.providerId].sort(),
  );
  assert.equal(await p.get(tampered.providerId), undefined);
  await assert.rejects(p.delete({ ...tampered, leaseId: tampered.leaseId }), /not lease/);
  assert.ok(fake.pods.has(tampered.providerId), "a pod that is not ours is never deleted");
  await assert.rejects(
    p.list({ crew: "Bad Crew" }),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 2,
  );
});

Deno.test("runpod: delete terminates the pod (204); a gone pod deletes fine; get of a gone pod is undefined", async () => {
  await using fake = startFakeRunpod({ startPolls: 0 });
  const { p } = provider({ RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url });
  const lease = await p.create(specFor("api", "c", fakePublicKey(), { tailscale: false }));
  await p.delete(lease);
  assert.equal(fake.pods.size, 0);
  assert.ok(fake.requests.some((r) => r.method === "DELETE" && r.status === 204));
  await p.delete(lease);
  assert.equal(await p.get(lease.providerId), undefined);
});

Deno.test("runpod: a bad API key is a credentials error (exit 9) that never shows the key", async () => {
  await using fake = startFakeRunpod();
  const { p } = provider({
    RUNPOD_API_KEY: "rpa_WRONGWRONGWRONG",
    CRABBOX_RUNPOD_API_URL: fake.url,
  });
  await assert.rejects(p.list({}), (e: unknown) => {
    assert.ok(e instanceof CrabboxError);
    assert.equal(e.exitStatus, 9);
    assert.ok(!e.message.includes("WRONGWRONG"));
    return true;
  });
  const none = provider({ CRABBOX_RUNPOD_API_URL: fake.url }).p;
  await assert.rejects(
    none.list({}),
    (e: unknown) =>
      e instanceof CrabboxError && e.exitStatus === 9 && /RUNPOD_API_KEY/.test(e.message),
  );
});

Deno.test("runpod: a capacity error is exit 4 with RunPod's words and leaves nothing behind", async () => {
  await using fake = startFakeRunpod({ unavailable: ["cpu3c"] });
  const { p } = provider({ RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url });
  await assert.rejects(
    p.create(specFor("api", "c", fakePublicKey(), { tailscale: false })),
    (e: unknown) => {
      assert.ok(e instanceof CrabboxError);
      assert.equal(e.exitStatus, 4);
      assert.equal(e.code, "runpod_capacity");
      assert.match(e.message, /no longer any instances available/);
      return true;
    },
  );
  assert.equal(fake.pods.size, 0);
  assert.equal(
    fake.requests.filter((r) => r.method === "POST").length,
    1,
    "a capacity POST is not retried",
  );
});

Deno.test("runpod: GPU pods send gpuTypeIds/gpuCount; an unknown GPU type is RunPod's 400", async () => {
  await using fake = startFakeRunpod({ startPolls: 0 });
  const env = { RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url };
  const { p } = provider(env, { computeType: "GPU", gpuTypeIds: ["NVIDIA L4", "NVIDIA A40"] });
  const lease = await p.create(specFor("gpu", "c", fakePublicKey(), { tailscale: false }));
  const body = fake.pods.get(lease.providerId)!.body;
  assert.deepEqual(body.gpuTypeIds, ["NVIDIA L4", "NVIDIA A40"]);
  assert.equal(body.gpuCount, 1);
  assert.equal(body.cpuFlavorIds, undefined);
  const bad = provider(env, { computeType: "GPU", gpuTypeIds: ["NVIDIA H9000"] }).p;
  await assert.rejects(
    bad.create(specFor("gpu", "c", fakePublicKey(), { tailscale: false })),
    /runpod|RunPod rejected/i,
  );
  assert.throws(() => runpodSettings(envOf({}), { computeType: "GPU" }), /gpuTypeIds/);
});

Deno.test("runpod: 429 on GET is retried a bounded number of times with Retry-After", async () => {
  await using fake = startFakeRunpod();
  const { p, sleep } = provider({ RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url });
  fake.inject({
    method: "GET",
    match: "/pods",
    status: 429,
    code: "rate",
    headers: { "retry-after": "2" },
    times: 2,
  });
  assert.deepEqual(await p.list({}), []);
  assert.deepEqual(sleep.delays, [2000, 2000]);
  fake.inject({ method: "GET", match: "/pods", status: 429, code: "rate", times: 50 });
  await assert.rejects(
    p.list({}),
    (e: unknown) =>
      e instanceof CrabboxError && e.code === "runpod_rate_limited" && e.exitStatus === 4,
  );
  assert.equal(
    fake.requests.filter((r) => r.status === 429).length,
    2 + 5,
    "4 retries, then give up",
  );
});

Deno.test("runpod: a pod that never gets its port mapping is deleted when create times out", async () => {
  await using fake = startFakeRunpod({ startPolls: 1_000_000 });
  const log = logRecorder();
  let t = 0;
  const p = createRunpodProvider(
    {
      home: "/tmp/cbx-rp",
      env: envOf({ RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url }),
      config: {},
      fetch,
      log: log.log,
    },
    {
      waitForSsh: false,
      pollIntervalMs: 1000,
      readyTimeoutMs: 5000,
      sleep: (ms) => (t += ms, Promise.resolve()),
      now: () => t,
    },
  );
  await assert.rejects(
    p.create(specFor("api", "c", fakePublicKey(), { tailscale: false })),
    /runpod_timeout|did not happen/,
  );
  assert.equal(fake.pods.size, 0, "no half-created pod left");
});

Deno.test("runpod: --tailscale is rejected before anything is created", async () => {
  await using fake = startFakeRunpod();
  const { p } = provider({ RUNPOD_API_KEY: fake.token, CRABBOX_RUNPOD_API_URL: fake.url });
  await assert.rejects(
    p.create(specFor("api", "c", fakePublicKey(), { tailscale: true })),
    (e: unknown) =>
      e instanceof CrabboxError && e.exitStatus === 2 &&
      /runpod cannot join a tailnet/.test(e.message),
  );
  assert.equal(fake.requests.length, 0);
  assert.equal(p.features.has("tailscale"), false);
});

Deno.test("runpod: error mapping (plain and JSON bodies)", () => {
  assert.equal(
    runpodError({
      status: 404,
      text: '{"error":"pod not found","status":404}',
      where: "GET /pods/x",
    }).code,
    "runpod_not_found",
  );
  assert.equal(
    runpodError({ status: 400, text: "bad", where: "POST /pods" }).code,
    "runpod_invalid",
  );
  assert.equal(
    runpodError({ status: 502, text: "<html>", where: "GET /pods" }).code,
    "runpod_error",
  );
});

Deno.test("runpod: reserved labels round-trip through env", () => {
  const labels = {
    crabbox: "true",
    "crabbox-lease": "cbx-0123456789ab",
    slug: "api",
    role: "api",
    "crabbox-expose": "80-8080",
  };
  const env = labelsToEnv(labels);
  assert.equal(env.CRABBOX_LABEL_CRABBOX_EXPOSE, "80-8080");
});
