import assert from "node:assert/strict";
import { AwsClient } from "aws4fetch";
import { CrabboxError } from "../../../lib/core/errors.ts";
import { decodeLabels } from "../../../lib/core/labels.ts";
import { type AwsProviderOptions, createAwsProvider } from "../../../providers/aws/provider.ts";
import {
  FAKE_CUSTOM_SUBNET,
  FAKE_DEFAULT_VPC,
  FAKE_UBUNTU_AMD64,
  type FakeAws,
  type FakeAwsOptions,
  startFakeAws,
} from "../../fakes/aws.ts";
import { type FakeIpEchoOptions, startFakeIpEcho } from "../../fakes/ip_echo.ts";
import {
  assertEchoedCreateIsClean,
  envOf,
  fakePublicKey,
  logRecorder,
  sleepRecorder,
  specFor,
  sshRecorder,
} from "../cloud_helpers.ts";

const HOME = "/tmp/cbx-aws-test";

function setup(
  fakeOptions: FakeAwsOptions = {},
  options: AwsProviderOptions = {},
  config: Record<string, unknown> = {},
  env: Record<string, string | undefined> = {},
  echoOptions: FakeIpEchoOptions = {},
) {
  const fake = startFakeAws({ maxPageSize: 2, ...fakeOptions });
  // The operator's address comes from a local what-is-my-IP fake, closed with the EC2 fake.
  const echo = startFakeIpEcho(echoOptions);
  const closeAws = fake[Symbol.asyncDispose];
  fake[Symbol.asyncDispose] = async () => {
    await closeAws();
    await echo.close();
  };
  const logs = logRecorder();
  const ssh = sshRecorder();
  const provider = createAwsProvider({
    home: HOME,
    env: envOf({ ...fake.env, CRABBOX_IP_ECHO_URL: echo.url, ...env }),
    config,
    fetch,
    log: logs.log,
  }, {
    waitForSsh: ssh.waitForSsh,
    pollIntervalMs: 1,
    readFile: () => Promise.resolve(undefined),
    ...options,
  });
  return { fake, echo, logs, ssh, provider };
}

async function rejectsWith(p: Promise<unknown>, check: (e: CrabboxError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CrabboxError, `expected CrabboxError, got ${e}`);
    check(e);
    return true;
  });
}

const actions = (fake: FakeAws) => fake.requests.map((r) => r.action);
const count = (fake: FakeAws, action: string) => actions(fake).filter((a) => a === action).length;

Deno.test("aws: create imports the key, opens only ssh, tags, waits for running + IP, then ssh", async () => {
  const { fake, ssh, provider } = setup({
    pendingPolls: 2,
    notFoundPolls: 2,
    onCreate: () => ({ ipv4: "127.77.0.5" }),
  });
  await using _ = fake;
  const spec = specFor("api", "pr-42", fakePublicKey());
  const lease = await provider.create(spec);
  assert.equal(lease.state, "running");
  assert.deepEqual(lease.ssh, {
    host: "127.77.0.5",
    port: 22,
    user: "ubuntu",
    keyPath: spec.sshKeyPath,
  });
  assert.deepEqual(ssh.calls, [{
    target: lease.ssh,
    knownHostsFile: `${HOME}/crew/pr-42/known_hosts`,
  }]);

  const inst = fake.instances.get(lease.providerId)!;
  assert.equal(inst.imageId, FAKE_UBUNTU_AMD64, "newest Canonical noble amd64, found without SSM");
  assert.deepEqual(inst.tags, { ...spec.labels, Name: "crabbox-api" });
  assert.equal(inst.userData, spec.userData);
  assert.equal(inst.httpTokens, "required");
  assert.equal(inst.clientToken, spec.leaseId);
  assert.equal(inst.keyName, "crabbox-crew-pr-42");
  const key = fake.keyPairs.get("crabbox-crew-pr-42")!;
  assert.equal(key.publicKey, spec.sshPublicKey.split(" ").slice(0, 2).join(" "));
  assert.deepEqual(key.tags, { crabbox: "true", crew: "pr-42" });
  const [group] = fake.securityGroups.values();
  assert.equal(group.name, "crabbox-crew-pr-42");
  assert.equal(group.vpcId, FAKE_DEFAULT_VPC);
  assert.deepEqual(group.tags, { crabbox: "true", crew: "pr-42" });
  // Open only to the operator's address, as the what-is-my-IP service saw it.
  assert.deepEqual(group.ingress, [{ protocol: "tcp", from: 22, to: 22, cidr: "203.0.113.7/32" }]);
  assert.deepEqual(inst.groupIds, [group.id]);
  // every request was SigV4-signed with the ec2 scope of the region
  for (const r of fake.requests) {
    assert.match(
      r.headers.authorization,
      /^AWS4-HMAC-SHA256 Credential=AKIAFAKE0000EXAMPLE1\/\d{8}\/eu-central-1\/ec2\/aws4_request, SignedHeaders=host;x-amz-date, Signature=\[redacted\]$/,
    );
    assert.equal(r.status, r.action === "DescribeInstances" ? r.status : 200);
  }
  assert.ok(
    fake.requests.some((r) => r.action === "DescribeInstances" && r.status === 400),
    "NotFound window was retried",
  );
  const run = fake.requests.find((r) => r.action === "RunInstances")!;
  assert.match((run.body as Record<string, string>).UserData, /^\[redacted \d+ chars\]$/);
});

