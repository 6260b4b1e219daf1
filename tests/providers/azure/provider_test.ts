import assert from "node:assert/strict";
import { providerEntry, providersWith } from "../../../providers/registry.ts";
import { CrabboxError } from "../../../lib/core/errors.ts";
import { decodeLabels } from "../../../lib/core/labels.ts";
import type { CloudProviderOptions } from "../../../providers/cloud/common.ts";
import {
  azureError,
  azureSettings,
  azureTags,
  parseArmError,
} from "../../../providers/azure/api.ts";
import {
  azureCredentials,
  blamedVariable,
  parseAzureTokenResponse,
} from "../../../providers/azure/auth.ts";
import { createAzureProvider } from "../../../providers/azure/provider.ts";
import { type FakeAzureOptions, startFakeAzure } from "../../fakes/azure.ts";
import {
  assertEchoedCreateIsClean,
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";

const HOME = "/tmp/cbx-azure-test";

function setup(
  fakeOptions: FakeAzureOptions = {},
  options: CloudProviderOptions = {},
  env: Record<string, string> = {},
) {
  const fake = startFakeAzure(fakeOptions);
  const logs = logRecorder();
  const ssh = sshRecorder();
  const sleeps = sleepRecorder();
  const provider = createAzureProvider(
    { home: HOME, env: envOf({ ...fake.env, ...env }), config: {}, fetch, log: logs.log },
    { waitForSsh: ssh.waitForSsh, pollIntervalMs: 1, sleep: sleeps.sleep, ...options },
  );
  return { fake, logs, ssh, sleeps, provider };
}

async function rejectsWith(p: Promise<unknown>, check: (e: CrabboxError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CrabboxError, `expected CrabboxError, got ${e}`);
    check(e);
    return true;
  });
}

const held = (fake: ReturnType<typeof startFakeAzure>) => [...fake.resources.keys()].sort();

Deno.test("azure api: settings, tags and credentials are validated with the variable named", () => {
  const sub = "00000000-0000-0000-0000-000000000000";
  const s = azureSettings(envOf({ AZURE_SUBSCRIPTION_ID: sub }), {});
  assert.equal(s.resourceGroup, "crabbox-leases");
  assert.equal(s.location, "eastus");
  assert.equal(azureSettings(envOf({ CRABBOX_AZURE_SUBSCRIPTION_ID: sub }), {}).subscription, sub);
  assert.throws(
    () => azureSettings(envOf({}), {}),
    (e: CrabboxError) => e.exitStatus === 9 && /AZURE_SUBSCRIPTION_ID/.test(e.message),
  );
  assert.throws(
    () => azureSettings(envOf({ AZURE_SUBSCRIPTION_ID: sub }), { sshUser: "Bad User" }),
    /sshUser/,
  );
  assert.throws(
    () => azureCredentials(envOf({ AZURE_TENANT_ID: "t" })),
    (e: CrabboxError) =>
      e.exitStatus === 9 && e.message === "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET not set",
  );
  assert.throws(() => azureTags({ "a/b": "x" }), /not allowed/);
  assert.throws(() => azureTags({ windowsThing: "x" }), /reserved/);
  assert.throws(() => azureTags({ Crew: "a", crew: "b" }), /collide/);
  assert.throws(() => azureTags({ k: "v".repeat(257) }), /256/);
  assert.equal(blamedVariable([7000215], "invalid_client"), "AZURE_CLIENT_SECRET");
  assert.equal(blamedVariable([700016], "unauthorized_client"), "AZURE_CLIENT_ID");
  assert.equal(blamedVariable([90002], "invalid_request"), "AZURE_TENANT_ID");
  assert.throws(
    () =>
      parseAzureTokenResponse(
        401,
        JSON.stringify({
          error: "invalid_client",
          error_codes: [7000215],
          error_description: "AADSTS7000215: Invalid client secret provided.",
        }),
        0,
      ),
    (e: CrabboxError) => e.exitStatus === 9 && /AZURE_CLIENT_SECRET/.test(e.message),
  );
  const quota = azureError(
    409,
    parseArmError(
      409,
      JSON.stringify({ error: { code: "OperationNotAllowed", message: "exceeding quota" } }),
    ),
    { what: "create vm x" },
  );
  assert.equal(quota.exitStatus, 4);
  assert.match(quota.message, /OperationNotAllowed: exceeding quota/);
  // A 403 is the service principal lacking a role: credentials (exit 9), with or without the code.
  for (const code of ["AuthorizationFailed", "LinkedAuthorizationFailed"]) {
    const denied = azureError(
      403,
      parseArmError(
        403,
        JSON.stringify({ error: { code, message: "does not have authorization" } }),
      ),
      { what: "create vm x" },
    );
    assert.equal(denied.exitStatus, 9, code);
    assert.equal(denied.code, "azure_forbidden", code);
    assert.match(denied.hint ?? "", /Contributor/);
  }
});

