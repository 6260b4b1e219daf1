/**
 * AWS EC2 Query API (Version 2016-11-15), the pure half: settings, form
 * parameter builders for every call crabbox makes, response parsers over
 * {@link parseXml} documents, and the mapping of EC2 error codes to
 * {@link CrabboxError}s. `aws.ts` is the signing fetch shell around it.
 *
 * @module
 */

import { encodeBase64 } from "../../lib/core/base64.ts";
import { clientKeyPath } from "../../lib/ssh/keys.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { isLeaseId } from "../../lib/core/names.ts";
import { compareText } from "../../lib/core/order.ts";
import { redact } from "../../lib/core/redact.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import type { Labels } from "../../lib/core/labels.ts";
import {
  apiBaseUrl,
  type BoxOwner,
  configPort,
  configString,
  configStringList,
  isIpv4,
  ownerOf,
  sharedResourceLabels,
} from "../cloud/common.ts";
import { DEFAULT_IP_ECHO_URL, isIpv6Cidr, parseCidr } from "../cloud/operator_address.ts";
import { capMessage } from "../cloud/request_data.ts";
import { items, node, root, tagMap, text, type XmlNode } from "./xml.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** The EC2 API version every request names. */
export const EC2_VERSION = "2016-11-15";
/** Canonical's AWS account, owner of the official Ubuntu AMIs. */
export const CANONICAL_OWNER = "099720109477";
/** Default instance type. */
export const AWS_DEFAULT_INSTANCE_TYPE = "t3.small";
/** EC2 caps raw user data at 16 KiB. */
export const AWS_MAX_USER_DATA = 16 * 1024;

/** Resolved AWS settings (no secrets). */
export interface AwsSettings {
  /** Region, e.g. `eu-central-1`. */
  region: string;
  /** EC2 endpoint URL. */
  endpoint: string;
  /** Instance type. */
  instanceType: string;
  /** AMI from config; otherwise the newest Canonical Ubuntu 24.04 is looked up. */
  ami?: string;
  /** Login user. */
  sshUser: string;
  /** sshd port, also the only port the security group opens. */
  sshPort: number;
  /** Subnet to launch into (default: the default VPC). */
  subnetId?: string;
  /** `aws.sshCidrs`: who may reach sshd; unset → the operator's detected address. */
  sshCidrs?: string[];
  /** The what-is-my-IP service used when `sshCidrs` is unset. */
  ipEchoUrl: string;
}

/**
 * Read settings: region from `AWS_REGION`, `AWS_DEFAULT_REGION`, config
 * `aws.region` or the profile; endpoint from `CRABBOX_AWS_EC2_ENDPOINT`,
 * `AWS_ENDPOINT_URL_EC2` or `https://ec2.<region>.amazonaws.com/`;
 * `aws.sshCidrs` (each a CIDR, else a config error naming the key); the
 * what-is-my-IP URL from `CRABBOX_IP_ECHO_URL`, `aws.ipEchoUrl` or
 * {@link DEFAULT_IP_ECHO_URL}.
 *
 * @example
 * ```ts
 * import { awsSettings } from "./api.ts";
 * awsSettings((k) => (k === "AWS_REGION" ? "eu-west-1" : undefined), {}).endpoint;
 * // "https://ec2.eu-west-1.amazonaws.com/"
 * ```
 */
