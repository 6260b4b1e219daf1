import assert from "node:assert/strict";
import { providerEntry, providersWith } from "../../../providers/registry.ts";
import { CrabboxError } from "../../../lib/core/errors.ts";
import { decodeLabels } from "../../../lib/core/labels.ts";
import type { CloudProviderOptions } from "../../../providers/cloud/common.ts";
import {
  decodeGcpLabels,
  encodeGcpLabels,
  gcpSettings,
  labelFilter,
  operationError,
  parseAggregatedPage,
  parseOperation,
} from "../../../providers/gcp/api.ts";
import { gcpCredentialSource, parseServiceAccountKey } from "../../../providers/gcp/auth.ts";
import { createGcpProvider } from "../../../providers/gcp/provider.ts";
import { type FakeGcpOptions, parseGcpFilter, startFakeGcp } from "../../fakes/gcp.ts";
import {
  assertEchoedCreateIsClean,
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";

const HOME = "/tmp/cbx-gcp-test";

async function setup(
  fakeOptions: FakeGcpOptions = {},
  options: CloudProviderOptions = {},
  env: Record<string, string> = {},
  useKey = true,
) {
  const fake = await startFakeGcp(fakeOptions);
  const logs = logRecorder();
  const ssh = sshRecorder();
  const files: Record<string, string> = {
    "/keys/sa.json": fake.keyFile,
    "/keys/wrong.json": fake.wrongKeyFile,
  };
  const provider = createGcpProvider({
    home: HOME,
    env: envOf({
      ...(useKey
        ? { GOOGLE_APPLICATION_CREDENTIALS: "/keys/sa.json" }
        : { GOOGLE_OAUTH_ACCESS_TOKEN: fake.accessToken }),
      CRABBOX_GCP_COMPUTE_URL: fake.url,
      ...(useKey ? {} : { CRABBOX_GCP_PROJECT: fake.project }),
      ...env,
    }),
    config: {},
    fetch,
    log: logs.log,
  }, {
    waitForSsh: ssh.waitForSsh,
    pollIntervalMs: 1,
    readFile: (p) =>
      files[p] !== undefined
        ? Promise.resolve(files[p])
        : Promise.reject(new Deno.errors.NotFound(p)),
    ...options,
  });
  return { fake, logs, ssh, provider };
}

async function rejectsWith(p: Promise<unknown>, check: (e: CrabboxError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CrabboxError, `expected CrabboxError, got ${e}`);
    check(e);
    return true;
  });
}

Deno.test("gcp api: labels encode by GCP's rules and decode back exactly", () => {
  const labels = {
    crabbox: "true",
    "crabbox-lease": "cbx-0123456789ab",
    note: "Hello World.ü",
    "9x": "a_b",
  };
  const enc = encodeGcpLabels(labels);
  for (const [k, v] of Object.entries(enc)) {
    assert.match(k, /^[a-z][a-z0-9_-]{0,62}$/);
    assert.match(v, /^[a-z0-9_-]{0,63}$/);
  }
  assert.equal(enc.crabbox, "true");
  assert.equal(enc["crabbox-lease"], "cbx-0123456789ab");
  assert.deepEqual(decodeGcpLabels(enc), labels);
  assert.deepEqual(encodeGcpLabels(labels), enc, "deterministic");
  assert.throws(() => encodeGcpLabels({ k: "X".repeat(30) }), /63-character/);
  assert.equal(
    labelFilter({ crabbox: "true", crew: "pr-42" }),
    '(labels.crabbox = "true") AND (labels.crew = "pr-42")',
  );
  assert.deepEqual(parseGcpFilter(labelFilter({ crabbox: "true", crew: "pr-42" })), {
    crabbox: "true",
    crew: "pr-42",
  });
});

Deno.test("gcp api: settings follow upstream's precedence and validate", () => {
  const s = gcpSettings(
    envOf({ GOOGLE_CLOUD_PROJECT: "from-google", GCP_PROJECT_ID: "from-gcp-id" }),
    { project: "from-config" },
  );
  assert.equal(s.project, "from-config");
  assert.equal(
    gcpSettings(envOf({ CRABBOX_GCP_PROJECT: "from-crabbox" }), { project: "from-config" }).project,
    "from-crabbox",
  );
  assert.equal(gcpSettings(envOf({ GCP_PROJECT_ID: "from-gcp-id" }), {}).project, "from-gcp-id");
  assert.equal(gcpSettings(envOf({}), {}, "from-key-file").project, "from-key-file");
  assert.equal(s.zone, "europe-west2-a");
  assert.throws(() => gcpSettings(envOf({}), {}), (e: CrabboxError) => e.exitStatus === 11);
  assert.throws(
    () => gcpSettings(envOf({ CRABBOX_GCP_ZONE: "x;y" }), { project: "proj-12" }),
    /zone/,
  );
  assert.throws(
    () =>
      gcpSettings(envOf({ CRABBOX_GCP_COMPUTE_URL: "http://10.0.0.1/compute/v1" }), {
        project: "proj-12",
      }),
    /https/,
  );
});

