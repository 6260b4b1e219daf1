import assert from "node:assert/strict";
import { runDoctor } from "../../lib/doctor/checks.ts";
import { defaultTailnetProbe } from "../../lib/doctor/tailnet_probe.ts";
import { manualPolicySnippet } from "../../lib/tailnet/mod.ts";
import { leaseBox } from "../../lib/lease/create.ts";
import { parseConfig } from "../../lib/core/config.ts";
import { saveClaim } from "../../lib/lease/claims.ts";
import { encodeLabels } from "../../lib/core/labels.ts";
import { reachabilityMatrix } from "../../lib/lease/transport.ts";
import { DEFAULT_FAKE_POLICY, startFakeTailscale } from "../fakes/tailscale.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

const TAG = "tag:cbx-crew-alice-dr";

async function crewWithTailnetMember(extraEnv: Record<string, string> = {}) {
  const fake = startFakeTailscale();
  const home = await Deno.makeTempDir({ prefix: "cbx-doctor-" });
  await Deno.chmod(home, 0o700);
  const cloudy = memoryProvider("cloudy");
  const vars: Record<string, string> = {
    CRABBOX_OWNER: "alice@example.com",
    HOME: home,
    ...fake.env(),
    ...extraEnv,
  };
  const options = {
    home,
    env: (k: string) => vars[k],
    config: await parseConfig("", `${home}/config.yaml`, () => undefined, {}),
    providers: { cloudy },
    log: () => {},
  };
  await leaseBox({ slug: "api", provider: "cloudy", tailscale: true }, { ...options, crew: "dr" });
  await leaseBox({ slug: "db", provider: "cloudy" }, { ...options, crew: "dr" });
  const doctor = (env: Record<string, string | undefined> = {}) =>
    runDoctor({
      ...options,
      env: (k: string) => (k in env ? env[k] : vars[k]),
      crew: "dr",
      tailnetProbe: defaultTailnetProbe,
      manualSnippet: manualPolicySnippet,
    });
  return {
    fake,
    home,
    doctor,
    [Symbol.asyncDispose]: async () => {
      await fake.close();
      await Deno.remove(home, { recursive: true });
    },
  };
}

function tailnet(report: Awaited<ReturnType<typeof runDoctor>>) {
  return report.checks.find((c) => c.name === "tailnet")!;
}

Deno.test("doctor: rows present → ok, auto-managed (present with CRABBOX_CREW_ACL=off)", async () => {
  await using t = await crewWithTailnetMember();
  const writes = t.fake.writes.length;
  const report = await t.doctor();
  assert.equal(tailnet(report).status, "ok");
  assert.match(tailnet(report).message, /auto-managed/);
  assert.equal(
    (await t.doctor({ CRABBOX_CREW_ACL: "off" })).checks.find((c) => c.name === "tailnet")!
      .details?.mode,
    "present",
  );
  assert.equal(t.fake.writes.length, writes, "doctor never writes the policy");
  const crew = report.checks.find((c) => c.name === "crew")!;
  assert.equal(crew.status, "ok");
  assert.match(crew.message, /pending=1/);
  assert.match(crew.message, /none=1/);
  assert.equal(report.ok, true, JSON.stringify(report.checks));
});

Deno.test("doctor: rows missing → fail with the manual snippet", async () => {
  await using t = await crewWithTailnetMember();
  t.fake.policy = DEFAULT_FAKE_POLICY;
  const report = await t.doctor();
  const c = tailnet(report);
  assert.equal(c.status, "fail");
  assert.match(c.message, /missing the tagOwners entry and the self-peering rule/);
  assert.ok(String(c.details?.snippet).includes(TAG));
  assert.equal(report.ok, false);
});

Deno.test("doctor: no TS_API_KEY → skip and print the snippet", async () => {
  await using t = await crewWithTailnetMember();
  const c = tailnet(await t.doctor({ TS_API_KEY: undefined }));
  assert.equal(c.status, "skip");
  assert.match(c.message, /TS_API_KEY is not set/);
  const snippet = String(c.details?.snippet);
  assert.ok(snippet.includes(`"${TAG}"`));
  assert.match(snippet, /grants/);
  assert.match(snippet, /acls/);
});