export function awsSettings(
  env: EnvReader,
  config: Record<string, unknown>,
  profileRegion?: string,
): AwsSettings {
  const region = env("AWS_REGION")?.trim() || env("AWS_DEFAULT_REGION")?.trim() ||
    configString(config, "aws", "region") || profileRegion;
  if (!region) {
    throw new CrabboxError("usage", "aws_no_region", "no AWS region configured", {
      hint: "export AWS_REGION (or set aws.region in config.yaml)",
    });
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(region)) {
    throw new CrabboxError(
      "usage",
      "aws_bad_region",
      `${JSON.stringify(region)} is not an AWS region`,
    );
  }
  const override = env("CRABBOX_AWS_EC2_ENDPOINT")?.trim() || env("AWS_ENDPOINT_URL_EC2")?.trim();
  const endpoint = override
    ? apiBaseUrl("CRABBOX_AWS_EC2_ENDPOINT", override).href
    : `https://ec2.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}/`;
  const ami = configString(config, "aws", "ami");
  if (ami !== undefined && !/^ami-[0-9a-f]{8,17}$/.test(ami)) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      `aws.ami ${JSON.stringify(ami)} is not an AMI id`,
    );
  }
  const sshCidrs = config.sshCidrs === undefined
    ? undefined
    : configStringList(config, "aws", "sshCidrs", []).map((c) => {
      const cidr = parseCidr(c);
      if (!cidr) {
        throw new CrabboxError(
          "config",
          "bad_config_value",
          `aws.sshCidrs: ${JSON.stringify(c)} is not a CIDR block (e.g. 203.0.113.7/32)`,
        );
      }
      return cidr;
    });
  const echo = env("CRABBOX_IP_ECHO_URL")?.trim();
  const configured = configString(config, "aws", "ipEchoUrl");
  let ipEchoUrl: string;
  try {
    ipEchoUrl = apiBaseUrl(
      echo ? "CRABBOX_IP_ECHO_URL" : "aws.ipEchoUrl",
      echo || configured || DEFAULT_IP_ECHO_URL,
    ).href;
  } catch (e) {
    // A bad config value is a config error (exit 11); a bad variable stays a usage error.
    if (echo || !(e instanceof CrabboxError)) throw e;
    throw new CrabboxError("config", "bad_config_value", e.message);
  }
  return {
    region,
    endpoint,
    sshCidrs: sshCidrs ? [...new Set(sshCidrs)] : undefined,
    ipEchoUrl,
    instanceType: configString(config, "aws", "instanceType") ?? AWS_DEFAULT_INSTANCE_TYPE,
    ami,
    sshUser: configString(config, "aws", "sshUser") ?? "ubuntu",
    sshPort: configPort(config, "aws", "sshPort", 22),
    subnetId: configString(config, "aws", "subnetId"),
  };
}

/** Form parameters of one call (without Action/Version). */
export type Params = Record<string, string>;

/**
 * The form body: `Action=…&Version=2016-11-15&…`.
 *
 * @example
 * ```ts
 * import { ec2Body } from "./api.ts";
 * ec2Body("DescribeVpcs", {}); // "Action=DescribeVpcs&Version=2016-11-15"
 * ```
 */
export function ec2Body(action: string, params: Params): string {
  return new URLSearchParams({ Action: action, Version: EC2_VERSION, ...params }).toString();
}

/** A filter: name and accepted values (OR). */
export interface Filter {
  /** Filter name, e.g. `tag:crew`. */
  name: string;
  /** Values. */
  values: readonly string[];
}

/** `Filter.N.Name` / `Filter.N.Value.M` parameters. */
export function filterParams(filters: readonly Filter[]): Params {
  const p: Params = {};
  filters.forEach((f, i) => {
    p[`Filter.${i + 1}.Name`] = f.name;
    f.values.forEach((v, j) => p[`Filter.${i + 1}.Value.${j + 1}`] = v);
  });
  return p;
}

/** `TagSpecification.N.*` parameters for one resource type. */
export function tagSpecParams(index: number, resourceType: string, tags: Labels): Params {
  const p: Params = { [`TagSpecification.${index}.ResourceType`]: resourceType };
  Object.entries(tags).forEach(([k, v], j) => {
    p[`TagSpecification.${index}.Tag.${j + 1}.Key`] = k;
    p[`TagSpecification.${index}.Tag.${j + 1}.Value`] = v;
  });
  return p;
}