Deno.test("gcp auth: credential precedence and key file validation never quote the key", () => {
  assert.equal(
    gcpCredentialSource(
      envOf({ GOOGLE_OAUTH_ACCESS_TOKEN: "t", GOOGLE_APPLICATION_CREDENTIALS: "/k" }),
      {},
    ).kind,
    "token",
  );
  assert.deepEqual(gcpCredentialSource(envOf({}), { credentialsFile: "/c.json" }), {
    kind: "key",
    variable: "gcp.credentialsFile",
    path: "/c.json",
  });
  assert.throws(
    () => gcpCredentialSource(envOf({}), {}),
    (e: CrabboxError) => e.exitStatus === 9 && e.message.includes("GOOGLE_APPLICATION_CREDENTIALS"),
  );
  assert.throws(
    () =>
      parseServiceAccountKey(
        JSON.stringify({ type: "authorized_user", client_secret: "s3cret" }),
        "GOOGLE_APPLICATION_CREDENTIALS",
      ),
    (e: CrabboxError) => e.exitStatus === 9 && !e.message.includes("s3cret"),
  );
});

Deno.test("gcp api: aggregated pages and DONE operations with errors", () => {
  const page = parseAggregatedPage({
    items: {
      "zones/a-b1-c": { warning: { code: "NO_RESULTS_ON_PAGE" } },
      "zones/europe-west2-a": {
        instances: [{
          name: "n",
          status: "RUNNING",
          zone: "x/zones/europe-west2-a",
          networkInterfaces: [{ accessConfigs: [{ natIP: "1.2.3.4" }] }],
        }],
      },
    },
    nextPageToken: "t",
  });
  assert.equal(page.instances[0].natIp, "1.2.3.4");
  assert.equal(page.instances[0].zone, "europe-west2-a");
  assert.equal(page.nextPageToken, "t");
  const op = parseOperation({
    name: "op",
    status: "DONE",
    zone: "https://x/zones/europe-west2-a",
    error: { errors: [{ code: "ZONE_RESOURCE_POOL_EXHAUSTED", message: "no room" }] },
  });
  const e = operationError(op, {
    what: "create instance x",
    machineType: "e2-small",
    zone: "europe-west2-a",
  });
  assert.equal(e.exitStatus, 4);
  assert.match(e.message, /ZONE_RESOURCE_POOL_EXHAUSTED: no room/);
});

Deno.test("gcp: the JWT assertion is verified by the fake, the token is cached, an expired one is refreshed", async () => {
  const { fake, provider } = await setup();
  await using _ = fake;
  await provider.list({});
  await provider.list({});
  assert.equal(fake.issuedTokens, 1, "one token exchange for several calls");
  fake.expireTokens();
  await provider.list({});
  assert.equal(fake.issuedTokens, 2, "a 401 after expiry fetches a new token once");
  const tokenReq = fake.requests.find((r) => r.path === "/token")!;
  assert.equal(tokenReq.status, 200);
});

Deno.test("gcp: a key the token endpoint rejects is exit 9 naming the variable, without the key", async () => {
  const { fake, provider } = await setup({}, {}, {
    GOOGLE_APPLICATION_CREDENTIALS: "/keys/wrong.json",
  });
  await using _ = fake;
  await rejectsWith(provider.list({}), (e) => {
    assert.equal(e.exitStatus, 9);
    assert.match(e.message, /GOOGLE_APPLICATION_CREDENTIALS/);
    assert.match(e.message, /Invalid JWT Signature/);
    assert.ok(!e.message.includes("PRIVATE KEY"));
  });
  const missing = await setup({}, {}, { GOOGLE_APPLICATION_CREDENTIALS: "/keys/none.json" });
  await using _m = missing.fake;
  await rejectsWith(missing.provider.list({}), (e) => {
    assert.equal(e.exitStatus, 9);
    assert.match(e.message, /GOOGLE_APPLICATION_CREDENTIALS/);
  });
});