Deno.test("aws: a second crew member reuses key pair and security group", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  const pub = fakePublicKey();
  await provider.create(specFor("api", "c", pub));
  await provider.create(specFor("db", "c", pub));
  assert.equal(count(fake, "ImportKeyPair"), 1);
  assert.equal(count(fake, "CreateSecurityGroup"), 1);
  assert.equal(count(fake, "AuthorizeSecurityGroupIngress"), 1);
  assert.equal(fake.securityGroups.size, 1);
});

Deno.test("aws: list paginates with NextToken, labels round-trip, cleanup when the last instance is gone", async () => {
  const { fake, provider, logs } = setup({ terminatePolls: 2 });
  await using _ = fake;
  const pub = fakePublicKey();
  const specs = ["api", "db", "worker-1", "worker-2", "worker-3"].map((s) =>
    specFor(s, "alpha", pub, { expose: s === "db" ? [5432] : [8080, 9090] })
  );
  for (const spec of specs) await provider.create(spec);
  await provider.create(specFor("solo", "beta", fakePublicKey()));
  await provider.create(specFor("loner", undefined, fakePublicKey()));

  fake.requests.length = 0;
  const leases = await provider.list({ crew: "alpha" });
  assert.equal(leases.length, 5);
  const pages = fake.requests.filter((r) => r.action === "DescribeInstances");
  assert.equal(pages.length, 3, "5 instances at 2 per page");
  const body = pages[0].body as Record<string, string>;
  assert.equal(body["Filter.1.Name"], "tag:crabbox");
  assert.equal(body["Filter.2.Name"], "tag:crew");
  assert.equal(body["Filter.2.Value.1"], "alpha");
  assert.equal(body["Filter.3.Name"], "instance-state-name");
  assert.ok((pages[1].body as Record<string, string>).NextToken);
  for (const spec of specs) {
    const got = leases.find((l) => l.leaseId === spec.leaseId)!;
    assert.ok(got, spec.slug);
    assert.deepEqual(got.labels, spec.labels);
    assert.deepEqual(decodeLabels(got.labels), decodeLabels(spec.labels));
    assert.equal(got.labels.role, spec.role);
    assert.equal(got.ssh?.keyPath, `${HOME}/keys/crew-alpha/id_ed25519`);
  }
  assert.equal((await provider.list({})).length, 7);
  assert.equal((await provider.get(leases[0].providerId))?.leaseId, leases[0].leaseId);
  assert.equal(await provider.get("i-0000000000000dead"), undefined);
  assert.equal(await provider.get("not-an-id"), undefined);

  for (const lease of leases.slice(0, 4)) await provider.delete(lease);
  assert.ok(fake.keyPairs.has("crabbox-crew-alpha"), "key pair stays while a member lives");
  assert.equal(
    [...fake.securityGroups.values()].filter((g) => g.name === "crabbox-crew-alpha").length,
    1,
  );
  await provider.delete(leases[4]);
  assert.ok(!fake.keyPairs.has("crabbox-crew-alpha"));
  assert.equal(
    [...fake.securityGroups.values()].filter((g) => g.name === "crabbox-crew-alpha").length,
    0,
  );
  assert.ok(logs.lines.some((l) => l.includes("deleted security group crabbox-crew-alpha")));
  assert.equal(
    (await provider.list({ crew: "alpha" })).length,
    0,
    "terminated instances are not listed",
  );
  await provider.delete(leases[4]); // deleting a gone box succeeds

  for (const lease of await provider.list({})) await provider.delete(lease);
  assert.equal(fake.keyPairs.size, 0);
  assert.equal(fake.securityGroups.size, 0);
});

