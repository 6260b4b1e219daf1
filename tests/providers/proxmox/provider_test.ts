import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/mod.ts";
import { createProxmoxProvider } from "../../../providers/proxmox/provider.ts";
import {
  configForm,
  labelsFromDescription,
  labelsToDescription,
  parseNextId,
  proxmoxAuthorization,
  proxmoxError,
  proxmoxSettings,
  upidNode,
} from "../../../providers/proxmox/api.ts";
import { type FakeProxmoxOptions, startFakeProxmox } from "../../fakes/proxmox.ts";
import {
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";

function setup(fakeOptions: FakeProxmoxOptions = {}, extra: Record<string, string> = {}) {
  const fake = startFakeProxmox(fakeOptions);
  const env: Record<string, string> = {
    CRABBOX_PROXMOX_API_URL: fake.url,
    CRABBOX_PROXMOX_TOKEN_ID: fake.tokenId,
    CRABBOX_PROXMOX_TOKEN_SECRET: fake.tokenSecret,
    CRABBOX_PROXMOX_NODE: fake.node,
    CRABBOX_PROXMOX_TEMPLATE_ID: String(fake.templateId),
    ...extra,
  };
  const log = logRecorder();
  const sleep = sleepRecorder();
  const ssh = sshRecorder();
  const p = createProxmoxProvider(
    { home: "/tmp/cbx-pve-test", env: envOf(env), config: {}, fetch, log: log.log },
    { waitForSsh: ssh.waitForSsh, pollIntervalMs: 5, sleep: sleep.sleep },
  );
  return { fake, env, p, log, sleep, ssh, [Symbol.asyncDispose]: () => fake.close() };
}

const spec = (slug: string, crew?: string) =>
  specFor(slug, crew, fakePublicKey(), { tailscale: false, userData: undefined });

Deno.test("proxmox: create clones, waits for UPID tasks, configures cloud-init (double-encoded sshkeys, labels, tag), starts, reads the agent IPv4", async () => {
  await using t = setup({ taskPolls: 3, agentPolls: 3 });
  const s = spec("api", "pr-42");
  const lease = await t.p.create(s);
  const vm = t.fake.vms.get(Number(lease.providerId))!;
  assert.equal(vm.name, `crabbox-api-${s.leaseId.slice(4)}`);
  assert.equal(vm.status, "running");
  assert.equal(vm.config.ciuser, "crabbox");
  assert.equal(vm.config.tags, "crabbox");
  assert.equal(decodeURIComponent(vm.config.sshkeys).trim(), s.sshPublicKey);
  assert.deepEqual(labelsFromDescription(vm.config.description), s.labels);
  assert.deepEqual(lease.ssh, { host: vm.ip, port: 22, user: "crabbox", keyPath: s.sshKeyPath });
  const clone = t.fake.requests.find((r) => r.path.endsWith("/clone"))!;
  assert.deepEqual(clone.body, { newid: lease.providerId, name: vm.name, full: "1" });
  const polls = t.fake.requests.filter((r) => r.path.includes("/tasks/"));
  assert.ok(polls.length >= 3 * 4, "clone, config and start tasks polled until stopped");
  assert.ok(
    polls.every((r) => r.path.startsWith(`/nodes/${t.fake.node}/tasks/UPID%3A`)),
    "UPID url-encoded, on its node",
  );
  const agent = t.fake.requests.filter((r) => r.path.endsWith("/agent/network-get-interfaces"));
  assert.deepEqual(
    agent.map((r) => r.status),
    [500, 500, 500, 200],
    "guest agent not running is tolerated",
  );
  assert.ok(t.fake.requests.every((r) => r.headers.authorization === "[redacted]"));
});

Deno.test("proxmox: sshkeys sent form-encoded only once are rejected by the fake like PVE does", async () => {
  await using t = setup();
  const s = spec("api", "c");
  await t.p.create(s);
  const vmid = [...t.fake.vms.keys()].find((k) => k !== t.fake.templateId)!;
  const once = new URLSearchParams({ sshkeys: s.sshPublicKey }).toString();
  const res = await fetch(`${t.fake.url}/api2/json/nodes/${t.fake.node}/qemu/${vmid}/config`, {
    method: "POST",
    headers: {
      authorization: `PVEAPIToken=${t.fake.tokenId}=${t.fake.tokenSecret}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: once,
  });
  assert.equal(res.status, 400);
  assert.deepEqual((await res.json()).errors, { sshkeys: "invalid urlencoded string" });
  assert.match(configForm(s, proxmoxSettings(envOf(t.env), {})), /sshkeys=ssh-ed25519%2520/);
});

Deno.test("proxmox: list by crew reads the description labels; delete stops and destroys with task waits", async () => {
  await using t = setup({ taskPolls: 1, agentPolls: 0, nextIdAsNumber: true });
  const a = await t.p.create(spec("api", "alpha"));
  const b = await t.p.create(spec("db", "beta"));
  // A VM someone named crabbox-… by hand, without the labels, is not ours.
  t.fake.vms.set(777, {
    vmid: 777,
    name: "crabbox-x-0123456789ab",
    template: false,
    status: "running",
    config: { tags: "crabbox", description: "hello" },
    agentPolls: 0,
    ip: "192.0.2.9",
  });
  assert.deepEqual((await t.p.list({ crew: "alpha" })).map((l) => l.providerId), [a.providerId]);
  assert.deepEqual(
    (await t.p.list({})).map((l) => l.providerId).sort(),
    [a.providerId, b.providerId].sort(),
  );
  const got = await t.p.get(a.providerId);
  assert.equal(got?.ssh?.host, t.fake.vms.get(Number(a.providerId))!.ip);
  await t.p.delete(a);
  assert.equal(t.fake.vms.has(Number(a.providerId)), false);
  const stop = t.fake.requests.findIndex((r) => r.path.endsWith(`/${a.providerId}/status/stop`));
  const del = t.fake.requests.findIndex((r) => r.method === "DELETE");
  assert.ok(stop >= 0 && del > stop, "stopped before destroy");
  assert.equal(t.fake.requests[del].query.purge, "1");
  await assert.rejects(t.p.delete({ ...a, providerId: "777" }), /not lease/);
  assert.ok(t.fake.vms.has(777));
});

Deno.test("proxmox: a missing VM (HTTP 500 'Configuration file … does not exist') is not-found, not an error", async () => {
  await using t = setup();
  assert.equal(await t.p.get("4242"), undefined);
  const miss = t.fake.requests.find((r) => r.path.endsWith("/4242/config"))!;
  assert.equal(miss.status, 500);
  await t.p.delete({
    providerId: "4242",
    leaseId: "cbx-0123456789ab",
    labels: {},
    state: "unknown",
  });
  assert.equal(
    t.fake.requests.filter((r) => r.path.includes("/4242/")).length,
    2,
    "no retries of a final 500",
  );
  const e = proxmoxError({
    status: 500,
    text:
      `{"data":null,"message":"Configuration file 'nodes/pve1/qemu-server/4242.conf' does not exist\\n"}`,
    where: "GET /nodes/pve1/qemu/4242/config",
  });
  assert.equal(e.code, "proxmox_not_found");
  assert.equal(
    proxmoxError({
      status: 500,
      text: '{"data":null,"message":"storage \'x\' does not exist"}',
      where: "POST /x",
    }).code,
    "proxmox_error",
  );
});

Deno.test("proxmox: bad token → exit 9 without the secret; 403 permission → exit 9 with the permission named", async () => {
  await using t = setup();
  const p = createProxmoxProvider(
    {
      home: "/tmp/x",
      env: envOf({ ...t.env, CRABBOX_PROXMOX_TOKEN_SECRET: "wrong-secret-value" }),
      config: {},
      fetch,
      log: () => {},
    },
    { waitForSsh: false },
  );
  await assert.rejects(p.list({}), (e: unknown) => {
    assert.ok(e instanceof CrabboxError);
    assert.equal(e.exitStatus, 9);
    assert.ok(!e.message.includes("wrong-secret"));
    return true;
  });
  await using ro = setup({ readOnly: true });
  await assert.rejects(
    ro.p.create(spec("api", "c")),
    (e: unknown) =>
      e instanceof CrabboxError && e.exitStatus === 9 && /VM\.Allocate/.test(e.message),
  );
  assert.equal(ro.fake.vms.size, 1, "only the template");
  assert.throws(
    () => proxmoxAuthorization(envOf({ ...t.env, CRABBOX_PROXMOX_TOKEN_ID: "nobang" })),
    (e: unknown) =>
      e instanceof CrabboxError && e.exitStatus === 9 && /user@realm!tokenid/.test(e.message),
  );
});

Deno.test("proxmox: a failing task destroys the half-made VM", async () => {
  await using t = setup({ taskPolls: 1 });
  t.fake.inject({
    method: "POST",
    match: /\/status\/start$/,
    status: 500,
    code: "start failed",
    message: "start failed: QEMU exited with code 1",
  });
  await assert.rejects(t.p.create(spec("api", "c")), /QEMU exited/);
  assert.deepEqual([...t.fake.vms.keys()], [t.fake.templateId]);
});

Deno.test("proxmox: 400 parameter verification lists the fields; 501 is an error", () => {
  const e = proxmoxError({
    status: 400,
    text:
      '{"data":null,"message":"Parameter verification failed.","errors":{"name":"invalid format"}}',
    where: "POST /x",
  });
  assert.equal(e.code, "proxmox_invalid");
  assert.match(e.message, /name: invalid format/);
  assert.equal(
    proxmoxError({
      status: 501,
      text: '{"data":null,"message":"Method \'GET /foo\' not implemented"}',
      where: "GET /foo",
    }).code,
    "proxmox_error",
  );
});

Deno.test("proxmox: settings, UPIDs, nextid and descriptions", () => {
  assert.equal(upidNode("UPID:pve1:00001234:0000ABCD:65B8F000:qmclone:101:root@pam!ci:"), "pve1");
  assert.throws(() => upidNode("UPID:bad"));
  assert.equal(parseNextId({ data: "105" }), 105);
  assert.equal(parseNextId({ data: 106 }), 106);
  const labels = { crabbox: "true", "crabbox-lease": "cbx-0123456789ab", slug: "api" };
  assert.deepEqual(labelsFromDescription(labelsToDescription(labels)), labels);
  assert.equal(
    labelsFromDescription("crabbox labels\ncrabbox=true\ncrabbox-lease=cbx-0123456789ab\nslug=API"),
    undefined,
  );
  assert.equal(labelsFromDescription("notes\ncrabbox=true"), undefined);
  const env = {
    CRABBOX_PROXMOX_API_URL: "https://pve.example:8006/api2/json/",
    CRABBOX_PROXMOX_NODE: "pve1",
    CRABBOX_PROXMOX_TEMPLATE_ID: "9000",
  };
  assert.equal(proxmoxSettings(envOf(env), {}).baseUrl, "https://pve.example:8006/api2/json");
  assert.throws(
    () => proxmoxSettings(envOf({ ...env, CRABBOX_PROXMOX_INSECURE_TLS: "1" }), {}),
    /--unsafely-ignore-certificate-errors|not supported/,
  );
  assert.throws(
    () =>
      proxmoxSettings(envOf({ ...env, CRABBOX_PROXMOX_API_URL: "http://pve.example:8006" }), {}),
    /https/,
  );
  assert.throws(
    () =>
      proxmoxSettings(envOf({ ...env, CRABBOX_PROXMOX_CA_CERT: "/nope.pem" }), {}, () => "junk"),
    /not a PEM/,
  );
});

Deno.test("proxmox: self-signed TLS is trusted through CRABBOX_PROXMOX_CA_CERT (Deno.createHttpClient), refused without it", async () => {
  const dir = new URL("../../testdata/proxmox/", import.meta.url).pathname;
  const tls = {
    cert: await Deno.readTextFile(`${dir}pve-ssl.pem`),
    key: await Deno.readTextFile(`${dir}pve-ssl.key`),
  };
  await using t = setup({ tls });
  assert.match(t.fake.url, /^https:\/\/localhost:/);
  const withCa = createProxmoxProvider(
    {
      home: "/tmp/x",
      env: envOf({ ...t.env, CRABBOX_PROXMOX_CA_CERT: `${dir}pve-root-ca.pem` }),
      config: {},
      fetch,
      log: () => {},
    },
    { waitForSsh: false },
  );
  assert.deepEqual(await withCa.list({}), []);
  await assert.rejects(
    t.p.list({}),
    (e: unknown) => e instanceof CrabboxError && e.code === "proxmox_unreachable",
  );
});