Deno.test("gcp: create sends the documented insert body and waits for the operation, RUNNING and natIP", async () => {
  const { fake, provider, ssh } = await setup({ operationPolls: 3, startPolls: 3 });
  await using _ = fake;
  const spec = specFor("api", "pr-42", fakePublicKey());
  const lease = await provider.create(spec);
  const inst = [...fake.instances.values()][0];
  assert.equal(inst.metadata["enable-oslogin"], "FALSE");
  assert.equal(inst.metadata["ssh-keys"], `crabbox:${spec.sshPublicKey}`);
  assert.equal(inst.metadata["user-data"], spec.userData);
  assert.deepEqual(inst.tags, ["crabbox-crew-pr-42"]);
  assert.deepEqual(fake.firewalls.get("crabbox-crew-pr-42")?.targetTags, ["crabbox-crew-pr-42"]);
  assert.deepEqual(fake.firewalls.get("crabbox-crew-pr-42")?.allowed, [{
    IPProtocol: "tcp",
    ports: ["22"],
  }]);
  const opReads = fake.requests.filter((r) => r.path.includes("/operations/")).length;
  assert.ok(opReads >= 2, "operations were polled until DONE");
  assert.equal(lease.ssh?.host, inst.natIp);
  assert.equal(lease.ssh?.user, "crabbox");
  assert.equal(ssh.calls.length, 1);
  assert.equal(decodeLabels(lease.labels)?.leaseId, spec.leaseId);
  const insert = fake.requests.find((r) => r.method === "POST" && r.path.endsWith("/instances"))!;
  assert.match(insert.query.requestId, /^[0-9a-f-]{36}$/);
});

Deno.test("gcp: a 500 on insert is retried with the same requestId and creates one instance", async () => {
  const { fake, provider } = await setup();
  await using _ = fake;
  fake.inject({
    method: "POST",
    match: /\/instances$/,
    status: 503,
    code: "backendError",
    message: "Backend Error",
  });
  await provider.create(specFor("api", "c1", fakePublicKey()));
  assert.equal(fake.instances.size, 1);
});

Deno.test("gcp: a second crew member reuses the firewall rule; it goes with the last", async () => {
  const { fake, provider } = await setup();
  await using _ = fake;
  const key = fakePublicKey();
  const a = await provider.create(specFor("a", "c2", key));
  const b = await provider.create(specFor("b", "c2", key));
  assert.equal(
    fake.requests.filter((r) => r.method === "POST" && r.path.endsWith("/firewalls")).length,
    1,
  );
  await provider.delete(a);
  assert.equal(fake.firewalls.size, 1, "still used by b");
  await provider.delete(b);
  assert.equal(fake.firewalls.size, 0);
  assert.equal(fake.instances.size, 0);
});

Deno.test("gcp: delete refuses an instance of another lease", async () => {
  const { fake, provider } = await setup();
  await using _ = fake;
  const a = await provider.create(specFor("a", "c3", fakePublicKey()));
  await rejectsWith(
    provider.delete({ ...a, leaseId: "cbx-ffffffffffff" }),
    (e) => assert.equal(e.code, "gcp_not_ours"),
  );
  assert.equal(fake.instances.size, 1);
});

Deno.test("gcp: 403 rateLimitExceeded is waited out like 429; a permission 403 is exit 9", async () => {
  const sleeps = sleepRecorder();
  const { fake, provider } = await setup({}, { sleep: sleeps.sleep }, {}, false);
  await using _ = fake;
  fake.inject({
    match: /aggregated/,
    status: 403,
    code: "rateLimitExceeded",
    message: "Rate Limit Exceeded",
  });
  await provider.list({});
  assert.equal(sleeps.delays.length, 1);
  fake.inject({
    match: /aggregated/,
    status: 403,
    code: "forbidden",
    message: "Required 'compute.instances.list' permission",
  });
  await rejectsWith(provider.list({}), (e) => {
    assert.equal(e.exitStatus, 9);
    assert.match(e.message, /GOOGLE_OAUTH_ACCESS_TOKEN.*compute\.instances\.list/);
  });
});