/** Filters selecting a crew's (or lone lease's) resources by tag. */
export function ownerFilters(owner: BoxOwner): Filter[] {
  return Object.entries(sharedResourceLabels(owner)).map(([k, v]) => ({
    name: `tag:${k}`,
    values: [v],
  }));
}

/** States crabbox lists (everything but `terminated`). */
export const LISTED_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"];
/** States of an instance that still uses the crew's key pair and security group. */
export const LIVE_STATES = ["pending", "running", "stopping", "stopped"];

/**
 * `DescribeInstances` parameters: by id, or by filters with pagination.
 *
 * @example
 * ```ts
 * import { describeInstancesParams } from "./api.ts";
 * describeInstancesParams({ filters: [{ name: "tag:crew", values: ["a"] }], nextToken: "t" });
 * ```
 */
export function describeInstancesParams(
  q: {
    ids?: readonly string[];
    filters?: readonly Filter[];
    nextToken?: string;
    maxResults?: number;
  },
): Params {
  const p: Params = {};
  q.ids?.forEach((id, i) => p[`InstanceId.${i + 1}`] = id);
  Object.assign(p, filterParams(q.filters ?? []));
  if (!q.ids && q.maxResults) p.MaxResults = String(q.maxResults);
  if (q.nextToken) p.NextToken = q.nextToken;
  return p;
}

/** The Ubuntu 24.04 architecture for an instance type (Graviton families → arm64). */
export function archOf(instanceType: string): "arm64" | "x86_64" {
  const family = instanceType.split(".")[0];
  return /^[a-z]+\d+[a-z]*g[a-z]*$/.test(family) || family === "a1" ? "arm64" : "x86_64";
}

/**
 * `DescribeImages` for the newest Canonical Ubuntu 24.04 LTS (no SSM parameter).
 *
 * @example
 * ```ts
 * import { describeUbuntuImagesParams } from "./api.ts";
 * describeUbuntuImagesParams("t4g.small")["Filter.1.Value.1"];
 * // "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"
 * ```
 */
export function describeUbuntuImagesParams(instanceType: string): Params {
  const arch = archOf(instanceType);
  return {
    "Owner.1": CANONICAL_OWNER,
    ...filterParams([
      {
        name: "name",
        values: [
          `ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${
            arch === "arm64" ? "arm64" : "amd64"
          }-server-*`,
        ],
      },
      { name: "architecture", values: [arch] },
      { name: "state", values: ["available"] },
    ]),
  };
}

/** `ImportKeyPair` for the crew key, tagged. */
export function importKeyPairParams(name: string, publicKey: string, owner: BoxOwner): Params {
  return {
    KeyName: name,
    PublicKeyMaterial: encodeBase64(publicKey.trim()),
    ...tagSpecParams(1, "key-pair", sharedResourceLabels(owner)),
  };
}

/** `CreateSecurityGroup` for the crew, tagged. */
export function createSecurityGroupParams(name: string, owner: BoxOwner, vpcId: string): Params {
  return {
    GroupName: name,
    GroupDescription: `crabbox ${owner.crew ? `crew ${owner.crew}` : owner.leaseId}: ssh only`,
    VpcId: vpcId,
    ...tagSpecParams(1, "security-group", sharedResourceLabels(owner)),
  };
}

/**
 * `AuthorizeSecurityGroupIngress`: TCP `port` from `cidrs` (IPv4 blocks as
 * `IpRanges`, IPv6 as `Ipv6Ranges`), nothing else.
 *
 * @example
 * ```ts
 * import { authorizeSshParams } from "./api.ts";
 * authorizeSshParams("sg-1", 22, ["203.0.113.7/32"])["IpPermissions.1.IpRanges.1.CidrIp"];
 * // "203.0.113.7/32"
 * ```
 */
