/**
 * The crew security group opens ssh to the operator, not the world:
 * `aws.sshCidrs`, else the address a what-is-my-IP service (a local fake)
 * reports, else 0.0.0.0/0 with a warning. Against the fake EC2, which
 * records every AuthorizeSecurityGroupIngress source block.
 */

import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/errors.ts";
import { createAwsProvider } from "../../../providers/aws/provider.ts";
import { awsSettings, sshIngressPlan } from "../../../providers/aws/api.ts";
import { detectOperatorCidr, hostCidrOf, parseCidr } from "../../../providers/cloud/mod.ts";
import { type FakeAws, startFakeAws } from "../../fakes/aws.ts";
import { type FakeIpEcho, type FakeIpEchoOptions, startFakeIpEcho } from "../../fakes/ip_echo.ts";
import { envOf, fakePublicKey, logRecorder, specFor, sshRecorder } from "../cloud_helpers.ts";

const HOME = "/tmp/cbx-aws-cidr-test";

function provider(fake: FakeAws, echo: FakeIpEcho | undefined, config = {}, timeoutMs?: number) {
  const logs = logRecorder();
  const p = createAwsProvider({
    home: HOME,
    env: envOf({ ...fake.env, ...(echo ? { CRABBOX_IP_ECHO_URL: echo.url } : {}) }),
    config,
    fetch,
    log: logs.log,
  }, {
    waitForSsh: sshRecorder().waitForSsh,
    pollIntervalMs: 1,
    readFile: () => Promise.resolve(undefined),
    ipEchoTimeoutMs: timeoutMs,
  });
  return { p, logs };
}

async function withFakes(
  echoOptions: FakeIpEchoOptions,
  fn: (fake: FakeAws, echo: FakeIpEcho) => Promise<void>,
) {
  await using fake = startFakeAws({ onCreate: () => ({ ipv4: "127.77.0.9" }) });
  await using echo = startFakeIpEcho(echoOptions);
  await fn(fake, echo);
}

const ingressOf = (fake: FakeAws) =>
  [...fake.securityGroups.values()].flatMap((g) => g.ingress.map((r) => `${r.from} ${r.cidr}`));
const authorizeCalls = (fake: FakeAws) =>
  fake.requests.filter((r) => r.action === "AuthorizeSecurityGroupIngress" && r.status === 200);

Deno.test("aws sshCidrs: detection ok → port 22 open to the operator's /32 only, asked once per provider", async () => {
  await withFakes({ answer: "203.0.113.7\n" }, async (fake, echo) => {
    const { p, logs } = provider(fake, echo);
    await p.create(specFor("api", "c1", fakePublicKey()));
    await p.create(specFor("db", "c1", fakePublicKey()));
    assert.deepEqual(ingressOf(fake), ["22 203.0.113.7/32"]);
    assert.equal(echo.hits, 1, "one detection for the provider");
    assert.equal(authorizeCalls(fake).length, 1, "the second member finds the rule in place");
    assert.ok(logs.lines.some((l) => l.includes("203.0.113.7/32")));
    assert.ok(!logs.lines.some((l) => l.includes("0.0.0.0/0")));
  });
});

Deno.test("aws sshCidrs: an IPv6 answer → Ipv6Ranges /128", async () => {
  await withFakes({ answer: "2001:DB8::7\n" }, async (fake, echo) => {
    const { p } = provider(fake, echo);
    await p.create(specFor("api", "c6", fakePublicKey()));
    assert.deepEqual(ingressOf(fake), ["22 2001:db8::7/128"]);
    const body = authorizeCalls(fake)[0].body as Record<string, string>;
    assert.equal(body["IpPermissions.1.Ipv6Ranges.1.CidrIpv6"], "2001:db8::7/128");
    assert.equal(body["IpPermissions.1.IpRanges.1.CidrIp"], undefined);
  });
});

Deno.test("aws sshCidrs: a garbage answer → 0.0.0.0/0 with one warning naming aws.sshCidrs", async () => {
  await withFakes({ answer: "<html>203.0.113.7</html>" }, async (fake, echo) => {
    const { p, logs } = provider(fake, echo);
    await p.create(specFor("api", "cg", fakePublicKey()));
    assert.deepEqual(ingressOf(fake), ["22 0.0.0.0/0"]);
    const warnings = logs.lines.filter((l) => l.includes("warning"));
    assert.equal(warnings.length, 1, logs.lines.join("\n"));
    assert.match(warnings[0], /not one IP address.*0\.0\.0\.0\/0.*set aws\.sshCidrs/);
    assert.ok(!warnings[0].includes("\n"));
    assert.equal(echo.hits, 1, "a garbage answer is final, not retried");
  });
});

