import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/errors.ts";
import {
  archOf,
  awsSettings,
  describeUbuntuImagesParams,
  ec2Body,
  ec2Error,
  filterParams,
  instanceToLease,
  newestImage,
  parseDescribeInstances,
  parseSecurityGroups,
  runInstancesParams,
  tagSpecParams,
} from "../../../providers/aws/api.ts";
import { items, parseEc2Error, parseXml } from "../../../providers/aws/xml.ts";
import { envOf, fakePublicKey, specFor } from "../cloud_helpers.ts";

const settings = awsSettings(envOf({ AWS_REGION: "eu-central-1" }), {});

Deno.test("aws api: settings, region precedence and endpoints", () => {
  assert.equal(settings.endpoint, "https://ec2.eu-central-1.amazonaws.com/");
  assert.equal(settings.instanceType, "t3.small");
  assert.equal(settings.sshUser, "ubuntu");
  assert.equal(settings.sshPort, 22);
  assert.equal(
    awsSettings(envOf({ AWS_DEFAULT_REGION: "us-west-2" }), { region: "eu-west-1" }).region,
    "us-west-2",
  );
  assert.equal(awsSettings(envOf({}), { region: "eu-west-1" }, "ap-south-1").region, "eu-west-1");
  assert.equal(awsSettings(envOf({}), {}, "ap-south-1").region, "ap-south-1");
  assert.equal(
    awsSettings(envOf({ AWS_REGION: "cn-north-1" }), {}).endpoint,
    "https://ec2.cn-north-1.amazonaws.com.cn/",
  );
  assert.equal(
    awsSettings(
      envOf({ AWS_REGION: "eu-west-1", CRABBOX_AWS_EC2_ENDPOINT: "http://127.0.0.1:9/" }),
      {},
    ).endpoint,
    "http://127.0.0.1:9/",
  );
  const fails = (env: Record<string, string>, config: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => awsSettings(envOf(env), config),
      (e: unknown) => e instanceof CrabboxError && re.test(e.message),
    );
  fails({}, {}, /no AWS region/);
  fails({ AWS_REGION: "Frankfurt" }, {}, /not an AWS region/);
  fails({ AWS_REGION: "eu-west-1" }, { ami: "ubuntu" }, /aws.ami/);
  fails(
    { AWS_REGION: "eu-west-1", CRABBOX_AWS_EC2_ENDPOINT: "http://ec2.example.com/" },
    {},
    /https/,
  );
});

Deno.test("aws api: query bodies, filters and tag specifications", () => {
  assert.equal(
    ec2Body("DescribeVpcs", { "Filter.1.Name": "isDefault" }),
    "Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=isDefault",
  );
  assert.deepEqual(
    filterParams([{ name: "tag:crew", values: ["a"] }, {
      name: "instance-state-name",
      values: ["pending", "running"],
    }]),
    {
      "Filter.1.Name": "tag:crew",
      "Filter.1.Value.1": "a",
      "Filter.2.Name": "instance-state-name",
      "Filter.2.Value.1": "pending",
      "Filter.2.Value.2": "running",
    },
  );
  assert.deepEqual(tagSpecParams(2, "volume", { crew: "a" }), {
    "TagSpecification.2.ResourceType": "volume",
    "TagSpecification.2.Tag.1.Key": "crew",
    "TagSpecification.2.Tag.1.Value": "a",
  });
});

Deno.test("aws api: RunInstances parameters", () => {
  const spec = specFor("worker-2", "pr-42", fakePublicKey(), {
    userData: "#cloud-config\nhostname: é\n",
  });
  const p = runInstancesParams(spec, settings, {
    imageId: "ami-0123456789abcdef0",
    keyName: "k",
    groupId: "sg-1",
  });
  assert.equal(p.ClientToken, spec.leaseId);
  assert.equal(p["SecurityGroupId.1"], "sg-1");
  assert.equal(p["MetadataOptions.HttpTokens"], "required");
  assert.equal(p.InstanceInitiatedShutdownBehavior, "terminate");
  assert.equal(
    new TextDecoder().decode(Uint8Array.from(atob(p.UserData), (c) => c.charCodeAt(0))),
    spec.userData,
  );
  const tags: Record<string, string> = {};
  for (let i = 1; p[`TagSpecification.1.Tag.${i}.Key`]; i++) {
    tags[p[`TagSpecification.1.Tag.${i}.Key`]] = p[`TagSpecification.1.Tag.${i}.Value`];
  }
  assert.deepEqual(tags, { ...spec.labels, Name: "crabbox-worker-2" });
  assert.equal(p["TagSpecification.2.ResourceType"], "volume");
  const inSubnet = runInstancesParams(spec, { ...settings, subnetId: "subnet-1" }, {
    imageId: "ami-0123456789abcdef0",
    keyName: "k",
    groupId: "sg-1",
  });
  assert.equal(inSubnet["SecurityGroupId.1"], undefined);
  assert.equal(inSubnet["NetworkInterface.1.AssociatePublicIpAddress"], "true");
  assert.equal(inSubnet["NetworkInterface.1.SecurityGroupId.1"], "sg-1");
  assert.throws(
    () =>
      runInstancesParams({ ...spec, userData: "x".repeat(16 * 1024 + 1) }, settings, {
        imageId: "",
        keyName: "",
        groupId: "",
      }),
    (e: unknown) => e instanceof CrabboxError && e.kind === "usage",
  );
});

