import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/errors.ts";
import { decodeLabels } from "../../../lib/core/labels.ts";
import type { CloudProviderOptions } from "../../../providers/cloud/common.ts";
import { createHetznerProvider } from "../../../providers/hetzner/provider.ts";
import {
  createServerBody,
  hetznerError,
  hetznerServerName,
  hetznerSettings,
  labelSelector,
  pagePath,
  parseApiError,
  parsePage,
  parseServer,
  rateLimitDelayMs,
  sshKeyFingerprint,
} from "../../../providers/hetzner/api.ts";
import {
  type FakeHetznerOptions,
  parseLabelSelector,
  startFakeHetzner,
} from "../../fakes/hetzner.ts";
import {
  assertEchoedCreateIsClean,
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";
import { assertTool, skipWithout, toolWorks } from "../../_prereq.ts";

const HOME = "/tmp/cbx-hetzner-test";

function setup(
  fakeOptions: FakeHetznerOptions = {},
  options: CloudProviderOptions = {},
  config: Record<string, unknown> = {},
  env: Record<string, string> = {},
) {
  const fake = startFakeHetzner({ maxPerPage: 2, ...fakeOptions });
  const logs = logRecorder();
  const ssh = sshRecorder();
  const provider = createHetznerProvider({
    home: HOME,
    env: envOf({ HCLOUD_TOKEN: fake.token, CRABBOX_HETZNER_API_URL: fake.url, ...env }),
    config,
    fetch,
    log: logs.log,
  }, { waitForSsh: ssh.waitForSsh, pollIntervalMs: 1, ...options });
  return { fake, logs, ssh, provider };
}

async function rejectsWith(p: Promise<unknown>, check: (e: CrabboxError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CrabboxError, `expected CrabboxError, got ${e}`);
    check(e);
    return true;
  });
}

// ---------------------------------------------------------------- pure half

Deno.test("hetzner api: names, selectors, pages", () => {
  assert.equal(
    hetznerServerName({ slug: "api", leaseId: "cbx-0123456789ab" }),
    "crabbox-api-0123456789ab",
  );
  assert.equal(labelSelector({ crabbox: "true", crew: "pr-42" }), "crabbox=true,crew=pr-42");
  assert.equal(
    pagePath("/servers", { label_selector: "crabbox=true" }, 3),
    "/servers?label_selector=crabbox%3Dtrue&page=3&per_page=50",
  );
  const page = parsePage(
    {
      servers: [{
        id: 1,
        status: "running",
        private_net: [],
        public_net: { ipv4: { ip: "1.2.3.4" } },
      }],
      meta: { pagination: { next_page: null } },
    },
    "servers",
    parseServer,
  );
  assert.equal(page.nextPage, undefined);
  assert.equal(page.items[0].ipv4, "1.2.3.4");
  assert.equal(
    parsePage({ ssh_keys: [], meta: { pagination: { next_page: 2 } } }, "ssh_keys", (x) => x)
      .nextPage,
    2,
  );
  assert.throws(() => parsePage({ servers: {} }, "servers", parseServer), /malformed/);
  // a hostile API cannot smuggle an ssh option in as the address
  assert.equal(
    parseServer({ id: 1, status: "running", public_net: { ipv4: { ip: "-oProxy" } } }).ipv4,
    undefined,
  );
});

Deno.test("hetzner api: settings and defaults", () => {
  const s = hetznerSettings(envOf({}), {});
  assert.deepEqual(s, {
    baseUrl: "https://api.hetzner.cloud/v1",
    serverType: "cpx22",
    image: "ubuntu-24.04",
    location: undefined,
    sshPort: 22,
    sshUser: "root",
  });
  assert.throws(
    () => hetznerSettings(envOf({ CRABBOX_HETZNER_API_URL: "http://api.example.com/v1" }), {}),
    /https/,
  );
  assert.throws(() => hetznerSettings(envOf({}), { sshPort: 70000 }), /hetzner.sshPort/);
});

