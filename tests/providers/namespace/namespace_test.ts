import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/mod.ts";
import {
  checkEndpoint,
  createInstanceBody,
  extendInstanceBody,
  leaseState,
  listInstancesBody,
  methodPath,
  namespaceError,
  namespaceSettings,
  parseConnectError,
  parseInstance,
  parseInstancePage,
  parseTokenFile,
  tokenFilePath,
} from "../../../providers/namespace/api.ts";
import { createNamespaceProvider } from "../../../providers/namespace/provider.ts";
import type { CloudProviderOptions } from "../../../providers/cloud/mod.ts";
import { type FakeNamespaceOptions, startFakeNamespace } from "../../fakes/namespace.ts";
import {
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";
import { pipeTunnel } from "../../../lib/lease/mod.ts";

const HOME = "/tmp/cbx-namespace-test";

async function setup(
  fakeOptions: FakeNamespaceOptions = {},
  options: CloudProviderOptions = {},
  token?: string,
) {
  const fake = startFakeNamespace({ maxPerPage: 2, ...fakeOptions });
  const dir = await Deno.makeTempDir({ prefix: "cbx-nsc-" });
  await Deno.writeTextFile(
    `${dir}/token.json`,
    JSON.stringify({ bearer_token: token ?? fake.token }),
  );
  const logs = logRecorder();
  const ssh = sshRecorder();
  const sleeps = sleepRecorder();
  const provider = createNamespaceProvider({
    home: HOME,
    env: envOf({ NSC_TOKEN_FILE: `${dir}/token.json`, CRABBOX_NAMESPACE_API_URL: fake.url }),
    config: {},
    fetch,
    log: logs.log,
  }, { waitForSsh: ssh.waitForSsh, sleep: sleeps.sleep, pollIntervalMs: 1, ...options });
  return {
    fake,
    logs,
    ssh,
    sleeps,
    provider,
    [Symbol.asyncDispose]: async () => {
      await fake.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function rejectsWith(p: Promise<unknown>, check: (e: CrabboxError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CrabboxError, `expected CrabboxError, got ${e}`);
    check(e);
    return true;
  });
}

Deno.test("namespace api: settings, token file, Connect paths and bodies", () => {
  const s = namespaceSettings(envOf({}), {});
  assert.equal(s.baseUrl, "https://us.compute.namespaceapis.com");
  assert.deepEqual(s.shape, {
    virtualCpu: 2,
    memoryMegabytes: 4096,
    machineArch: "amd64",
    os: "linux",
  });
  assert.throws(
    () => namespaceSettings(envOf({}), { durationMinutes: 1 }),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 11,
  );
  assert.equal(tokenFilePath(envOf({ HOME: "/h" })), "/h/.config/ns/token.json");
  assert.equal(tokenFilePath(envOf({ NSC_TOKEN_FILE: "/t.json", HOME: "/h" })), "/t.json");
  assert.equal(parseTokenFile('{"bearer_token":"abc"}', "/t"), "abc");
  assert.throws(
    () => parseTokenFile("{}", "/t"),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 9,
  );
  assert.equal(
    methodPath("ListInstances"),
    "/namespace.cloud.compute.v1beta.ComputeService/ListInstances",
  );
  const spec = specFor("api", "pr-42", fakePublicKey());
  const body = createInstanceBody(
    { ...spec, labels: { ...spec.labels, server_type: "x" } },
    s,
    Date.parse("2026-01-01T00:00:00Z"),
  );
  assert.equal(body.deadline, "2026-01-01T04:00:00.000Z");
  assert.ok(body.labels.some((l) => l.name === "server-type"), "_ becomes -");
  assert.ok(body.labels.every((l) => !l.name.includes("_")));
  assert.deepEqual(body.experimental.authorizedSshKeys, [spec.sshPublicKey]);
  const list = listInstancesBody("pr-42", "b2Zmc2V0OjI=");
  assert.deepEqual(list.labelFilter, [
    { name: "crabbox", value: "true", op: "EQUAL" },
    { name: "crew", value: "pr-42", op: "EQUAL" },
  ]);
  assert.equal(list.maxEntries, "100", "int64 as a string");
  assert.equal(list.paginationCursor, "b2Zmc2V0OjI=");
  assert.deepEqual(extendInstanceBody("i1", 240), { instanceId: "i1", ensureMinimum: "14400s" });
});

Deno.test("namespace api: instances, pages, states, endpoints", () => {
  const inst = parseInstance({
    metadata: {
      instanceId: "abc",
      status: "RUNNING",
      labels: [{ name: "crabbox", value: "true" }],
      services: [
        { name: "web", endpoint: "https://x", endpointKind: "HTTP" },
        {
          name: "ssh",
          endpoint: "wss://gate.example/abc/22",
          endpointKind: "PROXY_OVER_SECURE_WEBSOCKET",
        },
      ],
    },
  });
  assert.equal(inst.sshEndpoint, "wss://gate.example/abc/22");
  assert.deepEqual(inst.labels, { crabbox: "true" });
  assert.equal(parseInstancePage({}).instances.length, 0);
  assert.equal(parseInstancePage({ instances: [], paginationCursor: "" }).next, undefined);
  assert.equal(leaseState("CREATING"), "creating");
  assert.equal(leaseState("SUSPENDED"), "stopped");
  assert.equal(checkEndpoint("wss://gate.example/abc/22", "abc").protocol, "wss:");
  assert.equal(checkEndpoint("ws://127.0.0.1:9/x", "abc").protocol, "ws:");
  for (const bad of ["ws://gate.example/abc", "https://x", "nonsense"]) {
    assert.throws(
      () => checkEndpoint(bad, "abc"),
      (e: unknown) => e instanceof CrabboxError && e.exitStatus === 4,
    );
  }
});

Deno.test("namespace api: Connect errors map to exit statuses", () => {
  const ex = parseConnectError(429, '{"code":"resource_exhausted","message":"no capacity in us"}');
  assert.equal(namespaceError(ex, "CreateInstance").exitStatus, 4);
  assert.match(namespaceError(ex, "CreateInstance").message, /no capacity in us/);
  assert.equal(namespaceError(parseConnectError(401, "{}"), "X").exitStatus, 9);
  assert.equal(
    namespaceError(parseConnectError(403, '{"code":"permission_denied","message":"no"}'), "X")
      .exitStatus,
    9,
  );
  assert.equal(
    namespaceError(parseConnectError(404, '{"code":"not_found","message":"x"}'), "X").exitStatus,
    3,
  );
  assert.equal(parseConnectError(503, "<html>").code, "unavailable");
});

Deno.test("namespace: create sends the key and labels, waits for RUNNING, targets root via the ingress", async () => {
  await using t = await setup();
  const spec = specFor("api", "pr-42", fakePublicKey());
  const lease = await t.provider.create(spec);
  const inst = t.fake.instances.get(lease.providerId)!;
  assert.equal(inst.status, "RUNNING");
  assert.deepEqual(inst.authorizedSshKeys, [spec.sshPublicKey]);
  assert.ok(inst.labels.some((l) => l.name === "crew" && l.value === "pr-42"));
  assert.equal(lease.ssh?.user, "root");
  assert.equal(lease.ssh?.keyPath, spec.sshKeyPath);
  assert.deepEqual(lease.ssh?.proxyCommand?.slice(-10), [
    "proxy",
    "--home",
    HOME,
    "--provider",
    "namespace",
    "--box",
    lease.providerId,
    "--port",
    "22",
    spec.leaseId,
  ]);
  assert.equal(t.ssh.calls.length, 1);
  const methods = t.fake.requests.map((r) => r.path.split("/").pop());
  assert.deepEqual(methods.slice(0, 3), ["CreateInstance", "WaitInstanceSync", "DescribeInstance"]);
  assert.ok(
    t.fake.requests.every((r) => r.method === "POST" && r.headers.authorization === "[redacted]"),
  );
});

Deno.test("namespace: list filters server-side by label, pages with a base64 cursor; delete destroys", async () => {
  await using t = await setup();
  const key = fakePublicKey();
  const made = [];
  for (
    const [slug, crew] of [["a", "x"], ["b", "x"], ["c", "y"], ["d", "x"], ["e", "x"]] as const
  ) {
    made.push(await t.provider.create(specFor(slug, crew, key)));
  }
  const xs = await t.provider.list({ crew: "x" });
  assert.deepEqual(xs.map((l) => l.labels.slug).sort(), ["a", "b", "d", "e"]);
  const lists = t.fake.requests.filter((r) => r.path.endsWith("/ListInstances"));
  assert.ok(
    lists.some((r) =>
      typeof (r.body as { paginationCursor?: string }).paginationCursor === "string"
    ),
  );
  assert.equal((await t.provider.list({})).length, 5);
  await rejectsWith(
    t.provider.delete({ ...made[0], leaseId: "cbx-ffffffffffff" }),
    (e) => assert.equal(e.code, "namespace_not_ours"),
  );
  for (const l of made) await t.provider.delete(l);
  await t.provider.delete(made[0]);
  assert.equal(t.fake.instances.size, 0);
  assert.deepEqual(await t.provider.list({}), []);
});

Deno.test("namespace: capacity (resource_exhausted) exits 4 at once; throttling waits Retry-After, bounded", async () => {
  await using t = await setup({}, { maxRetries: 2 });
  t.fake.inject({
    method: "CreateInstance",
    code: "resource_exhausted",
    message: "no capacity for 2x4 in us",
  });
  await rejectsWith(t.provider.create(specFor("a", "x", fakePublicKey())), (e) => {
    assert.equal(e.exitStatus, 4);
    assert.match(e.message, /no capacity for 2x4 in us/);
  });
  assert.deepEqual(t.sleeps.delays, []);
  t.fake.inject({
    method: "ListInstances",
    code: "resource_exhausted",
    message: "slow down",
    retryAfter: 2,
  });
  await t.provider.list({});
  assert.deepEqual(t.sleeps.delays, [2000]);
  t.fake.inject({
    method: "ListInstances",
    code: "resource_exhausted",
    message: "slow down",
    retryAfter: 1,
    times: 5,
  });
  await rejectsWith(t.provider.list({}), (e) => assert.equal(e.exitStatus, 4));
  assert.deepEqual(t.sleeps.delays, [2000, 1000, 1000]);
  assert.equal(t.fake.instances.size, 0);
});

Deno.test("namespace: a create that fails after CreateInstance destroys the instance; bad token exits 9", async () => {
  await using t = await setup();
  t.fake.inject({ method: "WaitInstanceSync", code: "internal", message: "boom" });
  await rejectsWith(
    t.provider.create(specFor("a", "x", fakePublicKey())),
    (e) => assert.equal(e.exitStatus, 4),
  );
  assert.equal(t.fake.instances.size, 0, "nothing left behind");
  await using bad = await setup({}, {}, "wrong-token-123");
  await rejectsWith(bad.provider.list({}), (e) => {
    assert.equal(e.exitStatus, 9);
    assert.ok(!e.message.includes("wrong-token-123"));
  });
  await rejectsWith(
    t.provider.create({ ...specFor("a", "x", fakePublicKey()), tailscale: true }),
    (e) => assert.equal(e.exitStatus, 2),
  );
});

Deno.test("namespace: openTunnel extends the deadline and relays bytes through the ingress WebSocket", async () => {
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of echo) c.readable.pipeTo(c.writable).catch(() => {});
  })();
  try {
    await using t = await setup({
      bridge: () => ({ hostname: "127.0.0.1", port: (echo.addr as Deno.NetAddr).port }),
    });
    const lease = await t.provider.create(specFor("a", "x", fakePublicKey()));
    const tunnel = await t.provider.openTunnel!(lease, 22);
    assert.deepEqual(t.fake.instances.get(lease.providerId)!.extensions, ["14400s"]);
    assert.equal(t.fake.ingressConnections, 1);
    const payload = new TextEncoder().encode("hello through the ingress");
    let got = "";
    const done = pipeTunnel(
      tunnel,
      new ReadableStream({ start: (c) => c.enqueue(payload) }),
      new WritableStream({
        write: (chunk, ctl) => {
          got += new TextDecoder().decode(chunk);
          if (got.length >= payload.length) ctl.error(new Error("enough"));
        },
      }),
    ).catch(() => {});
    while (got.length < payload.length) await new Promise((r) => setTimeout(r, 5));
    assert.equal(got, "hello through the ingress");
    await tunnel.writable.abort().catch(() => {});
    await done;
    await rejectsWith(t.provider.openTunnel!(lease, 8080), (e) => assert.equal(e.exitStatus, 2));
  } finally {
    echo.close();
  }
});