export function authorizeSshParams(
  groupId: string,
  port: number,
  cidrs: readonly string[],
): Params {
  const p: Params = {
    GroupId: groupId,
    "IpPermissions.1.IpProtocol": "tcp",
    "IpPermissions.1.FromPort": String(port),
    "IpPermissions.1.ToPort": String(port),
  };
  const v4 = cidrs.filter((c) => !isIpv6Cidr(c));
  const v6 = cidrs.filter(isIpv6Cidr);
  v4.forEach((c, i) => {
    p[`IpPermissions.1.IpRanges.${i + 1}.CidrIp`] = c;
    p[`IpPermissions.1.IpRanges.${i + 1}.Description`] = "crabbox ssh";
  });
  v6.forEach((c, i) => {
    p[`IpPermissions.1.Ipv6Ranges.${i + 1}.CidrIpv6`] = c;
    p[`IpPermissions.1.Ipv6Ranges.${i + 1}.Description`] = "crabbox ssh";
  });
  return p;
}

/** Launch resources resolved before `RunInstances`. */
export interface LaunchRefs {
  /** AMI id. */
  imageId: string;
  /** Key pair name. */
  keyName: string;
  /** Security group id. */
  groupId: string;
}

/**
 * `RunInstances` for one lease: idempotent by `ClientToken` (the lease id),
 * labels as tags on instance and volume plus `Name=crabbox-<slug>`, base64
 * user data, IMDSv2 only, and shutdown = terminate.
 */
export function runInstancesParams(spec: CreateSpec, s: AwsSettings, refs: LaunchRefs): Params {
  const p: Params = {
    ImageId: refs.imageId,
    InstanceType: s.instanceType,
    MinCount: "1",
    MaxCount: "1",
    ClientToken: spec.leaseId,
    KeyName: refs.keyName,
    InstanceInitiatedShutdownBehavior: "terminate",
    "MetadataOptions.HttpTokens": "required",
    "MetadataOptions.HttpEndpoint": "enabled",
  };
  if (s.subnetId) {
    Object.assign(p, {
      "NetworkInterface.1.DeviceIndex": "0",
      "NetworkInterface.1.SubnetId": s.subnetId,
      "NetworkInterface.1.AssociatePublicIpAddress": "true",
      "NetworkInterface.1.DeleteOnTermination": "true",
      "NetworkInterface.1.SecurityGroupId.1": refs.groupId,
    });
  } else p["SecurityGroupId.1"] = refs.groupId;
  if (spec.userData !== undefined) {
    const size = new TextEncoder().encode(spec.userData).length;
    if (size > AWS_MAX_USER_DATA) {
      throw new CrabboxError(
        "usage",
        "user_data_too_large",
        `cloud-init user data is ${size} bytes; EC2 accepts at most ${AWS_MAX_USER_DATA}`,
      );
    }
    p.UserData = encodeBase64(spec.userData);
  }
  const tags = { ...spec.labels, Name: `crabbox-${spec.slug}` };
  return { ...p, ...tagSpecParams(1, "instance", tags), ...tagSpecParams(2, "volume", tags) };
}

/** The fields of an EC2 instance crabbox uses. */
export interface Ec2Instance {
  /** `i-…`. */
  id: string;
  /** `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`. */
  state: string;
  /** Why it changed state (e.g. `Server.InsufficientInstanceCapacity: …`). */
  stateReason?: string;
  /** Public IPv4 (`ipAddress`). */
  ipv4?: string;
  /** Tags. */
  tags: Record<string, string>;
  /** Launch time. */
  launchTime?: string;
  /** Instance type. */
  instanceType?: string;
  /** Availability zone. */
  availabilityZone?: string;
}

/** Parse one `instancesSet` item. */
export function parseInstance(it: XmlNode): Ec2Instance {
  const id = text(it.instanceId);
  const state = text(node(it.instanceState).name);
  if (!id || !state) {
    throw new CrabboxError(
      "provider",
      "aws_bad_response",
      "EC2 returned an instance without id or state",
    );
  }
  const ip = text(it.ipAddress);
  const reason = node(it.stateReason);
  return {
    id,
    state,
    stateReason: text(reason.message) ?? text(reason.code),
    ipv4: isIpv4(ip) ? ip : undefined,
    tags: tagMap(it.tagSet),
    launchTime: text(it.launchTime),
    instanceType: text(it.instanceType),
    availabilityZone: text(node(it.placement).availabilityZone),
  };
}