Deno.test("aws sshCidrs: a service that never answers is bounded (two attempts), then 0.0.0.0/0 with a warning", async () => {
  await withFakes({ hang: true }, async (fake, echo) => {
    const { p, logs } = provider(fake, echo, {}, 300);
    const started = performance.now();
    await p.create(specFor("api", "ct", fakePublicKey()));
    const ms = performance.now() - started;
    assert.ok(ms < 5_000, `took ${ms} ms`);
    assert.equal(echo.hits, 2, "one try and one retry");
    assert.deepEqual(ingressOf(fake), ["22 0.0.0.0/0"]);
    assert.ok(logs.lines.some((l) => /no answer within 300 ms.*set aws\.sshCidrs/.test(l)));
  });
});

Deno.test("aws sshCidrs: config overrides detection (no HTTP call), IPv4 and IPv6 in one call", async () => {
  await withFakes({}, async (fake, echo) => {
    const { p, logs } = provider(fake, echo, {
      sshCidrs: ["198.51.100.0/24", "2001:db8:1::/48", "198.51.100.0/24"],
    });
    await p.create(specFor("api", "cc", fakePublicKey()));
    assert.equal(echo.hits, 0);
    assert.deepEqual(ingressOf(fake), ["22 198.51.100.0/24", "22 2001:db8:1::/48"]);
    assert.equal(authorizeCalls(fake).length, 1);
    assert.ok(!logs.lines.some((l) => l.includes("warning")));
  });
});

Deno.test("aws sshCidrs: an existing world-open group gains the operator's block, is never narrowed, and is reported", async () => {
  await withFakes({ answer: "203.0.113.7" }, async (fake, echo) => {
    // An older crabbox (or a person) opened the crew's group to everyone.
    await provider(fake, echo, { sshCidrs: ["0.0.0.0/0"] }).p.create(
      specFor("api", "cw", fakePublicKey()),
    );
    const { p, logs } = provider(fake, echo);
    await p.create(specFor("db", "cw", fakePublicKey()));
    assert.deepEqual(ingressOf(fake), ["22 0.0.0.0/0", "22 203.0.113.7/32"]);
    assert.ok(
      logs.lines.some((l) =>
        /already opens port 22 to 0\.0\.0\.0\/0; crabbox never narrows/.test(l)
      ),
      logs.lines.join("\n"),
    );
  });
});

Deno.test("aws sshCidrs: a bad CIDR or type is a config error (exit 11) naming the key", () => {
  const env = envOf({ AWS_REGION: "eu-west-1" });
  for (const bad of [["203.0.113.7"], ["10.0.0.0/33"], ["2001:db8::/129"], ["x/8"], 42, []]) {
    assert.throws(() => awsSettings(env, { sshCidrs: bad }), (e: unknown) => {
      assert.ok(e instanceof CrabboxError);
      assert.equal(e.exitStatus, 11);
      assert.match(e.message, /aws\.sshCidrs/);
      return true;
    });
  }
  assert.throws(
    () =>
      awsSettings(
        envOf({ AWS_REGION: "eu-west-1", CRABBOX_IP_ECHO_URL: "http://example.com/" }),
        {},
      ),
    /CRABBOX_IP_ECHO_URL must be an https URL/,
  );
  assert.throws(() => awsSettings(env, { ipEchoUrl: "http://ip.example/" }), (e: unknown) => {
    assert.ok(e instanceof CrabboxError);
    assert.equal(e.exitStatus, 11);
    assert.match(e.message, /aws\.ipEchoUrl must be an https URL/);
    return true;
  });
  assert.deepEqual(awsSettings(env, { sshCidrs: "203.0.113.0/24" }).sshCidrs, ["203.0.113.0/24"]);
  assert.equal(awsSettings(env, {}).ipEchoUrl, "https://checkip.amazonaws.com/");
  assert.equal(
    awsSettings(env, { ipEchoUrl: "https://ip.example/" }).ipEchoUrl,
    "https://ip.example/",
  );
});

Deno.test("operator address: parsing of CIDRs and what-is-my-IP answers; the ingress plan only adds", async () => {
  assert.equal(parseCidr("203.0.113.7/32"), "203.0.113.7/32");
  assert.equal(parseCidr("2001:DB8::/32"), "2001:db8::/32");
  for (const bad of ["203.0.113.7", "256.0.0.0/8", "1.2.3.4/032", "fe80::1%eth0/64", "::/"]) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
  assert.equal(hostCidrOf(" 198.51.100.4\r\n"), "198.51.100.4/32");
  for (const bad of ["", "1.2.3.4 5.6.7.8", "1.2.3.4/32", "::ffff:1.2.3.4x", "ok"]) {
    assert.equal(hostCidrOf(bad), undefined, bad);
  }
  assert.deepEqual(
    sshIngressPlan([{ port: 22, cidrs: ["203.0.113.7/32"] }], 22, ["203.0.113.7/32"]),
    {
      add: [],
      wider: [],
    },
  );
  assert.deepEqual(sshIngressPlan([{ port: 2222, cidrs: ["0.0.0.0/0"] }], 22, ["203.0.113.7/32"]), {
    add: ["203.0.113.7/32"],
    wider: [],
  });
  await using echo = startFakeIpEcho({ answer: "203.0.113.8" });
  assert.deepEqual(await detectOperatorCidr({ url: echo.url, fetch }), { cidr: "203.0.113.8/32" });
});