Deno.test("aws: delete refuses an instance of another lease", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  const lease = await provider.create(specFor("api", "c", fakePublicKey()));
  await rejectsWith(
    provider.delete({ ...lease, leaseId: "cbx-ffffffffffff", labels: {} }),
    (e) => assert.equal(e.code, "aws_not_ours"),
  );
  assert.equal(fake.instances.get(lease.providerId)?.state, "running");
});

Deno.test("aws: a configured subnet launches with an associated public IP in its VPC", async () => {
  const { fake, provider } = setup({}, {}, {
    subnetId: FAKE_CUSTOM_SUBNET,
    sshPort: 2222,
    sshUser: "crabbox",
  });
  await using _ = fake;
  const lease = await provider.create(specFor("api", "c", fakePublicKey()));
  assert.equal(lease.ssh?.port, 2222);
  assert.equal(lease.ssh?.user, "crabbox");
  assert.match(lease.ssh?.host ?? "", /^198\.51\.100\./);
  const [group] = fake.securityGroups.values();
  assert.equal(group.vpcId, "vpc-0fake00000000cust");
  assert.deepEqual(group.ingress.map((r) => r.from), [2222]);
});

Deno.test("aws: no default VPC is a config error naming aws.subnetId", async () => {
  const { fake, provider } = setup({ noDefaultVpc: true });
  await using _ = fake;
  await rejectsWith(provider.create(specFor("api", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "aws_no_default_vpc");
    assert.match(e.hint ?? "", /aws.subnetId/);
  });
});

Deno.test("aws: credentials errors never carry the secret", async () => {
  const noCreds = createAwsProvider({
    home: HOME,
    env: envOf({ AWS_REGION: "eu-west-1" }),
    config: {},
    fetch,
    log: () => {},
  }, {
    waitForSsh: false,
    readFile: () => Promise.resolve(undefined),
  });
  await rejectsWith(noCreds.list({}), (e) => assert.equal(e.kind, "credentials"));

  const wrong = setup({}, {}, {}, { AWS_SECRET_ACCESS_KEY: "wrong/secret+value/0123456789" });
  await using _ = wrong.fake;
  await rejectsWith(wrong.provider.list({}), (e) => {
    assert.equal(e.kind, "credentials");
    assert.equal(e.details?.code, "AuthFailure");
    assert.match(e.message, /AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY/);
  });

  const region = setup({}, {}, {}, { AWS_REGION: "us-east-1" });
  await using __ = region.fake;
  await rejectsWith(
    region.provider.list({}),
    (e) => assert.match(e.message, /scoped to a valid region/),
  );

  const sts = setup({ sessionToken: "FwoGZXIvYXdzEJr//session/token/value" });
  await using ___ = sts.fake;
  assert.deepEqual(await sts.provider.list({}), []);
  assert.equal(sts.fake.requests[0].headers["x-amz-security-token"], "[redacted]");
  const noToken = setup({ sessionToken: "FwoGZXIvYXdzEJr//session/token/value" }, {}, {}, {
    AWS_SESSION_TOKEN: undefined,
  });
  await using ____ = noToken.fake;
  await rejectsWith(noToken.provider.list({}), (e) => assert.equal(e.kind, "credentials"));

  const everything = JSON.stringify([
    wrong.fake.requests,
    wrong.logs.lines,
    sts.fake.requests,
    sts.logs.lines,
  ]);
  for (
    const secret of [
      "wrong/secret+value",
      sts.fake.env.AWS_SECRET_ACCESS_KEY,
      "session/token/value",
    ]
  ) {
    assert.ok(!everything.includes(secret), `${secret} leaked`);
  }
});

Deno.test("aws: UnauthorizedOperation names the action, without the encoded message", async () => {
  const { fake, provider } = setup({ denyActions: ["RunInstances"] });
  await using _ = fake;
  await rejectsWith(provider.create(specFor("api", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "aws_unauthorized");
    assert.match(e.message, /ec2:RunInstances in eu-central-1/);
    assert.doesNotMatch(e.message, /Encoded/);
  });
});