/**
 * Instances and `nextToken` of a `DescribeInstancesResponse` (every
 * reservation, every instance, one-item sets normalized).
 */
export function parseDescribeInstances(
  doc: XmlNode,
): { instances: Ec2Instance[]; nextToken?: string } {
  const r = root(doc, "DescribeInstancesResponse");
  const instances = items(r.reservationSet).flatMap((res) =>
    items(res.instancesSet).map(parseInstance)
  );
  return { instances, nextToken: text(r.nextToken) || undefined };
}

/** The instance of a `RunInstancesResponse`. */
export function parseRunInstances(doc: XmlNode): Ec2Instance {
  const [first] = items(root(doc, "RunInstancesResponse").instancesSet);
  if (!first) {
    throw new CrabboxError("provider", "aws_bad_response", "RunInstances returned no instance");
  }
  return parseInstance(first);
}

/** A key pair as `DescribeKeyPairs` reports it. */
export interface Ec2KeyPair {
  /** Name. */
  name: string;
  /** `key-…`. */
  id?: string;
  /** Public key (with `IncludePublicKey=true`). */
  publicKey?: string;
  /** Tags. */
  tags: Record<string, string>;
}

/** Key pairs of a `DescribeKeyPairsResponse`. */
export function parseKeyPairs(doc: XmlNode): Ec2KeyPair[] {
  return items(root(doc, "DescribeKeyPairsResponse").keySet).map((k) => ({
    name: text(k.keyName) ?? "",
    id: text(k.keyPairId),
    publicKey: text(k.publicKey),
    tags: tagMap(k.tagSet),
  }));
}

/** What {@link sshIngressPlan} decides for an existing group. */
export interface SshIngressPlan {
  /** Blocks to authorize (wanted, not yet open on the port). */
  add: string[];
  /** World-open blocks already on the port that were not asked for (reported, never revoked). */
  wider: string[];
}

/**
 * Which of `wanted` to authorize on `port` of a group whose single-port TCP
 * rules are `ingress`, and which world-open blocks it already has beyond
 * them. Crabbox only adds: it never revokes a rule (another member or person
 * may rely on it), and never widens beyond `wanted`.
 *
 * @example
 * ```ts
 * import { sshIngressPlan } from "./api.ts";
 * sshIngressPlan([{ port: 22, cidrs: ["0.0.0.0/0"] }], 22, ["203.0.113.7/32"]);
 * // { add: ["203.0.113.7/32"], wider: ["0.0.0.0/0"] }
 * ```
 */
export function sshIngressPlan(
  ingress: readonly { port: number; cidrs: readonly string[] }[],
  port: number,
  wanted: readonly string[],
): SshIngressPlan {
  const open = new Set(ingress.filter((r) => r.port === port).flatMap((r) => r.cidrs));
  return {
    add: wanted.filter((c) => !open.has(c)),
    wider: [...open].filter((c) => (c === "0.0.0.0/0" || c === "::/0") && !wanted.includes(c)),
  };
}

/** A security group. */
export interface Ec2SecurityGroup {
  /** `sg-…`. */
  id: string;
  /** Name. */
  name: string;
  /** VPC. */
  vpcId?: string;
  /** Tags. */
  tags: Record<string, string>;
  /** Single-port TCP rules: the port and the CIDR blocks (IPv4 and IPv6) it is open to. */
  tcpIngress: { port: number; cidrs: string[] }[];
}