Deno.test("azure: create builds the shared network once, then PIP, NIC and VM with every api-version", async () => {
  const { fake, provider, ssh } = setup({ operationPolls: 3 });
  await using _ = fake;
  const spec = specFor("api", "az1", fakePublicKey());
  const lease = await provider.create(spec);
  assert.deepEqual(held(fake), [
    "disk/crabbox-api-" + spec.leaseId.slice(4) + "-osdisk",
    "nic/crabbox-api-" + spec.leaseId.slice(4) + "-nic",
    "nsg/crabbox-crew-az1-nsg",
    "pip/crabbox-api-" + spec.leaseId.slice(4) + "-pip",
    "vm/crabbox-api-" + spec.leaseId.slice(4),
    "vnet/crabbox-crew-az1-vnet",
  ]);
  const vm = fake.resources.get(`vm/crabbox-api-${spec.leaseId.slice(4)}`)!;
  assert.equal(vm.customData, spec.userData);
  assert.deepEqual(vm.tags, spec.labels);
  const os = vm.properties.osProfile as {
    linuxConfiguration: { ssh: { publicKeys: { path: string; keyData: string }[] } };
  };
  assert.deepEqual(os.linuxConfiguration.ssh.publicKeys, [{
    path: "/home/crabbox/.ssh/authorized_keys",
    keyData: spec.sshPublicKey,
  }]);
  assert.ok(
    fake.requests.filter((r) => !r.path.includes("/token")).every((r) => r.query["api-version"]),
    "api-version everywhere",
  );
  assert.ok(fake.requests.some((r) => r.path.includes("/operations/")), "async operations polled");
  const pip = fake.resources.get(`pip/crabbox-api-${spec.leaseId.slice(4)}-pip`)!;
  assert.equal(lease.ssh?.host, pip.properties.ipAddress);
  assert.equal(ssh.calls.length, 1);
  assert.equal(decodeLabels(lease.labels)?.crew, "az1");
  assert.equal(fake.issuedTokens, 1, "one token for the whole create");
});

Deno.test("azure: delete waits out NicReservedForAnotherVm (bounded) and removes the crew network with the last VM", async () => {
  const { fake, provider, logs } = setup({ nicReservedAttempts: 2 });
  await using _ = fake;
  const key = fakePublicKey();
  const a = await provider.create(specFor("a", "az2", key));
  const b = await provider.create(specFor("b", "az2", key));
  await provider.delete(a);
  assert.ok(fake.resources.has("vnet/crabbox-crew-az2-vnet"), "b still uses the network");
  assert.equal(logs.lines.filter((l) => l.includes("NicReservedForAnotherVm")).length, 2);
  await provider.delete(b);
  assert.deepEqual(held(fake), []);
  assert.ok(fake.groups.has("crabbox-leases"), "the configured resource group is kept");
});

Deno.test("azure: a NIC that stays reserved is reported, not looped on forever", async () => {
  const { fake, provider } = setup({ nicReservedAttempts: 100 });
  await using _ = fake;
  const a = await provider.create(specFor("a", "az3", fakePublicKey()));
  await rejectsWith(provider.delete(a), (e) => {
    assert.equal(e.code, "azure_cleanup_incomplete");
    assert.match(e.message, /nic crabbox-a-/);
  });
});

Deno.test("azure: wrong secret, unknown client and tenant are exit 9 naming the variable, never the secret", async () => {
  for (
    const [env, variable] of [
      [{ AZURE_CLIENT_SECRET: "wrong-secret-value" }, "AZURE_CLIENT_SECRET"],
      [{ AZURE_CLIENT_ID: "99999999-7777-8888-9999-000000000000" }, "AZURE_CLIENT_ID"],
      [{ AZURE_TENANT_ID: "99999999-2222-3333-4444-555555555555" }, "AZURE_TENANT_ID"],
    ] as const
  ) {
    const { fake, provider } = setup({}, {}, env);
    await using _ = fake;
    await rejectsWith(provider.list({}), (e) => {
      assert.equal(e.exitStatus, 9);
      assert.match(e.message, new RegExp(variable));
      assert.ok(
        !e.message.includes("wrong-secret-value") &&
          !e.message.includes(fake.env.AZURE_CLIENT_SECRET),
      );
    });
  }
});