Deno.test("aws: InstanceLimitExceeded, InsufficientInstanceCapacity and InvalidAMIID map clearly and are not retried", async () => {
  const sleeps = sleepRecorder();
  const limit = setup({ instanceLimit: 1 }, { sleep: sleeps.sleep });
  await using _ = limit.fake;
  await limit.provider.create(specFor("a", "c", fakePublicKey()));
  await rejectsWith(limit.provider.create(specFor("b", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "aws_limit");
    assert.match(e.message, /instance limit of 1/);
  });
  const cap = setup({ insufficientCapacity: ["t3.small"] }, { sleep: sleeps.sleep });
  await using __ = cap.fake;
  await rejectsWith(cap.provider.create(specFor("a", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "aws_capacity");
    assert.match(e.message, /t3\.small in eu-central-1/);
  });
  assert.equal(count(cap.fake, "RunInstances"), 1);
  const ami = setup({}, { sleep: sleeps.sleep }, { ami: "ami-0123456789abcdef0" });
  await using ___ = ami.fake;
  await rejectsWith(ami.provider.create(specFor("a", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "aws_ami");
    assert.match(e.message, /ami-0123456789abcdef0/);
  });
  assert.deepEqual(sleeps.delays.filter((d) => d > 1), [], "no backoff for non-transient errors");
});

Deno.test("aws: an AMI of the wrong architecture is EC2's InvalidParameterValue, verbatim", async () => {
  const { fake, provider } = setup({}, {}, { instanceType: "t4g.small", ami: FAKE_UBUNTU_AMD64 });
  await using _ = fake;
  await rejectsWith(provider.create(specFor("a", "c", fakePublicKey())), (e) => {
    assert.equal(e.code, "aws_error");
    assert.match(e.message, /architecture 'arm64' of the specified instance type/);
  });
  const arm = setup({}, {}, { instanceType: "t4g.small" });
  await using __ = arm.fake;
  const lease = await arm.provider.create(specFor("a", "c", fakePublicKey()));
  assert.equal(arm.fake.instances.get(lease.providerId)?.imageId, "ami-0c0c0c0c0c0c0c0c3");
});

Deno.test("aws: RequestLimitExceeded is retried with bounded backoff", async () => {
  const sleeps = sleepRecorder();
  const { fake, provider } = setup({}, { sleep: sleeps.sleep, maxRetries: 3, maxBackoffMs: 2000 });
  await using _ = fake;
  fake.inject({
    match: "DescribeInstances",
    status: 503,
    code: "RequestLimitExceeded",
    message: "Request limit exceeded.",
    times: 2,
  });
  assert.deepEqual(await provider.list({}), []);
  assert.equal(sleeps.delays.length, 2);
  fake.inject({
    match: "DescribeInstances",
    status: 503,
    code: "RequestLimitExceeded",
    times: 100,
  });
  await rejectsWith(provider.list({}), (e) => assert.equal(e.code, "aws_throttled"));
  assert.equal(sleeps.delays.length, 2 + 3);
  for (const d of sleeps.delays) assert.ok(d > 0 && d <= 2000, `delay ${d} bounded`);
  assert.equal(count(fake, "DescribeInstances"), 3 + 4);
});

Deno.test("aws: RunInstances retried after a 500 is idempotent by ClientToken", async () => {
  const sleeps = sleepRecorder();
  const { fake, provider } = setup({}, { sleep: sleeps.sleep });
  await using _ = fake;
  fake.inject({
    match: "RunInstances",
    status: 500,
    code: "InternalError",
    message: "An internal error has occurred",
  });
  await provider.create(specFor("a", "c", fakePublicKey()));
  assert.equal(count(fake, "RunInstances"), 2);
  assert.equal(fake.instances.size, 1);
});

Deno.test("aws: an instance that never runs times out and is terminated", async () => {
  const { fake, provider } = setup({ pendingPolls: 1_000_000 }, { readyTimeoutMs: 50 });
  await using _ = fake;
  await rejectsWith(
    provider.create(specFor("a", "c", fakePublicKey())),
    (e) => assert.equal(e.code, "aws_timeout"),
  );
  assert.ok(["shutting-down", "terminated"].includes([...fake.instances.values()][0].state));
});