Deno.test("doctor: Headscale-like control plane → skip with a hint", async () => {
  await using t = await crewWithTailnetMember();
  t.fake.setFault({ kind: "headscale" });
  const c = tailnet(await t.doctor());
  assert.equal(c.status, "skip");
  assert.match(c.message, /no Tailscale-compatible policy API/);
  assert.equal(c.details?.apiUrl, t.fake.url);
});

Deno.test("doctor: API error 500 → fail 'policy lookup failed'", async () => {
  await using t = await crewWithTailnetMember();
  t.fake.setFault({ kind: "status", status: 500, times: 10 });
  const report = await t.doctor();
  assert.equal(tailnet(report).status, "fail");
  assert.match(tailnet(report).message, /^policy lookup failed/);
  assert.ok(!JSON.stringify(report).includes(t.fake.apiKey), "API key never in the report");
});

Deno.test("doctor: --tailscale member on a provider without the feature fails by name", async () => {
  const home = await Deno.makeTempDir({ prefix: "cbx-doctor-" });
  try {
    const plain = memoryProvider("plain", ["ssh"]);
    const labels = encodeLabels({
      leaseId: "cbx-00000000000e",
      crew: "dr",
      slug: "odd",
      tailscale: true,
    });
    const pl = await plain.create({
      leaseId: "cbx-00000000000e",
      slug: "odd",
      role: "odd",
      expose: [],
      labels,
      sshPublicKey: "",
      sshKeyPath: "",
    });
    await saveClaim(home, {
      id: "cbx-00000000000e",
      provider: "plain",
      providerId: pl.providerId,
      crew: "dr",
      slug: "odd",
      role: "odd",
      owner: "alice",
      labels,
      expose: [],
      tailscale: true,
      createdAt: new Date().toISOString(),
      state: "active",
    });
    const report = await runDoctor({
      home,
      env: (k) => ({ CRABBOX_OWNER: "alice@example.com" } as Record<string, string>)[k],
      config: await parseConfig("", "c.yaml", () => undefined, {}),
      providers: { plain },
      crew: "dr",
    });
    const c = tailnet(report);
    assert.equal(c.status, "fail");
    assert.match(c.message, /odd \(plain\)/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("reachability matrix: tailnet↔tailnet OK, ssh via operator mesh, pending/none NO", () => {
  const cells = reachabilityMatrix([
    { slug: "a", transport: "tailnet" },
    { slug: "b", transport: "tailnet" },
    { slug: "c", transport: "ssh" },
    { slug: "d", transport: "pending" },
    { slug: "e", transport: "none" },
  ]);
  const v = (from: string, to: string) => cells.find((c) => c.from === from && c.to === to)!;
  assert.equal(v("a", "b").verdict, "ok");
  assert.equal(v("a", "c").verdict, "via-operator");
  assert.equal(v("c", "a").reason, "via operator SSH-mesh");
  assert.equal(v("c", "d").verdict, "no");
  assert.match(v("c", "d").reason, /pending/);
  assert.match(v("e", "a").reason, /source has no transport/);
  assert.equal(cells.length, 20);
});

Deno.test("doctor --online proves provider credentials with one read-only call", async () => {
  const { startFakeHetzner } = await import("../fakes/hetzner.ts");
  await using fake = startFakeHetzner();
  const home = await Deno.makeTempDir({ prefix: "cbx-doctor-" });
  try {
    const config = await parseConfig("provider: hetzner\n", "c.yaml", () => undefined, {});
    const run = (token: string, online: boolean) =>
      runDoctor({
        home,
        config,
        online,
        env: (k) =>
          ({ HCLOUD_TOKEN: token, CRABBOX_HETZNER_API_URL: fake.url } as Record<string, string>)[k],
      });
    const offline = (await run("wrong-token", false)).checks.find((c) => c.name === "providers")!;
    assert.equal(offline.status, "ok", "offline only checks presence");
    assert.equal(fake.requests.length, 0, "no network call without --online");
    const bad = (await run("wrong-token", true)).checks.find((c) => c.name === "providers")!;
    assert.equal(bad.status, "fail");
    assert.match(bad.message, /hetzner: online check failed: .*HCLOUD_TOKEN/);
    assert.ok(!bad.message.includes("wrong-token"), "token never echoed");
    const good = (await run(fake.token, true)).checks.find((c) => c.name === "providers")!;
    assert.equal(good.status, "ok");
    assert.match(good.message, /hetzner: ok \(online\)/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