Deno.test("azure: an expired token is refreshed once; a missing api-version is Azure's 400", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  await provider.list({});
  fake.expireTokens();
  await provider.list({});
  assert.equal(fake.issuedTokens, 2);
  const token =
    await (await fetch(`${fake.loginUrl}/${fake.env.AZURE_TENANT_ID}/oauth2/v2.0/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: fake.env.AZURE_CLIENT_ID,
        client_secret: fake.env.AZURE_CLIENT_SECRET,
        scope: "https://management.azure.com/.default",
      }),
    })).json();
  const res = await fetch(
    `${fake.armUrl}/subscriptions/${fake.env.AZURE_SUBSCRIPTION_ID}/resourcegroups/x`,
    {
      headers: { authorization: `Bearer ${token.access_token}` },
    },
  );
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.code, "MissingApiVersionParameter");
  const wrong = await fetch(
    `${fake.armUrl}/subscriptions/${fake.env.AZURE_SUBSCRIPTION_ID}/resourcegroups/x?api-version=2024-07-01`,
    {
      headers: { authorization: `Bearer ${token.access_token}` },
    },
  );
  assert.equal((await wrong.json()).error.code, "InvalidApiVersionParameter");
});

Deno.test("azure: an async operation pointing off the ARM host is refused (the token stays home)", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  const evil = (input: RequestInfo | URL, init?: RequestInit) =>
    fetch(input, init).then((res) => {
      if (!res.headers.has("azure-asyncoperation")) return res;
      const headers = new Headers(res.headers);
      headers.set("azure-asyncoperation", "https://evil.example.com/op");
      return new Response(res.body, { status: res.status, headers });
    });
  const p = createAzureProvider(
    { home: HOME, env: envOf(fake.env), config: {}, fetch: evil as typeof fetch, log: () => {} },
    { waitForSsh: false, pollIntervalMs: 1, sleep: () => Promise.resolve() },
  );
  await rejectsWith(
    p.create(specFor("a", "az4", fakePublicKey())),
    (e) => assert.match(e.message, /refusing to send the token/),
  );
  void provider;
});

Deno.test("azure: an allocation failure inside the async operation is exit 4 with Azure's words, and rolled back", async () => {
  const { fake, provider } = setup({ unavailable: ["Standard_B2s"] });
  await using _ = fake;
  await rejectsWith(provider.create(specFor("big", "az5", fakePublicKey())), (e) => {
    assert.equal(e.exitStatus, 4);
    assert.match(
      e.message,
      /AllocationFailed: Allocation failed\. We do not have sufficient capacity/,
    );
  });
  assert.deepEqual(held(fake), []);
});

Deno.test("azure: registered lazily with the features it reports and names missing variables", async () => {
  const entry = providerEntry("azure");
  assert.deepEqual([...entry.features].sort(), ["cloud-init", "ssh", "tailscale"]);
  assert.ok(providersWith("tailscale").includes("azure"));
  assert.equal(
    entry.credentials?.(envOf({ AZURE_TENANT_ID: "t" }), {}),
    "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_SUBSCRIPTION_ID not set",
  );
  const factory = await entry.load();
  assert.equal(
    factory({ home: HOME, env: envOf({}), config: {}, fetch, log: () => {} }).name,
    "azure",
  );
});

Deno.test("azure: an error answer that echoes the request never repeats the user data or the auth key", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  fake.inject({
    method: "PUT",
    match: /virtualMachines\/[^/]+$/,
    status: 400,
    code: "InvalidParameter",
    echoRequest: true,
  });
  await assertEchoedCreateIsClean((spec) => provider.create(spec), "azure_");
});

Deno.test("azure: a failed VM operation that echoes the request never repeats the user data or the auth key", async () => {
  const { fake, provider } = setup({ vmOperationEchoes: true });
  await using _ = fake;
  await assertEchoedCreateIsClean((spec) => provider.create(spec), "azure_");
});