Deno.test("aws: the default ssh wait is the real one", async () => {
  const fake = startFakeAws({ onCreate: () => ({ ipv4: "127.0.0.1" }) });
  await using _ = fake;
  const home = await Deno.makeTempDir();
  try {
    const provider = createAwsProvider({
      home,
      env: envOf(fake.env),
      config: { sshPort: 1, sshCidrs: ["127.0.0.1/32"] },
      fetch,
      log: () => {},
    }, {
      pollIntervalMs: 1,
      sshTimeoutMs: 300,
      readFile: () => Promise.resolve(undefined),
    });
    await rejectsWith(provider.create(specFor("a", "c", fakePublicKey())), (e) => {
      assert.equal(e.kind, "ssh");
      assert.match(e.message, /ubuntu@127\.0\.0\.1:1/);
    });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

// ------------------------------------------------------ the fake is strict

Deno.test("fake aws: hand-made bad requests get EC2's documented errors", async () => {
  await using fake = startFakeAws();
  const client = new AwsClient({
    accessKeyId: fake.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: fake.env.AWS_SECRET_ACCESS_KEY,
    service: "ec2",
    region: fake.region,
    retries: 0,
  });
  const form = { "content-type": "application/x-www-form-urlencoded; charset=utf-8" };
  const send = async (
    body: string,
    opts: { client?: AwsClient; datetime?: string; tamper?: boolean; unsigned?: boolean } = {},
  ) => {
    let req: Request;
    if (opts.unsigned) req = new Request(fake.url, { method: "POST", headers: form, body });
    else {
      req = await (opts.client ?? client).sign(fake.url, {
        method: "POST",
        headers: form,
        body,
        ...(opts.datetime ? { aws: { datetime: opts.datetime } } : {}),
      } as RequestInit);
    }
    if (opts.tamper) {
      req = new Request(req.url, { method: "POST", headers: req.headers, body: body + "&x=1" });
    }
    const res = await fetch(req);
    const text = await res.text();
    return { status: res.status, code: text.match(/<Code>([^<]+)<\/Code>/)?.[1], text };
  };
  const v = "Version=2016-11-15";
  assert.deepEqual(
    (await send(`Action=DescribeVpcs&${v}`, { unsigned: true })).code,
    "MissingAuthenticationToken",
  );
  assert.equal((await send(`Action=DescribeVpcs&${v}`, { tamper: true })).code, "AuthFailure");
  assert.equal(
    (await send(`Action=DescribeVpcs&${v}`, { datetime: "20200101T000000Z" })).code,
    "RequestExpired",
  );
  const s3 = new AwsClient({
    accessKeyId: fake.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: fake.env.AWS_SECRET_ACCESS_KEY,
    service: "s3",
    region: fake.region,
  });
  assert.match(
    (await send(`Action=DescribeVpcs&${v}`, { client: s3 })).text,
    /scoped to correct service/,
  );
  const ok = await send(`Action=DescribeVpcs&${v}`);
  assert.equal(ok.status, 200);
  assert.match(
    ok.text,
    /<DescribeVpcsResponse xmlns="http:\/\/ec2.amazonaws.com\/doc\/2016-11-15\/">/,
  );
  assert.equal((await send("Action=DescribeVpcs")).code, "MissingParameter");
  assert.equal((await send("Action=DescribeVpcs&Version=2014-01-01")).code, "NoSuchVersion");
  assert.equal((await send(v)).code, "MissingAction");
  assert.equal((await send(`Action=LaunchRocket&${v}`)).code, "InvalidAction");
  const unknown = await send(`Action=DescribeInstances&${v}&InstanceIds.1=i-1`);
  assert.equal(unknown.status, 400);
  assert.equal(unknown.code, "UnknownParameter");
  assert.match(
    unknown.text,
    /<Response><Errors><Error><Code>UnknownParameter<\/Code><Message>The parameter InstanceIds.1 is not recognized<\/Message><\/Error><\/Errors><RequestID>/,
  );
  assert.equal(
    (await send(`Action=DescribeInstances&${v}&MaxResults=2`)).code,
    "InvalidParameterValue",
  );
  assert.equal(
    (await send(`Action=DescribeInstances&${v}&MaxResults=5&InstanceId.1=i-0123456789abcdef0`))
      .code,
    "InvalidParameterCombination",
  );
  assert.equal(
    (await send(`Action=DescribeInstances&${v}&Filter.1.Name=flavour&Filter.1.Value.1=x`)).code,
    "InvalidParameterValue",
  );
  assert.equal(
    (await send(`Action=DescribeInstances&${v}&InstanceId.1=i-0123456789abcdef0`)).code,
    "InvalidInstanceID.NotFound",
  );
  assert.equal(
    (await send(`Action=DescribeInstances&${v}&NextToken=forged`)).code,
    "InvalidPaginationToken",
  );
  assert.equal(
    (await send(`Action=RunInstances&${v}&ImageId=${FAKE_UBUNTU_AMD64}&MinCount=1`)).code,
    "MissingParameter",
  );
  assert.equal(
    (await send(`Action=RunInstances&${v}&ImageId=ubuntu&MinCount=1&MaxCount=1`)).code,
    "InvalidAMIID.Malformed",
  );
  assert.equal(
    (await send(
      `Action=RunInstances&${v}&ImageId=${FAKE_UBUNTU_AMD64}&MinCount=1&MaxCount=1&InstanceType=t3.small&UserData=%%%`,
    )).code,
    "InvalidParameterValue",
  );
  assert.equal(
    (await send(
      `Action=RunInstances&${v}&ImageId=${FAKE_UBUNTU_AMD64}&MinCount=1&MaxCount=1&InstanceType=t3.small&TagSpecification.1.ResourceType=key-pair&TagSpecification.1.Tag.1.Key=a&TagSpecification.1.Tag.1.Value=b`,
    )).code,
    "InvalidParameterValue",
  );
  assert.equal(
    (await send(
      `Action=RunInstances&${v}&ImageId=${FAKE_UBUNTU_AMD64}&MinCount=1&MaxCount=1&InstanceType=t3.small&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=aws:x&TagSpecification.1.Tag.1.Value=b`,
    )).code,
    "InvalidParameterValue",
  );
  const run =
    `Action=RunInstances&${v}&ImageId=${FAKE_UBUNTU_AMD64}&MinCount=1&MaxCount=1&InstanceType=t3.small&ClientToken=tok-1`;
  assert.equal((await send(run)).status, 200);
  assert.equal((await send(run)).status, 200);
  assert.equal(fake.instances.size, 1, "same ClientToken, same instance");
  assert.equal(
    (await send(run.replace("t3.small", "t3.micro"))).code,
    "IdempotentParameterMismatch",
  );
  assert.equal(
    (await send(
      `Action=ImportKeyPair&${v}&KeyName=k&PublicKeyMaterial=${btoa("ssh-ed25519 AAAA")}`,
    )).code,
    "InvalidKey.Format",
  );
  const sg = await send(`Action=CreateSecurityGroup&${v}&GroupName=g&GroupDescription=d`);
  const groupId = sg.text.match(/<groupId>([^<]+)</)![1];
  assert.equal(
    (await send(`Action=CreateSecurityGroup&${v}&GroupName=g&GroupDescription=d`)).code,
    "InvalidGroup.Duplicate",
  );
  const inst = [...fake.instances.values()][0];
  inst.groupIds = [groupId];
  assert.equal(
    (await send(`Action=DeleteSecurityGroup&${v}&GroupId=${groupId}`)).code,
    "DependencyViolation",
  );
});

Deno.test("aws: registered lazily with the features it reports", async () => {
  const { loadProvider, providerEntry } = await import("../../../providers/registry.ts");
  const p = await loadProvider("aws", {
    home: HOME,
    env: envOf({}),
    config: {},
    fetch,
    log: () => {},
  });
  assert.equal(p.name, "aws");
  assert.deepEqual([...p.features].sort(), [...providerEntry("aws").features].sort());
  assert.deepEqual([...p.features].sort(), ["cloud-init", "ssh", "tailscale"]);
  assert.equal(
    providerEntry("aws").credentials?.(
      envOf({ AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b" }),
      {},
    ),
    undefined,
  );
});

Deno.test("aws: an error answer that echoes the request never repeats the user data or the auth key", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  fake.inject({
    match: "RunInstances",
    status: 400,
    code: "InvalidParameterValue",
    echoRequest: true,
  });
  await assertEchoedCreateIsClean((spec) => provider.create(spec), "aws_");
});