Deno.test("hetzner api: fingerprint format and bad keys", () => {
  assert.match(sshKeyFingerprint(fakePublicKey()), /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
  assert.throws(() => sshKeyFingerprint("ssh-ed25519 not!base64"), /OpenSSH/);
});

const HAS_SSH_KEYGEN = await toolWorks("sh", ["-c", "command -v ssh-keygen"]);

Deno.test({
  name: "hetzner api: fingerprint matches ssh-keygen -E md5",
  ignore: skipWithout(HAS_SSH_KEYGEN, "ssh-keygen (openssh-client)"),
}, async () => {
  assertTool(HAS_SSH_KEYGEN, "ssh-keygen (openssh-client)");
  const dir = await Deno.makeTempDir();
  try {
    const key = fakePublicKey("x");
    await Deno.writeTextFile(`${dir}/k.pub`, key + "\n");
    const out = await new Deno.Command("ssh-keygen", {
      args: ["-l", "-E", "md5", "-f", `${dir}/k.pub`],
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const printed = new TextDecoder().decode(out.stdout).split(" ")[1].replace(/^MD5:/, "");
    assert.equal(sshKeyFingerprint(key), printed);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hetzner api: user data over 32 KiB is a usage error", () => {
  const spec = specFor("api", "c", fakePublicKey(), { userData: "x".repeat(32 * 1024 + 1) });
  assert.throws(
    () => createServerBody(spec, hetznerSettings(envOf({}), {}), 1),
    (e: unknown) => e instanceof CrabboxError && e.kind === "usage",
  );
});

Deno.test("hetzner api: error mapping", () => {
  const ctx = { method: "POST", path: "/servers?x=1", serverType: "cpx22", location: "fsn1" };
  const map = (status: number, code: string, message = "m", fields: string[] = []) =>
    hetznerError(status, { code, message, fields }, ctx);
  const e401 = map(401, "unauthorized", "unable to authenticate");
  assert.equal(e401.kind, "credentials");
  assert.match(e401.message, /HCLOUD_TOKEN/);
  assert.equal(map(403, "forbidden").kind, "credentials");
  assert.match(map(403, "forbidden").hint ?? "", /Read & Write/);
  assert.equal(map(403, "http_403").kind, "credentials");
  assert.equal(map(403, "resource_limit_exceeded").kind, "provider");
  for (const status of [400, 422]) {
    const e = map(status, "invalid_input", "image not found", ["image"]);
    assert.equal(e.code, "hetzner_invalid_input");
    assert.match(e.message, /image not found \[fields: image\]/);
  }
  const uniq = map(409, "uniqueness_error", "server name is already used", ["name"]);
  assert.equal(uniq.code, "hetzner_uniqueness_error");
  assert.match(uniq.message, /server name is already used/);
  const cap = map(412, "resource_unavailable", "no capacity");
  assert.equal(cap.code, "hetzner_unavailable");
  assert.match(cap.message, /cpx22/);
  assert.match(cap.message, /fsn1/);
  assert.match(
    hetznerError(412, { code: "resource_unavailable", message: "x", fields: [] }, {
      method: "POST",
      path: "/servers",
      serverType: "cx23",
    }).message,
    /cx23 available in any location/,
  );
  assert.equal(map(429, "rate_limit_exceeded").code, "hetzner_rate_limited");
  assert.equal(map(500, "server_error").code, "hetzner_error");
  assert.deepEqual(parseApiError(502, "<html>bad gateway</html>"), {
    code: "http_502",
    message: "<html>bad gateway</html>",
    fields: [],
  });
});

Deno.test("hetzner api: RateLimit-Reset delay is bounded", () => {
  const h = (reset: string) => new Headers({ "RateLimit-Reset": reset });
  assert.equal(rateLimitDelayMs(h("1002"), 1_000_000, 250, 30_000), 2000);
  assert.equal(rateLimitDelayMs(h("999"), 1_000_000, 250, 30_000), 250);
  assert.equal(rateLimitDelayMs(h("5000"), 1_000_000, 250, 30_000), 30_000);
  assert.equal(rateLimitDelayMs(new Headers(), 1_000_000, 250, 30_000), 250);
});

// ------------------------------------------------------------ contract tests

Deno.test("hetzner: create follows the action to running, then waits for ssh", async () => {
  const { fake, ssh, provider, logs } = setup(
    { actionPolls: 2, startPolls: 2, onCreate: () => ({ ipv4: "127.77.0.9" }) },
    {},
    { sshPort: 2222, location: "nbg1" },
  );
  await using _ = fake;
  const spec = specFor("api", "pr-42", fakePublicKey());
  const lease = await provider.create(spec);
  assert.equal(lease.state, "running");
  assert.equal(lease.leaseId, spec.leaseId);
  assert.deepEqual(lease.ssh, {
    host: "127.77.0.9",
    port: 2222,
    user: "root",
    keyPath: spec.sshKeyPath,
  });
  assert.deepEqual(provider.sshTarget(lease), lease.ssh);
  assert.deepEqual(ssh.calls, [{
    target: lease.ssh,
    knownHostsFile: `${HOME}/crew/pr-42/known_hosts`,
  }]);
  const server = fake.servers.get(Number(lease.providerId))!;
  assert.deepEqual(server.labels, spec.labels);
  assert.equal(server.userData, spec.userData);
  assert.equal(server.location, "nbg1");
  assert.equal(server.name, hetznerServerName(spec));
  assert.deepEqual(server.sshKeyIds, [...fake.sshKeys.keys()]);
  const key = [...fake.sshKeys.values()][0];
  assert.deepEqual(key.labels, { crabbox: "true", crew: "pr-42" });
  const calls = fake.requests.map((r) => `${r.method} ${r.path}`);
  assert.deepEqual(calls.slice(0, 3), ["GET /ssh_keys", "POST /ssh_keys", "POST /servers"]);
  assert.ok(calls.filter((c) => c.startsWith("GET /actions/")).length >= 2);
  assert.ok(logs.lines.some((l) => l.includes("waiting for ssh")));
  const post = fake.requests.find((r) => r.path === "/servers" && r.method === "POST")!;
  assert.equal((post.body as Record<string, unknown>).start_after_create, true);
  assert.match(
    String((post.body as Record<string, unknown>).user_data),
    /^\[redacted \d+ chars\]$/,
  );
});

Deno.test("hetzner: list paginates, labels round-trip, one key per crew, cleanup on last delete", async () => {
  const { fake, provider } = setup({ deletePolls: 1 });
  await using _ = fake;
  const pub = fakePublicKey();
  const specs = ["api", "db", "worker-1", "worker-2", "worker-3"].map((s) =>
    specFor(s, "alpha", pub, { expose: s === "db" ? [5432] : [8080] })
  );
  for (const spec of specs) await provider.create(spec);
  const other = fakePublicKey();
  await provider.create(specFor("solo", "beta", other));
  await provider.create(specFor("loner", undefined, fakePublicKey()));
  assert.equal(
    fake.requests.filter((r) => r.method === "POST" && r.path === "/ssh_keys").length,
    3,
  );

  fake.requests.length = 0;
  const leases = await provider.list({ crew: "alpha" });
  assert.equal(leases.length, 5);
  const pages = fake.requests.filter((r) => r.path === "/servers");
  assert.equal(pages.length, 3, "5 servers at 2 per page");
  assert.equal(pages[0].query.label_selector, "crabbox=true,crew=alpha");
  for (const spec of specs) {
    const got = leases.find((l) => l.leaseId === spec.leaseId)!;
    assert.ok(got, `lease ${spec.slug} listed`);
    assert.deepEqual(got.labels, spec.labels);
    assert.deepEqual(decodeLabels(got.labels), decodeLabels(spec.labels));
    const facts = decodeLabels(got.labels)!;
    assert.equal(facts.crew, "alpha");
    assert.equal(facts.slug, spec.slug);
    assert.equal(got.labels.role, spec.role);
    assert.deepEqual(facts.expose, spec.expose);
    assert.equal(facts.owner, "alice");
    assert.equal(facts.tailscale, true);
    assert.equal(got.ssh?.keyPath, `${HOME}/keys/crew-alpha/id_ed25519`);
  }
  assert.equal((await provider.list({})).length, 7);
  // The owner is part of the server-side selector: another owner's crew alpha is not listed.
  fake.requests.length = 0;
  assert.equal((await provider.list({ crew: "alpha", owner: "alice" })).length, 5);
  assert.equal(
    fake.requests.find((r) => r.path === "/servers")?.query.label_selector,
    "crabbox=true,crew=alpha,crabbox-owner=alice",
  );
  assert.equal((await provider.list({ crew: "alpha", owner: "bob" })).length, 0);

  const one = await provider.get(leases[0].providerId);
  assert.equal(one?.leaseId, leases[0].leaseId);
  assert.equal(await provider.get("999999"), undefined);
  assert.equal(await provider.get("not-a-number"), undefined);

  for (const lease of leases.slice(0, 4)) await provider.delete(lease);
  assert.equal(fake.sshKeys.size, 3, "key stays while a crew member is left");
  await provider.delete(leases[4]);
  assert.equal(fake.sshKeys.size, 2, "crew alpha's key removed with its last server");
  assert.equal(
    (await provider.list({ crew: "alpha" })).filter((l) => l.state !== "deleting").length,
    0,
  );
  // deleting a gone box succeeds
  await provider.delete(leases[4]);
  const [solo] = await provider.list({ crew: "beta" });
  await provider.delete(solo);
  assert.equal(fake.sshKeys.size, 1);
  const [loner] = (await provider.list({})).filter((l) => l.state !== "deleting");
  await provider.delete(loner);
  assert.equal(fake.sshKeys.size, 0);
});

Deno.test("hetzner: an existing key with the same fingerprint is reused, not duplicated", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  const pub = fakePublicKey();
  const res = await fetch(`${fake.url}/ssh_keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${fake.token}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "my-laptop", public_key: pub }),
  });
  assert.equal(res.status, 201);
  await res.body?.cancel();
  const lease = await provider.create(specFor("api", "c1", pub));
  assert.equal(fake.sshKeys.size, 1);
  await provider.delete(lease);
  assert.equal(fake.sshKeys.size, 1, "a key crabbox did not create is never deleted");
});

Deno.test("hetzner: delete refuses a server of another lease", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  const lease = await provider.create(specFor("api", "c1", fakePublicKey()));
  await rejectsWith(
    provider.delete({ ...lease, leaseId: "cbx-ffffffffffff", labels: {} }),
    (e) => assert.equal(e.code, "hetzner_not_ours"),
  );
  assert.equal(fake.servers.size, 1);
});

Deno.test("hetzner: missing, wrong and read-only tokens are credentials errors without the token", async () => {
  const logs = logRecorder();
  const noToken = createHetznerProvider(
    { home: HOME, env: envOf({}), config: {}, fetch, log: logs.log },
    { waitForSsh: false },
  );
  await rejectsWith(noToken.list({}), (e) => {
    assert.equal(e.kind, "credentials");
    assert.match(e.message, /HCLOUD_TOKEN/);
  });

  const { fake, provider } = setup({}, {}, {}, { HCLOUD_TOKEN: "wrong-token-secret-123456" });
  await using _ = fake;
  await rejectsWith(provider.list({}), (e) => {
    assert.equal(e.kind, "credentials");
    assert.match(e.message, /HCLOUD_TOKEN/);
    assert.ok(!JSON.stringify({ m: e.message, h: e.hint, d: e.details }).includes("wrong-token"));
  });
  assert.equal(fake.requests[0].status, 401);
  assert.equal(fake.requests[0].headers.authorization, "[redacted]");

  const ro = startFakeHetzner({ readOnlyToken: "read-only-secret-token" });
  await using __ = ro;
  const roProvider = createHetznerProvider({
    home: HOME,
    env: envOf({ HCLOUD_TOKEN: "read-only-secret-token", CRABBOX_HETZNER_API_URL: ro.url }),
    config: {},
    fetch,
    log: logs.log,
  }, { waitForSsh: false, pollIntervalMs: 1 });
  assert.deepEqual(await roProvider.list({}), []);
  await rejectsWith(roProvider.create(specFor("api", "c", fakePublicKey())), (e) => {
    assert.equal(e.kind, "credentials");
    assert.match(e.hint ?? "", /Read & Write/);
  });
  const everything = JSON.stringify([logs.lines, fake.requests, ro.requests]);
  assert.ok(!everything.includes("read-only-secret-token"));
  assert.ok(!everything.includes("wrong-token-secret"));
  assert.ok(!everything.includes(fake.token));
});

Deno.test("hetzner: 429 waits for RateLimit-Reset, bounded, then succeeds", async () => {
  const sleeps = sleepRecorder();
  const { fake, provider } = setup({}, { sleep: sleeps.sleep, maxBackoffMs: 5000 });
  await using _ = fake;
  fake.inject({
    method: "GET",
    match: "/servers",
    status: 429,
    code: "rate_limit_exceeded",
    times: 2,
    rateLimitResetIn: 3,
  });
  assert.deepEqual(await provider.list({}), []);
  assert.equal(sleeps.delays.length, 2);
  for (const d of sleeps.delays) {
    assert.ok(d >= 1000 && d <= 4000, `delay ${d} follows RateLimit-Reset`);
  }
});

Deno.test("hetzner: 429 retries are bounded and capped", async () => {
  const sleeps = sleepRecorder();
  const { fake, provider } = setup({}, { sleep: sleeps.sleep, maxRetries: 3, maxBackoffMs: 1500 });
  await using _ = fake;
  fake.inject({
    match: "/servers",
    status: 429,
    code: "rate_limit_exceeded",
    times: 100,
    rateLimitResetIn: 3600,
  });
  await rejectsWith(provider.list({}), (e) => assert.equal(e.code, "hetzner_rate_limited"));
  assert.deepEqual(sleeps.delays, [1500, 1500, 1500]);
});

Deno.test("hetzner: 5xx is retried for GET but a create POST is not blindly repeated", async () => {
  const sleeps = sleepRecorder();
  const { fake, provider } = setup({}, { sleep: sleeps.sleep });
  await using _ = fake;
  fake.inject({ method: "GET", match: "/servers", status: 500, code: "server_error" });
  assert.deepEqual(await provider.list({}), []);
  assert.equal(sleeps.delays.length, 1);
  fake.inject({
    method: "POST",
    match: "/servers",
    status: 503,
    code: "service_error",
    message: "try later",
  });
  await rejectsWith(provider.create(specFor("api", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "hetzner_error");
    assert.match(e.message, /503 service_error: try later/);
  });
  assert.equal(fake.requests.filter((r) => r.method === "POST" && r.path === "/servers").length, 1);
});

Deno.test("hetzner: resource_unavailable names the server type and location", async () => {
  const { fake, provider } = setup(
    { unavailable: [{ serverType: "cpx32", location: "hel1" }] },
    {},
    { serverType: "cpx32", location: "hel1" },
  );
  await using _ = fake;
  await rejectsWith(provider.create(specFor("api", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "hetzner_unavailable");
    assert.match(e.message, /cpx32/);
    assert.match(e.message, /hel1/);
    assert.match(e.message, /server type cpx32 is unavailable in hel1/);
  });
  assert.equal(fake.servers.size, 0);
});

Deno.test("hetzner: invalid_input and uniqueness_error carry Hetzner's message", async () => {
  const { fake, provider } = setup({}, {}, { image: "windows-95" });
  await using _ = fake;
  await rejectsWith(provider.create(specFor("api", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "hetzner_invalid_input");
    assert.match(e.message, /image "windows-95" not found/);
    assert.deepEqual(e.details?.fields, ["image"]);
  });
  const ok = setup();
  await using __ = ok.fake;
  ok.fake.inject({
    method: "POST",
    match: "/servers",
    status: 409,
    code: "uniqueness_error",
    message: "name is already used",
    field: "name",
  });
  await rejectsWith(ok.provider.create(specFor("api", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "hetzner_uniqueness_error");
    assert.match(e.message, /name is already used/);
  });
});

Deno.test("hetzner: a vanished crew key is uploaded again once", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  fake.inject({
    method: "POST",
    match: "/servers",
    status: 400,
    code: "invalid_input",
    message: "ssh key not found",
    field: "ssh_keys",
  });
  const lease = await provider.create(specFor("api", "c", fakePublicKey()));
  assert.equal(lease.state, "running");
  assert.equal(fake.requests.filter((r) => r.method === "POST" && r.path === "/servers").length, 2);
});

Deno.test("hetzner: a server that never runs times out and is deleted", async () => {
  const { fake, provider, logs } = setup({ startPolls: 1_000_000 }, { readyTimeoutMs: 50 });
  await using _ = fake;
  await rejectsWith(provider.create(specFor("api", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "hetzner_timeout");
  });
  assert.equal(fake.servers.size, 0);
  assert.ok(logs.lines.some((l) => l.includes("deleting server")));
});

Deno.test("hetzner: an IPv4 that only appears once running is waited for", async () => {
  const { fake, provider } = setup({ ipv4WhenRunning: true, startPolls: 3 });
  await using _ = fake;
  const lease = await provider.create(specFor("api", "c", fakePublicKey()));
  assert.match(lease.ssh?.host ?? "", /^203\.0\.113\./);
});

Deno.test("hetzner: the default ssh wait is the real one (fails against a closed port, then cleans up)", async () => {
  const fake = startFakeHetzner({ onCreate: () => ({ ipv4: "127.0.0.1" }) });
  await using _ = fake;
  const home = await Deno.makeTempDir();
  try {
    const provider = createHetznerProvider({
      home,
      env: envOf({ HCLOUD_TOKEN: fake.token, CRABBOX_HETZNER_API_URL: fake.url }),
      config: { sshPort: 1 },
      fetch,
      log: () => {},
    }, { pollIntervalMs: 1, sshTimeoutMs: 300 });
    await rejectsWith(provider.create(specFor("api", "c", fakePublicKey())), (e) => {
      assert.equal(e.kind, "ssh");
      assert.match(e.message, /root@127\.0\.0\.1:1/);
    });
    assert.equal(fake.servers.size, 0);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

// ---------------------------------------------------- the fake is strict

Deno.test("fake hetzner: malformed requests get the documented error envelope", async () => {
  await using fake = startFakeHetzner();
  const call = async (
    method: string,
    path: string,
    body?: string,
    auth = `Bearer ${fake.token}`,
  ) => {
    const res = await fetch(`${fake.url}${path}`, {
      method,
      headers: { authorization: auth, "content-type": "application/json" },
      body,
    });
    return { status: res.status, json: await res.json() };
  };
  const noAuth = await call("GET", "/servers", undefined, "");
  assert.equal(noAuth.status, 401);
  assert.equal(noAuth.json.error.code, "unauthorized");
  const notJson = await call("POST", "/servers", "{name:");
  assert.equal(notJson.status, 400);
  assert.equal(notJson.json.error.code, "json_error");
  const noName = await call(
    "POST",
    "/servers",
    JSON.stringify({ server_type: "cpx22", image: "ubuntu-24.04" }),
  );
  assert.equal(noName.json.error.code, "invalid_input");
  assert.equal(noName.json.error.details.fields[0].name, "name");
  const badLabel = await call(
    "POST",
    "/servers",
    JSON.stringify({
      name: "x1",
      server_type: "cpx22",
      image: "ubuntu-24.04",
      labels: { crew: "-bad-" },
    }),
  );
  assert.equal(badLabel.json.error.details.fields[0].name, "labels");
  const reserved = await call(
    "POST",
    "/servers",
    JSON.stringify({
      name: "x1",
      server_type: "cpx22",
      image: "ubuntu-24.04",
      labels: { "hetzner.cloud/x": "y" },
    }),
  );
  assert.equal(reserved.json.error.code, "invalid_input");
  const unknownField = await call(
    "POST",
    "/servers",
    JSON.stringify({
      name: "x1",
      server_type: "cpx22",
      image: "ubuntu-24.04",
      userdata: "typo",
    }),
  );
  assert.equal(unknownField.json.error.details.fields[0].name, "userdata");
  const badSelector = await call("GET", "/servers?label_selector=crew%3D%3D%3D,(");
  assert.equal(badSelector.status, 400);
  assert.equal(badSelector.json.error.details.fields[0].name, "label_selector");
  const badKey = await call(
    "POST",
    "/ssh_keys",
    JSON.stringify({ name: "k", public_key: "ssh-ed25519 AAAA" }),
  );
  assert.equal(badKey.json.error.details.fields[0].name, "public_key");
  const missing = await call("GET", "/servers/123");
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, "not_found");
  const dupKey = fakePublicKey();
  assert.equal(
    (await call("POST", "/ssh_keys", JSON.stringify({ name: "a", public_key: dupKey }))).status,
    201,
  );
  const dup = await call("POST", "/ssh_keys", JSON.stringify({ name: "b", public_key: dupKey }));
  assert.equal(dup.status, 409);
  assert.equal(dup.json.error.code, "uniqueness_error");
});

Deno.test("fake hetzner: label selector language", () => {
  const l = { crabbox: "true", crew: "a", slug: "db" };
  assert.equal(parseLabelSelector("crabbox=true,crew=a")(l), true);
  assert.equal(parseLabelSelector("crabbox==true,crew!=b")(l), true);
  assert.equal(parseLabelSelector("crew,!missing")(l), true);
  assert.equal(parseLabelSelector("slug in (api,db)")(l), true);
  assert.equal(parseLabelSelector("slug notin (api,db)")(l), false);
  assert.equal(parseLabelSelector("crew=b")(l), false);
  assert.throws(() => parseLabelSelector("crew=a,("));
});

Deno.test("hetzner: registered lazily with the features it reports", async () => {
  const { loadProvider, providerEntry } = await import("../../../providers/registry.ts");
  const p = await loadProvider("hetzner", {
    home: HOME,
    env: envOf({}),
    config: {},
    fetch,
    log: () => {},
  });
  assert.equal(p.name, "hetzner");
  assert.deepEqual([...p.features].sort(), [...providerEntry("hetzner").features].sort());
  assert.deepEqual([...p.features].sort(), ["cloud-init", "ssh", "tailscale"]);
  assert.match(providerEntry("hetzner").credentials?.(envOf({}), {}) ?? "", /HCLOUD_TOKEN/);
});

Deno.test("hetzner: updateLabels replaces the server's whole label set (PUT /servers/{id})", async () => {
  const { fake, provider } = setup({ onCreate: () => ({ ipv4: "127.77.0.9" }) });
  await using _ = fake;
  const spec = specFor("api", "pr-42", fakePublicKey());
  const lease = await provider.create(spec);
  const labels = {
    ...spec.labels,
    "crabbox-expires": "1767225600",
    "crabbox-touched": "1767220000",
  };
  await provider.updateLabels!(lease, labels);
  assert.deepEqual(fake.servers.get(Number(lease.providerId))!.labels, labels);
  const put = fake.requests.find((r) => r.method === "PUT")!;
  assert.equal(put.path, `/servers/${lease.providerId}`);
  assert.deepEqual(put.body, { labels });
  // The fake enforces Hetzner's label rules: a bad value is a provider error, nothing changes.
  await assert.rejects(provider.updateLabels!(lease, { ...labels, crew: "Not Valid!" }));
  assert.deepEqual(fake.servers.get(Number(lease.providerId))!.labels, labels);
  await assert.rejects(
    provider.updateLabels!({ ...lease, providerId: "x1" }, labels),
    /not a Hetzner server id/,
  );
});

Deno.test("hetzner: the box's shape replaces the configured type, location and image", async () => {
  const { fake, provider } = setup(
    { onCreate: () => ({ ipv4: "127.77.0.9" }) },
    {},
    { serverType: "cpx22", location: "nbg1" },
  );
  await using _ = fake;
  const a = await provider.create(
    specFor("a", "pr-42", fakePublicKey(), {
      shape: { type: "cpx32", location: "hel1", image: "debian-12" },
    }),
  );
  const sa = fake.servers.get(Number(a.providerId))!;
  assert.deepEqual([sa.serverType, sa.location, sa.image], ["cpx32", "hel1", "debian-12"]);
  // --arch alone picks the smallest type of that architecture.
  const b = await provider.create(
    specFor("b", "pr-42", fakePublicKey(), { shape: { arch: "arm" } }),
  );
  assert.equal(fake.servers.get(Number(b.providerId))!.serverType, "cax11");
  const c = await provider.create(specFor("c", "pr-42", fakePublicKey()));
  const sc = fake.servers.get(Number(c.providerId))!;
  assert.deepEqual([sc.serverType, sc.location], ["cpx22", "nbg1"]);
});

Deno.test("hetzner: an error answer that echoes the request never repeats the user data or the auth key", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  fake.inject({
    method: "POST",
    match: "/servers",
    status: 422,
    code: "invalid_input",
    echoRequest: true,
  });
  await assertEchoedCreateIsClean((spec) => provider.create(spec), "hetzner_invalid");
});