/** Security groups of a `DescribeSecurityGroupsResponse`. */
export function parseSecurityGroups(doc: XmlNode): Ec2SecurityGroup[] {
  return items(root(doc, "DescribeSecurityGroupsResponse").securityGroupInfo).map((g) => ({
    id: text(g.groupId) ?? "",
    name: text(g.groupName) ?? "",
    vpcId: text(g.vpcId),
    tags: tagMap(g.tagSet),
    tcpIngress: items(g.ipPermissions).filter((p) =>
      text(p.ipProtocol) === "tcp" && text(p.fromPort) === text(p.toPort)
    ).map((p) => ({
      port: Number(text(p.fromPort)),
      cidrs: [
        ...items(p.ipRanges).map((r) => text(r.cidrIp)),
        ...items(p.ipv6Ranges).map((r) => text(r.cidrIpv6)?.toLowerCase()),
      ].filter((c): c is string => c !== undefined),
    })),
  }));
}

/** `groupId` of a `CreateSecurityGroupResponse`. */
export function parseCreateSecurityGroup(doc: XmlNode): string {
  const id = text(root(doc, "CreateSecurityGroupResponse").groupId);
  if (!id) {
    throw new CrabboxError(
      "provider",
      "aws_bad_response",
      "CreateSecurityGroup returned no groupId",
    );
  }
  return id;
}

/** The default VPC's id from `DescribeVpcsResponse`, if any. */
export function parseDefaultVpc(doc: XmlNode): string | undefined {
  return items(root(doc, "DescribeVpcsResponse").vpcSet).map((v) => text(v.vpcId)).find(Boolean);
}

/** The VPC of the first subnet in `DescribeSubnetsResponse`. */
export function parseSubnetVpc(doc: XmlNode): string | undefined {
  return items(root(doc, "DescribeSubnetsResponse").subnetSet).map((s) => text(s.vpcId))
    .find(Boolean);
}

/** The newest image (by `creationDate`) of a `DescribeImagesResponse`. */
export function newestImage(doc: XmlNode): string | undefined {
  const images = items(root(doc, "DescribeImagesResponse").imagesSet)
    .map((i) => ({ id: text(i.imageId), date: text(i.creationDate) ?? "" }))
    .filter((i) => i.id);
  images.sort((a, b) => compareText(b.date, a.date));
  return images[0]?.id;
}

/** EC2 instance state → provider-neutral lease state. */
export function leaseState(state: string): ProviderLease["state"] {
  switch (state) {
    case "pending":
      return "creating";
    case "running":
      return "running";
    case "stopping":
    case "stopped":
      return "stopped";
    case "shutting-down":
    case "terminated":
      return "deleting";
    default:
      return "unknown";
  }
}

/** An instance as a {@link ProviderLease}; `undefined` without the reserved tags. */
export function instanceToLease(
  inst: Ec2Instance,
  s: AwsSettings,
  home: string,
  keyPath?: string,
): ProviderLease | undefined {
  const labels: Labels = { ...inst.tags };
  delete labels.Name;
  const owner = ownerOf(labels);
  if (!owner || !isLeaseId(owner.leaseId)) return undefined;
  return {
    providerId: inst.id,
    leaseId: owner.leaseId,
    labels,
    state: leaseState(inst.state),
    ssh: inst.ipv4
      ? {
        host: inst.ipv4,
        port: s.sshPort,
        user: s.sshUser,
        keyPath: keyPath ?? clientKeyPath(home, owner),
      }
      : undefined,
    createdAt: inst.launchTime,
    data: {
      region: s.region,
      instanceType: inst.instanceType,
      availabilityZone: inst.availabilityZone,
    },
  };
}

/** What the failed call was doing, for messages. */
export interface Ec2CallContext {
  /** Action name. */
  action: string;
  /** Region. */
  region: string;
  /** Where the credentials came from (never their values). */
  credentialSource: string;
  /** Instance type (RunInstances). */
  instanceType?: string;
  /** AMI (RunInstances). */
  imageId?: string;
}

const AUTH_CODES = new Set([
  "AuthFailure",
  "InvalidClientTokenId",
  "SignatureDoesNotMatch",
  "IncompleteSignature",
  "MissingAuthenticationToken",
  "ExpiredToken",
  "RequestExpired",
  "UnrecognizedClientException",
]);