Deno.test("aws api: Ubuntu AMI lookup without SSM, by architecture", () => {
  for (
    const [type, arch] of [
      ["t3.small", "x86_64"],
      ["t4g.small", "arm64"],
      ["m7gd.large", "arm64"],
      ["g5.xlarge", "x86_64"],
      ["g5g.xlarge", "arm64"],
      ["m7i-flex.large", "x86_64"],
      ["a1.large", "arm64"],
    ]
  ) {
    assert.equal(archOf(type), arch, type);
  }
  const p = describeUbuntuImagesParams("t4g.small");
  assert.equal(p["Owner.1"], "099720109477");
  assert.equal(
    p["Filter.1.Value.1"],
    "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*",
  );
  assert.equal(p["Filter.2.Value.1"], "arm64");
});

const ONE = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>
<reservationSet><item><reservationId>r-1</reservationId><instancesSet><item>
<instanceId>i-0123456789abcdef0</instanceId><instanceState><code>16</code><name>running</name></instanceState>
<ipAddress>203.0.113.7</ipAddress><launchTime>2026-01-01T00:00:00.000Z</launchTime>
<tagSet><item><key>crabbox</key><value>true</value></item><item><key>crabbox-lease</key><value>cbx-0123456789ab</value></item>
<item><key>crabbox-expose</key><value>5432</value></item><item><key>Name</key><value>crabbox-db</value></item><item><key>empty</key><value/></item></tagSet>
</item></instancesSet></item></reservationSet><nextToken>tok2</nextToken></DescribeInstancesResponse>`;

const MANY = `<DescribeInstancesResponse><reservationSet>
<item><instancesSet><item><instanceId>i-00000000000000001</instanceId><instanceState><code>0</code><name>pending</name></instanceState><tagSet/></item>
<item><instanceId>i-00000000000000002</instanceId><instanceState><code>16</code><name>running</name></instanceState><tagSet/></item></instancesSet></item>
<item><instancesSet><item><instanceId>i-00000000000000003</instanceId><instanceState><code>32</code><name>shutting-down</name></instanceState>
<stateReason><code>Client.UserInitiatedShutdown</code><message>Client.UserInitiatedShutdown: User initiated shutdown</message></stateReason></item></instancesSet></item>
</reservationSet></DescribeInstancesResponse>`;

Deno.test("aws xml: one item, many items and empty sets read the same way", async () => {
  const one = parseDescribeInstances(await parseXml(ONE));
  assert.equal(one.instances.length, 1);
  assert.equal(one.nextToken, "tok2");
  const [i] = one.instances;
  assert.equal(i.ipv4, "203.0.113.7");
  assert.equal(i.tags["crabbox-expose"], "5432", "numeric-looking values stay strings");
  assert.equal(i.tags.empty, "");
  const lease = instanceToLease(i, settings, "/h")!;
  assert.equal(lease.labels.Name, undefined, "Name is not a crabbox label");
  assert.deepEqual(lease.ssh, {
    host: "203.0.113.7",
    port: 22,
    user: "ubuntu",
    keyPath: "/h/keys/cbx-0123456789ab/id_ed25519",
  });
  const many = parseDescribeInstances(await parseXml(MANY));
  assert.deepEqual(many.instances.map((x) => x.state), ["pending", "running", "shutting-down"]);
  assert.match(many.instances[2].stateReason ?? "", /User initiated/);
  assert.equal(many.nextToken, undefined);
  const empty = parseDescribeInstances(
    await parseXml("<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>"),
  );
  assert.deepEqual(empty.instances, []);
  assert.deepEqual(items(""), []);
  assert.deepEqual(items(undefined), []);
  await assert.rejects(parseXml("<not closed"), /not XML/);
  assert.throws(
    () => parseDescribeInstances({ RunInstancesResponse: {} }),
    /DescribeInstancesResponse/,
  );
});

Deno.test("aws xml: security groups, images and errors", async () => {
  const sg = parseSecurityGroups(
    await parseXml(`<DescribeSecurityGroupsResponse><securityGroupInfo><item>
    <groupId>sg-1</groupId><groupName>crabbox-crew-a</groupName><ipPermissions><item><ipProtocol>tcp</ipProtocol>
    <fromPort>22</fromPort><toPort>22</toPort><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item><item><cidrIp>203.0.113.7/32</cidrIp></item></ipRanges>
    <ipv6Ranges><item><cidrIpv6>2001:DB8::1/128</cidrIpv6></item></ipv6Ranges></item>
    <item><ipProtocol>tcp</ipProtocol><fromPort>80</fromPort><toPort>90</toPort><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges></item></ipPermissions>
    <tagSet/></item></securityGroupInfo></DescribeSecurityGroupsResponse>`),
  );
  // Single-port TCP rules only, IPv4 and IPv6 blocks (lowercased).
  assert.deepEqual(sg[0].tcpIngress, [{
    port: 22,
    cidrs: ["0.0.0.0/0", "203.0.113.7/32", "2001:db8::1/128"],
  }]);
  assert.equal(
    newestImage(
      await parseXml(`<DescribeImagesResponse><imagesSet>
    <item><imageId>ami-old</imageId><creationDate>2024-01-01T00:00:00.000Z</creationDate></item>
    <item><imageId>ami-new</imageId><creationDate>2025-01-01T00:00:00.000Z</creationDate></item>
    </imagesSet></DescribeImagesResponse>`),
    ),
    "ami-new",
  );
  assert.deepEqual(
    await parseEc2Error(
      `<?xml version="1.0"?><Response><Errors><Error><Code>AuthFailure</Code><Message>a &amp; b</Message></Error></Errors><RequestID>req-1</RequestID></Response>`,
    ),
    { code: "AuthFailure", message: "a & b", requestId: "req-1" },
  );
  assert.equal(await parseEc2Error("<html>502 Bad Gateway</html>"), undefined);
});

Deno.test("aws api: error mapping", () => {
  const ctx = {
    action: "RunInstances",
    region: "eu-central-1",
    credentialSource: "profile dev",
    instanceType: "t3.small",
    imageId: "ami-0123456789abcdef0",
  };
  const map = (status: number, code: string, message = "m") =>
    ec2Error(status, { code, message }, ctx, ["SECRETVALUE"]);
  const auth = map(
    401,
    "AuthFailure",
    "AWS was not able to validate the provided access credentials",
  );
  assert.equal(auth.kind, "credentials");
  assert.match(auth.message, /profile dev/);
  assert.equal(
    map(400, "RequestExpired").hint,
    "the system clock is off by more than 5 minutes; sync it",
  );
  const denied = map(
    403,
    "UnauthorizedOperation",
    "You are not authorized to perform this operation. Encoded authorization failure message: AAAABBBB",
  );
  assert.equal(denied.kind, "credentials");
  assert.match(denied.message, /ec2:RunInstances/);
  assert.ok(!JSON.stringify([denied.message, denied.details]).includes("AAAABBBB"));
  assert.equal(map(400, "InstanceLimitExceeded").code, "aws_limit");
  assert.match(map(400, "InstanceLimitExceeded").message, /t3\.small/);
  assert.equal(map(500, "InsufficientInstanceCapacity").code, "aws_capacity");
  const ami = map(
    400,
    "InvalidAMIID.NotFound",
    "The image id '[ami-0123456789abcdef0]' does not exist",
  );
  assert.equal(ami.code, "aws_ami");
  assert.match(ami.message, /ami-0123456789abcdef0 is not usable in eu-central-1/);
  assert.match(ami.hint ?? "", /per region/);
  assert.equal(map(503, "RequestLimitExceeded").code, "aws_throttled");
  assert.equal(
    map(400, "InvalidParameterValue", "bad SECRETVALUE here").message,
    "EC2 RunInstances failed in eu-central-1: InvalidParameterValue: bad [redacted] here",
  );
});