Deno.test("fake gcp: hand-made bad requests get Google's error envelope", async () => {
  await using fake = await startFakeGcp();
  const call = async (method: string, path: string, body?: unknown, token = fake.accessToken) => {
    const res = await fetch(`${fake.url}/projects/${fake.project}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  const noAuth = await call("GET", "/aggregated/instances", undefined, "nope");
  assert.equal(noAuth.status, 401);
  assert.equal(noAuth.body.error.errors[0].reason, "authError");
  const badLabel = await call("POST", "/zones/europe-west2-a/instances", {
    name: "x1",
    machineType: "zones/europe-west2-a/machineTypes/e2-small",
    labels: { Crew: "A" },
    disks: [{ boot: true, initializeParams: { sourceImage: "projects/p/global/images/family/f" } }],
    networkInterfaces: [{ network: "global/networks/default" }],
  });
  assert.equal(badLabel.status, 400);
  assert.equal(badLabel.body.error.code, 400);
  assert.equal(badLabel.body.error.errors[0].reason, "invalid");
  const badFilter = await call("GET", "/aggregated/instances?filter=name%3Dx");
  assert.equal(badFilter.status, 400);
  const missing = await call("GET", "/zones/europe-west2-a/instances/nope");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.errors[0].reason, "notFound");
  const tok = await fetch(fake.tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c",
  });
  assert.equal(tok.status, 400);
  assert.equal((await tok.json()).error, "invalid_grant");
});

Deno.test("gcp: a QUOTA_EXCEEDED operation error is exit 4 with Google's words; the firewall goes too", async () => {
  const { fake, provider } = await setup({ instanceQuota: 0 });
  await using _ = fake;
  await rejectsWith(provider.create(specFor("api", "q1", fakePublicKey())), (e) => {
    assert.equal(e.exitStatus, 4);
    assert.match(e.message, /QUOTA_EXCEEDED: Quota 'INSTANCES' exceeded/);
  });
  assert.equal(fake.instances.size, 0);
  assert.equal(fake.firewalls.size, 0);
});

Deno.test("gcp: registered lazily with the features it reports and names missing variables", async () => {
  const entry = providerEntry("gcp");
  assert.deepEqual([...entry.features].sort(), ["cloud-init", "ssh", "tailscale"]);
  assert.ok(providersWith("cloud-init").includes("gcp"));
  assert.match(entry.credentials?.(envOf({}), {}) ?? "", /GOOGLE_APPLICATION_CREDENTIALS/);
  assert.match(
    entry.credentials?.(envOf({ GOOGLE_OAUTH_ACCESS_TOKEN: "t" }), {}) ?? "",
    /CRABBOX_GCP_PROJECT/,
  );
  assert.equal(
    entry.credentials?.(envOf({ GOOGLE_APPLICATION_CREDENTIALS: "/k.json" }), {}),
    undefined,
  );
  const factory = await entry.load();
  assert.equal(
    factory({ home: HOME, env: envOf({}), config: {}, fetch, log: () => {} }).name,
    "gcp",
  );
});

Deno.test("gcp: a rejected GOOGLE_OAUTH_ACCESS_TOKEN is exit 9 naming it, not retried, never echoed", async () => {
  const { fake, provider } = await setup({}, {}, {
    GOOGLE_OAUTH_ACCESS_TOKEN: "ya29.wrong-token-value",
  }, false);
  await using _ = fake;
  await rejectsWith(provider.list({}), (e) => {
    assert.equal(e.exitStatus, 9);
    assert.match(e.message, /GOOGLE_OAUTH_ACCESS_TOKEN/);
    assert.ok(!e.message.includes("wrong-token-value"));
  });
  assert.equal(fake.requests.filter((r) => r.path.endsWith("/aggregated/instances")).length, 1);
});

Deno.test("fake gcp: a page token only works with the filter it was issued for", async () => {
  await using fake = await startFakeGcp({ maxPerPage: 1 });
  const headers = { authorization: `Bearer ${fake.accessToken}` };
  const base = `${fake.url}/projects/${fake.project}/aggregated/instances`;
  // Two instances so that a first page has a next page.
  for (const name of ["a-1", "a-2"]) {
    const res = await fetch(`${fake.url}/projects/${fake.project}/zones/europe-west2-a/instances`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({
        name,
        machineType: "zones/europe-west2-a/machineTypes/e2-small",
        labels: { crabbox: "true" },
        disks: [{
          boot: true,
          initializeParams: { sourceImage: "projects/p/global/images/family/f" },
        }],
        networkInterfaces: [{ network: "global/networks/default" }],
      }),
    });
    assert.equal(res.status, 200, await res.text());
  }
  const first =
    await (await fetch(`${base}?filter=${encodeURIComponent('(labels.crabbox = "true")')}`, {
      headers,
    })).json();
  assert.ok(first.nextPageToken);
  assert.deepEqual(first.items["zones/europe-west2-b"].warning.code, "NO_RESULTS_ON_PAGE");
  const other = await fetch(
    `${base}?pageToken=${first.nextPageToken}&filter=${encodeURIComponent('(labels.crew = "x")')}`,
    { headers },
  );
  assert.equal(other.status, 400);
  await other.body?.cancel();
});

Deno.test("gcp: an error answer that echoes the request never repeats the user data or the auth key", async () => {
  const { fake, provider } = await setup();
  await using _ = fake;
  fake.inject({
    method: "POST",
    match: /\/instances$/,
    status: 400,
    code: "invalid",
    echoRequest: true,
  });
  await assertEchoedCreateIsClean((spec) => provider.create(spec), "gcp_");
});

Deno.test("gcp: a failed insert operation that echoes the request never repeats the user data or the auth key", async () => {
  const { fake, provider } = await setup({ insertOperationEchoes: true });
  await using _ = fake;
  await assertEchoedCreateIsClean((spec) => provider.create(spec), "gcp_operation_failed");
});