/** Codes retried with bounded backoff. */
export const RETRYABLE_CODES = new Set([
  "RequestLimitExceeded",
  "Throttling",
  "ThrottlingException",
  "InternalError",
  "InternalFailure",
  "ServiceUnavailable",
  "Unavailable",
]);

/**
 * Map an EC2 error to a {@link CrabboxError}. `secrets` are scrubbed from
 * the message, and the encoded authorization blob AWS appends is dropped.
 *
 * @example
 * ```ts
 * import { ec2Error } from "./api.ts";
 * ec2Error(401, { code: "AuthFailure", message: "AWS was not able to validate the provided access credentials" },
 *   { action: "DescribeInstances", region: "eu-west-1", credentialSource: "profile dev" }, []).kind;
 * // "credentials"
 * ```
 */
export function ec2Error(
  status: number,
  err: { code: string; message: string; requestId?: string },
  ctx: Ec2CallContext,
  secrets: readonly (string | undefined)[],
): CrabboxError {
  const message = capMessage(redact(
    err.message.replace(/\s*Encoded authorization failure message:.*$/s, ""),
    secrets,
  ));
  const details = { status, code: err.code, action: ctx.action, requestId: err.requestId };
  const said = `${err.code}: ${message}`;
  if (AUTH_CODES.has(err.code)) {
    return new CrabboxError(
      "credentials",
      "aws_auth",
      `AWS rejected the credentials from ${ctx.credentialSource} (${said})`,
      {
        hint: err.code === "RequestExpired"
          ? "the system clock is off by more than 5 minutes; sync it"
          : err.code === "ExpiredToken"
          ? "AWS_SESSION_TOKEN expired; refresh the temporary credentials"
          : "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the profile) and AWS_REGION",
        details,
      },
    );
  }
  if (err.code === "UnauthorizedOperation") {
    return new CrabboxError(
      "credentials",
      "aws_unauthorized",
      `the AWS identity from ${ctx.credentialSource} may not call ec2:${ctx.action} in ${ctx.region}`,
      { hint: `grant ec2:${ctx.action} to the IAM user or role`, details },
    );
  }
  if (
    ["InstanceLimitExceeded", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded"].includes(
      err.code,
    )
  ) {
    return new CrabboxError(
      "provider",
      "aws_limit",
      `EC2 quota reached for ${ctx.instanceType ?? "instances"} in ${ctx.region} (${said})`,
      { hint: "terminate unused instances or request a quota increase in Service Quotas", details },
    );
  }
  if (err.code === "InsufficientInstanceCapacity" || err.code === "Unsupported") {
    return new CrabboxError(
      "provider",
      "aws_capacity",
      `EC2 has no capacity for ${
        ctx.instanceType ?? "this instance type"
      } in ${ctx.region} (${said})`,
      { hint: "set aws.instanceType to another type, or aws.subnetId to another zone", details },
    );
  }
  if (err.code.startsWith("InvalidAMIID.")) {
    return new CrabboxError(
      "provider",
      "aws_ami",
      `AMI ${ctx.imageId ?? ""} is not usable in ${ctx.region} (${said})`.replace(
        "AMI  is",
        "the AMI is",
      ),
      {
        hint: "AMI ids are per region: set aws.ami to an Ubuntu AMI of this region, or unset it",
        details,
      },
    );
  }
  if (RETRYABLE_CODES.has(err.code) || status === 503) {
    return new CrabboxError(
      "provider",
      "aws_throttled",
      `EC2 ${ctx.action} kept failing with ${said} after bounded retries`,
      { hint: "wait a minute and retry", details },
    );
  }
  return new CrabboxError(
    "provider",
    "aws_error",
    `EC2 ${ctx.action} failed in ${ctx.region}: ${said}`,
    {
      details,
    },
  );
}
