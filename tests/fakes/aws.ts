/**
 * A fake EC2 Query API (Version 2016-11-15) that enforces the documented
 * contract: SigV4 verified for real (tests/fakes/aws_sigv4.ts), form bodies
 * dispatched on `Action`, unknown/missing parameters rejected, XML answers
 * with EC2's shapes and `<Response><Errors>` documents, tag filters with
 * wildcards, `MaxResults`/`NextToken` pagination, RunInstances idempotency by
 * `ClientToken`, instance state transitions by poll count, the
 * just-created-instance NotFound window, security groups that cannot be
 * deleted while an instance uses them, and injected faults.
 *
 * @example
 * ```ts
 * import { startFakeAws } from "./aws.ts";
 * await using fake = startFakeAws({ maxPageSize: 2 });
 * const env = { ...fake.env, AWS_REGION: fake.region };
 * ```
 *
 * @module
 */

import {
  type Fault,
  faultMessage,
  type RecordedRequest,
  serveFake,
  takeFault,
} from "./fake_http.ts";
import { type SigV4Keys, verifySigV4 } from "./aws_sigv4.ts";
import {
  ACTIONS,
  badValue,
  checkParams,
  Ec2Fault,
  el,
  filters,
  list,
  ok,
  passes,
  randomHex,
  set,
  tagSet,
  tagSpecs,
  tx,
} from "./aws_query.ts";

/** An instance in the fake's state. */
export interface FakeInstance {
  /** `i-…`. */
  id: string;
  /** `r-…`. */
  reservationId: string;
  /** AMI. */
  imageId: string;
  /** Instance type. */
  instanceType: string;
  /** Key pair name. */
  keyName?: string;
  /** Security groups. */
  groupIds: string[];
  /** Subnet and VPC. */
  subnetId: string;
  /** VPC. */
  vpcId: string;
  /** Tags. */
  tags: Record<string, string>;
  /** Decoded user data. */
  userData?: string;
  /** The key pair's public key at launch (EC2 writes it into the instance then). */
  launchPublicKey?: string;
  /** Idempotency token. */
  clientToken?: string;
  /** Launch time. */
  launchTime: string;
  /** Public IPv4 once running (if the subnet maps one or it was asked for). */
  ipv4?: string;
  /** `pending`, `running`, `shutting-down`, `terminated`. */
  state: string;
  /** Views left in the current transitional state. */
  viewsLeft: number;
  /** Lookups by id left that still answer NotFound (eventual consistency). */
  hiddenLeft: number;
  /** IMDS options. */
  httpTokens: string;
}

/** A key pair in the fake's state. */
export interface FakeKeyPair {
  /** `key-…`. */
  id: string;
  /** Name. */
  name: string;
  /** OpenSSH public key line. */
  publicKey: string;
  /** SHA-256 fingerprint (base64). */
  fingerprint: string;
  /** Tags. */
  tags: Record<string, string>;
}

/** A security group in the fake's state. */
export interface FakeSecurityGroup {
  /** `sg-…`. */
  id: string;
  /** Name. */
  name: string;
  /** Description. */
  description: string;
  /** VPC. */
  vpcId: string;
  /** Tags. */
  tags: Record<string, string>;
  /** Ingress rules, one per source block (`cidr` is IPv4 or IPv6). */
  ingress: { protocol: string; from: number; to: number; cidr: string }[];
}

/** An AMI the fake knows. */
export interface FakeImage {
  /** `ami-…`. */
  id: string;
  /** Name. */
  name: string;
  /** Owner account. */
  owner: string;
  /** `x86_64` or `arm64`. */
  architecture: string;
  /** ISO date. */
  creationDate: string;
}

/** The Canonical Ubuntu 24.04 amd64 AMI the fake considers newest. */
export const FAKE_UBUNTU_AMD64 = "ami-0b0b0b0b0b0b0b0b2";
/** The Canonical Ubuntu 24.04 arm64 AMI. */
export const FAKE_UBUNTU_ARM64 = "ami-0c0c0c0c0c0c0c0c3";
/** The default VPC. */
export const FAKE_DEFAULT_VPC = "vpc-0fake000000000def";
/** A subnet of a custom VPC that does not map public IPs by itself. */
export const FAKE_CUSTOM_SUBNET = "subnet-0fake00000000cus1";

const IMAGES: FakeImage[] = [
  {
    id: "ami-0a0a0a0a0a0a0a0a1",
    name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20240423",
    owner: "099720109477",
    architecture: "x86_64",
    creationDate: "2024-04-23T10:00:00.000Z",
  },
  {
    id: FAKE_UBUNTU_AMD64,
    name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610",
    owner: "099720109477",
    architecture: "x86_64",
    creationDate: "2025-06-10T10:00:00.000Z",
  },
  {
    id: FAKE_UBUNTU_ARM64,
    name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20250610",
    owner: "099720109477",
    architecture: "arm64",
    creationDate: "2025-06-10T10:00:00.000Z",
  },
  {
    id: "ami-0d0d0d0d0d0d0d0d4",
    name: "ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20250701",
    owner: "099720109477",
    architecture: "x86_64",
    creationDate: "2025-07-01T10:00:00.000Z",
  },
  {
    id: "ami-0e0e0e0e0e0e0e0e5",
    name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-29991231",
    owner: "123456789012",
    architecture: "x86_64",
    creationDate: "2030-01-01T10:00:00.000Z",
  },
];

const INSTANCE_TYPES: Record<string, string> = {
  "t3.micro": "x86_64",
  "t3.small": "x86_64",
  "t3.medium": "x86_64",
  "c7i.large": "x86_64",
  "t4g.small": "arm64",
  "m7g.large": "arm64",
};

const STATE_CODES: Record<string, number> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/** Options of {@link startFakeAws}. */
export interface FakeAwsOptions {
  /** Region the fake serves (default `eu-central-1`). */
  region?: string;
  /** Access key id (default a fixed test id). */
  accessKeyId?: string;
  /** Secret access key (default a fixed test secret). */
  secretAccessKey?: string;
  /** Session token that must accompany the key. */
  sessionToken?: string;
  /** Largest DescribeInstances page (default 1000; tests use 2). */
  maxPageSize?: number;
  /** Views an instance stays `pending` (default 1). */
  pendingPolls?: number;
  /** Views an instance stays `shutting-down` (default 1). */
  terminatePolls?: number;
  /** Lookups by id that answer InvalidInstanceID.NotFound right after launch (default 0). */
  notFoundPolls?: number;
  /** Chooses the public IPv4 of a new instance (e.g. a local box's 127.77.x.y). */
  onCreate?: (instance: FakeInstance) => { ipv4?: string } | void;
  /** Instance types without capacity (InsufficientInstanceCapacity). */
  insufficientCapacity?: string[];
  /** Maximum non-terminated instances (InstanceLimitExceeded beyond). */
  instanceLimit?: number;
  /** Actions the identity may not call (UnauthorizedOperation). */
  denyActions?: string[];
  /** Account without a default VPC. */
  noDefaultVpc?: boolean;
  /** Allowed clock skew of X-Amz-Date (default 5 minutes). */
  maxSkewMs?: number;
}

/** A running fake EC2. */
export interface FakeAws extends AsyncDisposable {
  /** Endpoint URL for `CRABBOX_AWS_EC2_ENDPOINT`. */
  url: string;
  /** Region. */
  region: string;
  /** Env vars that point the aws provider at this fake. */
  env: Record<string, string>;
  /** Every request, secrets redacted. */
  requests: (RecordedRequest & { action?: string })[];
  /** Instances by id. */
  instances: Map<string, FakeInstance>;
  /** Key pairs by name. */
  keyPairs: Map<string, FakeKeyPair>;
  /** Security groups by id. */
  securityGroups: Map<string, FakeSecurityGroup>;
  /** Queue a fault; `match` is the Action name. */
  inject(fault: Fault): void;
  /** Stop the server. */
  close(): Promise<void>;
}

interface Subnet {
  id: string;
  vpcId: string;
  az: string;
  mapPublicIp: boolean;
  defaultForAz: boolean;
}

/** Decode base64 strictly; `undefined` when malformed. */
function strictBase64(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return undefined;
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

async function openSshFingerprint(line: string): Promise<string | undefined> {
  const [type, blob] = line.trim().split(/\s+/);
  if (!["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"].includes(type) || !blob) return undefined;
  const bytes = strictBase64(blob);
  if (!bytes || bytes.length < 4) return undefined;
  const len = new DataView(bytes.buffer).getUint32(0);
  if (new TextDecoder().decode(bytes.subarray(4, 4 + len)) !== type) return undefined;
  return btoa(
    String.fromCharCode(
      ...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)),
    ),
  );
}

/**
 * Start a fake EC2 endpoint on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { startFakeAws } from "./aws.ts";
 * await using fake = startFakeAws({ onCreate: () => ({ ipv4: "127.77.0.3" }) });
 * ```
 */
export function startFakeAws(options: FakeAwsOptions = {}): FakeAws {
  const region = options.region ?? "eu-central-1";
  const keys: SigV4Keys = {
    accessKeyId: options.accessKeyId ?? "AKIAFAKE0000EXAMPLE1",
    secretAccessKey: options.secretAccessKey ?? "fake/Secret+Key0123456789abcdefEXAMPLEKEY",
    sessionToken: options.sessionToken,
  };
  const maxPage = options.maxPageSize ?? 1000;
  const instances = new Map<string, FakeInstance>();
  const keyPairs = new Map<string, FakeKeyPair>();
  const groups = new Map<string, FakeSecurityGroup>();
  const tokens = new Map<string, { id: string; fingerprint: string }>();
  const pageTokens = new Map<string, { query: string; offset: number }>();
  const requests: FakeAws["requests"] = [];
  const faults: Fault[] = [];
  const subnets: Subnet[] = [
    {
      id: FAKE_CUSTOM_SUBNET,
      vpcId: "vpc-0fake00000000cust",
      az: `${region}b`,
      mapPublicIp: false,
      defaultForAz: false,
    },
  ];
  const vpcs = ["vpc-0fake00000000cust"];
  if (!options.noDefaultVpc) {
    vpcs.push(FAKE_DEFAULT_VPC);
    subnets.push({
      id: "subnet-0fake00000000def1",
      vpcId: FAKE_DEFAULT_VPC,
      az: `${region}a`,
      mapPublicIp: true,
      defaultForAz: true,
    });
  }
  let ipCounter = 10;
  const account = "111122223333";

  /** Advance an instance by one observation. */
  const view = (i: FakeInstance) => {
    if (i.state === "pending" || i.state === "shutting-down") {
      if (i.viewsLeft > 0) i.viewsLeft--;
      else i.state = i.state === "pending" ? "running" : "terminated";
    }
  };

  const instanceXml = (i: FakeInstance) => {
    const stopped = i.state === "shutting-down" || i.state === "terminated";
    return tx("instanceId", i.id) + tx("imageId", i.imageId) +
      el("instanceState", tx("code", STATE_CODES[i.state]) + tx("name", i.state)) +
      tx("privateDnsName", `ip-10-0-0-${ipCounter}.${region}.compute.internal`) +
      (i.state === "running" && i.ipv4
        ? tx("dnsName", `ec2-${i.ipv4.replaceAll(".", "-")}.compute.amazonaws.com`)
        : "<dnsName/>") +
      tx("keyName", i.keyName) + tx("amiLaunchIndex", 0) + "<productCodes/>" +
      tx("instanceType", i.instanceType) + tx("launchTime", i.launchTime) +
      el(
        "placement",
        tx("availabilityZone", subnets.find((s) => s.id === i.subnetId)?.az) +
          tx("tenancy", "default"),
      ) +
      el("monitoring", tx("state", "disabled")) + tx("subnetId", i.subnetId) +
      tx("vpcId", i.vpcId) +
      tx("privateIpAddress", "10.0.0.10") +
      (i.state === "running" && i.ipv4 ? tx("ipAddress", i.ipv4) : "") +
      set(
        "groupSet",
        i.groupIds.map((g) => tx("groupId", g) + tx("groupName", groups.get(g)?.name ?? g)),
      ) +
      (stopped
        ? el(
          "stateReason",
          tx("code", "Client.UserInitiatedShutdown") +
            tx("message", "Client.UserInitiatedShutdown: User initiated shutdown"),
        )
        : "") +
      tx("architecture", INSTANCE_TYPES[i.instanceType]) + tx("rootDeviceType", "ebs") +
      tx("rootDeviceName", "/dev/sda1") + "<blockDeviceMapping/>" +
      tx("virtualizationType", "hvm") +
      tx("clientToken", i.clientToken ?? "") + tagSet(i.tags) + tx("hypervisor", "xen") +
      "<networkInterfaceSet/>" + tx("ebsOptimized", false) +
      el(
        "metadataOptions",
        tx("state", "applied") + tx("httpTokens", i.httpTokens) + tx("httpEndpoint", "enabled"),
      );
  };
  const reservationXml = (i: FakeInstance) =>
    tx("reservationId", i.reservationId) + tx("ownerId", account) + "<groupSet/>" +
    set("instancesSet", [instanceXml(i)]);

  const groupXml = (g: FakeSecurityGroup) =>
    tx("ownerId", account) + tx("groupId", g.id) + tx("groupName", g.name) +
    tx("groupDescription", g.description) + tx("vpcId", g.vpcId) +
    set(
      "ipPermissions",
      // EC2 groups the rules of one protocol and port range into one permission.
      [...new Set(g.ingress.map((r) => `${r.protocol} ${r.from} ${r.to}`))].map((key) => {
        const rules = g.ingress.filter((r) => `${r.protocol} ${r.from} ${r.to}` === key);
        const { protocol, from, to } = rules[0];
        return tx("ipProtocol", protocol) + tx("fromPort", from) + tx("toPort", to) +
          "<groups/>" +
          set(
            "ipRanges",
            rules.filter((r) => !r.cidr.includes(":")).map((r) => tx("cidrIp", r.cidr)),
          ) +
          set(
            "ipv6Ranges",
            rules.filter((r) => r.cidr.includes(":")).map((r) => tx("cidrIpv6", r.cidr)),
          ) + "<prefixListIds/>";
      }),
    ) +
    set("ipPermissionsEgress", [
      tx("ipProtocol", "-1") + "<groups/>" + set("ipRanges", [tx("cidrIp", "0.0.0.0/0")]),
    ]) +
    tagSet(g.tags);

  const keyXml = (k: FakeKeyPair, withPublic: boolean) =>
    tx("keyPairId", k.id) + tx("keyFingerprint", k.fingerprint) + tx("keyName", k.name) +
    tx("keyType", k.publicKey.startsWith("ssh-rsa") ? "rsa" : "ed25519") + tagSet(k.tags) +
    (withPublic ? tx("publicKey", k.publicKey) : "");

  const groupInUse = (id: string) =>
    [...instances.values()].some((i) => i.state !== "terminated" && i.groupIds.includes(id));

  const handlers: Record<
    string,
    (p: URLSearchParams, rid: string) => Promise<Response> | Response
  > = {
    DescribeInstances(p, rid) {
      const ids = list(p, "InstanceId");
      const fs = filters(p, [
        "instance-state-name",
        "instance-id",
        "key-name",
        "instance.group-id",
        "vpc-id",
      ]);
      const maxRaw = p.get("MaxResults");
      if (maxRaw !== null && ids.length > 0) {
        throw new Ec2Fault(
          400,
          "InvalidParameterCombination",
          "The parameter instancesSet cannot be used with the parameter maxResults",
        );
      }
      if (maxRaw !== null && !(/^\d+$/.test(maxRaw) && +maxRaw >= 5 && +maxRaw <= 1000)) {
        throw badValue(
          `Value ( ${maxRaw} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
        );
      }
      let found: FakeInstance[];
      if (ids.length > 0) {
        found = ids.map((id) => {
          if (!/^i-[0-9a-f]{8,17}$/.test(id)) {
            throw new Ec2Fault(400, "InvalidInstanceID.Malformed", `Invalid id: "${id}"`);
          }
          const i = instances.get(id);
          if (!i || i.hiddenLeft > 0) {
            if (i) i.hiddenLeft--;
            throw new Ec2Fault(
              400,
              "InvalidInstanceID.NotFound",
              `The instance ID '${id}' does not exist`,
            );
          }
          return i;
        });
      } else found = [...instances.values()].filter((i) => i.hiddenLeft === 0);
      found = found.filter((i) =>
        passes(fs, i.tags, (name) =>
          ({
            "instance-state-name": [i.state],
            "instance-id": [i.id],
            "key-name": i.keyName ? [i.keyName] : [],
            "instance.group-id": i.groupIds,
            "vpc-id": [i.vpcId],
          })[name])
      );
      const query = [...p].filter(([k]) => k !== "NextToken" && k !== "MaxResults").map(String)
        .join("&");
      let offset = 0;
      const next = p.get("NextToken");
      if (next !== null) {
        const t = pageTokens.get(next);
        if (!t || t.query !== query) {
          throw new Ec2Fault(400, "InvalidPaginationToken", `Invalid pagination token: ${next}`);
        }
        offset = t.offset;
      }
      const size = Math.min(maxRaw === null ? found.length || 1 : Number(maxRaw), maxPage);
      const page = found.slice(offset, offset + size);
      let nextToken: string | undefined;
      if (offset + size < found.length) {
        nextToken = randomHex(32);
        pageTokens.set(nextToken, { query, offset: offset + size });
      }
      const xml = set("reservationSet", page.map(reservationXml)) + tx("nextToken", nextToken);
      page.forEach(view);
      return ok("DescribeInstances", rid, xml);
    },

    RunInstances(p, rid) {
      const imageId = p.get("ImageId")!;
      if (!/^ami-[0-9a-f]{8,17}$/.test(imageId)) {
        throw new Ec2Fault(
          400,
          "InvalidAMIID.Malformed",
          `Invalid id: "${imageId}" (expecting "ami-...")`,
        );
      }
      const image = IMAGES.find((i) => i.id === imageId);
      if (!image) {
        throw new Ec2Fault(
          400,
          "InvalidAMIID.NotFound",
          `The image id '[${imageId}]' does not exist`,
        );
      }
      const type = p.get("InstanceType") ?? "m1.small";
      if (!INSTANCE_TYPES[type]) throw badValue(`Invalid value '${type}' for InstanceType.`);
      if (INSTANCE_TYPES[type] !== image.architecture) {
        throw badValue(
          `The architecture '${
            INSTANCE_TYPES[type]
          }' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI.`,
        );
      }
      if (p.get("MinCount") !== "1" || p.get("MaxCount") !== "1") {
        throw badValue("the fake launches exactly one instance (MinCount=MaxCount=1)");
      }
      const token = p.get("ClientToken") ?? undefined;
      if (token !== undefined && (token.length > 64 || !/^[\x20-\x7e]+$/.test(token))) {
        throw badValue("ClientToken must be at most 64 ASCII characters");
      }
      const fingerprint = [...p].filter(([k]) => k !== "ClientToken").map(String).sort().join("&");
      if (token && tokens.has(token)) {
        const prior = tokens.get(token)!;
        if (prior.fingerprint !== fingerprint) {
          throw new Ec2Fault(
            400,
            "IdempotentParameterMismatch",
            "The client token you have provided is associated with a request with different parameters",
          );
        }
        const i = instances.get(prior.id)!;
        return ok(
          "RunInstances",
          rid,
          tx("reservationId", i.reservationId) + tx("ownerId", account) + "<groupSet/>" +
            set("instancesSet", [instanceXml(i)]),
        );
      }
      const keyName = p.get("KeyName") ?? undefined;
      if (keyName !== undefined && !keyPairs.has(keyName)) {
        throw new Ec2Fault(
          400,
          "InvalidKeyPair.NotFound",
          `The key pair '${keyName}' does not exist`,
        );
      }
      const instanceGroups = list(p, "SecurityGroupId");
      const niSubnet = p.get("NetworkInterface.1.SubnetId");
      const niGroups = list(p, "NetworkInterface.1.SecurityGroupId");
      const niKeys = [...p.keys()].filter((k) => k.startsWith("NetworkInterface."));
      if (niKeys.length > 0 && (instanceGroups.length > 0 || p.has("SubnetId"))) {
        throw new Ec2Fault(
          400,
          "InvalidParameterCombination",
          "Network interfaces and an instance-level security groups may not be specified on the same request",
        );
      }
      if (niKeys.length > 0 && p.get("NetworkInterface.1.DeviceIndex") !== "0") {
        throw new Ec2Fault(
          400,
          "InvalidParameterValue",
          "Each network interface requires a device index.",
        );
      }
      const subnetId = niSubnet ?? p.get("SubnetId") ?? subnets.find((s) => s.defaultForAz)?.id;
      if (!subnetId) throw new Ec2Fault(400, "VPCIdNotSpecified", "No default VPC for this user");
      const subnet = subnets.find((s) => s.id === subnetId);
      if (!subnet) {
        throw new Ec2Fault(
          400,
          "InvalidSubnetID.NotFound",
          `The subnet ID '${subnetId}' does not exist`,
        );
      }
      const groupIds = niKeys.length > 0 ? niGroups : instanceGroups;
      for (const g of groupIds) {
        const grp = groups.get(g);
        if (!grp) {
          throw new Ec2Fault(
            400,
            "InvalidGroup.NotFound",
            `The security group '${g}' does not exist`,
          );
        }
        if (grp.vpcId !== subnet.vpcId) {
          throw new Ec2Fault(
            400,
            "InvalidParameter",
            `Security group ${g} and subnet ${subnet.id} belong to different networks.`,
          );
        }
      }
      let userData: string | undefined;
      const rawUserData = p.get("UserData");
      if (rawUserData !== null) {
        const bytes = strictBase64(rawUserData);
        if (!bytes) throw badValue("Invalid BASE64 encoding of user data.");
        if (bytes.length > 16384) throw badValue("User data is limited to 16384 bytes");
        userData = new TextDecoder().decode(bytes);
      }
      const shutdown = p.get("InstanceInitiatedShutdownBehavior");
      if (shutdown !== null && !["stop", "terminate"].includes(shutdown)) {
        throw badValue(`Invalid value '${shutdown}' for InstanceInitiatedShutdownBehavior`);
      }
      const httpTokens = p.get("MetadataOptions.HttpTokens") ?? "optional";
      if (!["optional", "required"].includes(httpTokens)) {
        throw badValue(`Invalid value '${httpTokens}' for HttpTokens`);
      }
      const tags = tagSpecs(p, [
        "instance",
        "volume",
        "network-interface",
        "spot-instances-request",
      ]);
      if ((options.insufficientCapacity ?? []).includes(type)) {
        throw new Ec2Fault(
          500,
          "InsufficientInstanceCapacity",
          `We currently do not have sufficient ${type} capacity in the Availability Zone you requested (${subnet.az}).`,
        );
      }
      const live = [...instances.values()].filter((i) => i.state !== "terminated").length;
      if (options.instanceLimit !== undefined && live >= options.instanceLimit) {
        throw new Ec2Fault(
          400,
          "InstanceLimitExceeded",
          `You have requested more instances (${
            live + 1
          }) than your current instance limit of ${options.instanceLimit} allows for the specified instance type.`,
        );
      }
      const associate = p.get("NetworkInterface.1.AssociatePublicIpAddress") === "true";
      const inst: FakeInstance = {
        id: `i-0${randomHex(16)}`,
        reservationId: `r-0${randomHex(16)}`,
        imageId,
        instanceType: type,
        keyName,
        groupIds,
        subnetId: subnet.id,
        vpcId: subnet.vpcId,
        tags: tags.get("instance") ?? {},
        userData,
        launchPublicKey: keyName === undefined ? undefined : keyPairs.get(keyName)?.publicKey,
        clientToken: token,
        launchTime: new Date().toISOString(),
        ipv4: subnet.mapPublicIp || associate ? `198.51.100.${ipCounter++ % 250}` : undefined,
        state: "pending",
        viewsLeft: options.pendingPolls ?? 1,
        hiddenLeft: options.notFoundPolls ?? 0,
        httpTokens,
      };
      const chosen = options.onCreate?.(inst);
      if (chosen?.ipv4 && inst.ipv4) inst.ipv4 = chosen.ipv4;
      instances.set(inst.id, inst);
      if (token) tokens.set(token, { id: inst.id, fingerprint });
      return ok(
        "RunInstances",
        rid,
        tx("reservationId", inst.reservationId) + tx("ownerId", account) + "<groupSet/>" +
          set("instancesSet", [instanceXml(inst)]),
      );
    },

    TerminateInstances(p, rid) {
      const ids = list(p, "InstanceId");
      const found = ids.map((id) => {
        const i = instances.get(id);
        if (!i) {
          throw new Ec2Fault(
            400,
            "InvalidInstanceID.NotFound",
            `The instance ID '${id}' does not exist`,
          );
        }
        return i;
      });
      return ok(
        "TerminateInstances",
        rid,
        set(
          "instancesSet",
          found.map((i) => {
            const previous = i.state;
            if (i.state !== "terminated" && i.state !== "shutting-down") {
              i.state = "shutting-down";
              i.viewsLeft = options.terminatePolls ?? 1;
            }
            return tx("instanceId", i.id) +
              el("currentState", tx("code", STATE_CODES[i.state]) + tx("name", i.state)) +
              el("previousState", tx("code", STATE_CODES[previous]) + tx("name", previous));
          }),
        ),
      );
    },

    async ImportKeyPair(p, rid) {
      const name = p.get("KeyName")!;
      if (name.length > 255) throw badValue("KeyName is too long");
      const material = strictBase64(p.get("PublicKeyMaterial")!);
      const line = material ? new TextDecoder().decode(material) : "";
      const fingerprint = await openSshFingerprint(line);
      if (!fingerprint) {
        throw new Ec2Fault(
          400,
          "InvalidKey.Format",
          "Key is not in valid OpenSSH public key format",
        );
      }
      const tags = tagSpecs(p, ["key-pair"]);
      if (keyPairs.has(name)) {
        throw new Ec2Fault(
          400,
          "InvalidKeyPair.Duplicate",
          `The keypair '${name}' already exists.`,
        );
      }
      const k: FakeKeyPair = {
        id: `key-0${randomHex(16)}`,
        name,
        publicKey: line.trim().split(/\s+/).slice(0, 2).join(" "),
        fingerprint,
        tags: tags.get("key-pair") ?? {},
      };
      keyPairs.set(name, k);
      return ok(
        "ImportKeyPair",
        rid,
        tx("keyFingerprint", k.fingerprint) + tx("keyName", k.name) + tx("keyPairId", k.id) +
          tagSet(k.tags),
      );
    },

    DescribeKeyPairs(p, rid) {
      const names = list(p, "KeyName");
      for (const n of names) {
        if (!keyPairs.has(n)) {
          throw new Ec2Fault(400, "InvalidKeyPair.NotFound", `The key pair '${n}' does not exist`);
        }
      }
      const fs = filters(p, ["key-name", "key-pair-id", "fingerprint"]);
      const withPublic = p.get("IncludePublicKey") === "true";
      const found = [...keyPairs.values()].filter((k) =>
        (names.length === 0 || names.includes(k.name)) &&
        passes(
          fs,
          k.tags,
          (n) => ({ "key-name": [k.name], "key-pair-id": [k.id], fingerprint: [k.fingerprint] })[n],
        )
      );
      return ok("DescribeKeyPairs", rid, set("keySet", found.map((k) => keyXml(k, withPublic))));
    },

    DeleteKeyPair(p, rid) {
      const name = p.get("KeyName");
      const id = p.get("KeyPairId");
      if (!name && !id) {
        throw new Ec2Fault(
          400,
          "MissingParameter",
          "The request must contain the parameter KeyName or KeyPairId",
        );
      }
      const k = [...keyPairs.values()].find((x) => x.name === name || x.id === id);
      if (k) keyPairs.delete(k.name);
      return ok("DeleteKeyPair", rid, tx("return", true) + tx("keyPairId", k?.id));
    },

    DescribeSecurityGroups(p, rid) {
      const ids = list(p, "GroupId");
      for (const id of ids) {
        if (!groups.has(id)) {
          throw new Ec2Fault(
            400,
            "InvalidGroup.NotFound",
            `The security group '${id}' does not exist`,
          );
        }
      }
      const names = list(p, "GroupName");
      const fs = filters(p, ["group-name", "group-id", "vpc-id", "description"]);
      const found = [...groups.values()].filter((g) =>
        (ids.length === 0 || ids.includes(g.id)) &&
        (names.length === 0 || names.includes(g.name)) &&
        passes(
          fs,
          g.tags,
          (n) =>
            ({
              "group-name": [g.name],
              "group-id": [g.id],
              "vpc-id": [g.vpcId],
              description: [g.description],
            })[n],
        )
      );
      return ok("DescribeSecurityGroups", rid, set("securityGroupInfo", found.map(groupXml)));
    },

    CreateSecurityGroup(p, rid) {
      const name = p.get("GroupName")!;
      const description = p.get("GroupDescription")!;
      if (name.length > 255 || name.startsWith("sg-")) {
        throw badValue(`Invalid security group name '${name}'`);
      }
      if (description.length > 255 || !/^[\x20-\x7e]*$/.test(description)) {
        throw badValue("Invalid GroupDescription");
      }
      const vpcId = p.get("VpcId") ?? (options.noDefaultVpc ? undefined : FAKE_DEFAULT_VPC);
      if (!vpcId) throw new Ec2Fault(400, "VPCIdNotSpecified", "No default VPC for this user");
      if (!vpcs.includes(vpcId)) {
        throw new Ec2Fault(400, "InvalidVpcID.NotFound", `The vpc ID '${vpcId}' does not exist`);
      }
      const tags = tagSpecs(p, ["security-group"]);
      if ([...groups.values()].some((g) => g.name === name && g.vpcId === vpcId)) {
        throw new Ec2Fault(
          400,
          "InvalidGroup.Duplicate",
          `The security group '${name}' already exists for VPC '${vpcId}'`,
        );
      }
      const g: FakeSecurityGroup = {
        id: `sg-0${randomHex(16)}`,
        name,
        description,
        vpcId,
        tags: tags.get("security-group") ?? {},
        ingress: [],
      };
      groups.set(g.id, g);
      return ok(
        "CreateSecurityGroup",
        rid,
        tx("return", true) + tx("groupId", g.id) + tagSet(g.tags),
      );
    },

    AuthorizeSecurityGroupIngress(p, rid) {
      const id = p.get("GroupId");
      if (!id) {
        throw new Ec2Fault(
          400,
          "MissingParameter",
          "The request must contain the parameter GroupId",
        );
      }
      const g = groups.get(id);
      if (!g) {
        throw new Ec2Fault(
          400,
          "InvalidGroup.NotFound",
          `The security group '${id}' does not exist`,
        );
      }
      const protocol = p.get("IpPermissions.1.IpProtocol");
      if (!protocol || !["tcp", "udp", "icmp", "-1"].includes(protocol)) {
        throw badValue(`Invalid IP protocol '${protocol}'`);
      }
      const from = Number(p.get("IpPermissions.1.FromPort"));
      const to = Number(p.get("IpPermissions.1.ToPort"));
      if (
        protocol !== "-1" &&
        (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > 65535 || from > to)
      ) {
        throw new Ec2Fault(
          400,
          "InvalidParameterValue",
          "Invalid value for portRange. Must specify both from and to ports with TCP/UDP.",
        );
      }
      // Every source block of the permission: IpRanges.N.CidrIp (IPv4), Ipv6Ranges.N.CidrIpv6.
      const ranges = (kind: "IpRanges" | "Ipv6Ranges", field: string) =>
        [...p.entries()].filter(([k]) =>
          new RegExp(`^IpPermissions\\.1\\.${kind}\\.\\d+\\.${field}$`).test(k)
        ).map(([, v]) => v);
      const v4 = ranges("IpRanges", "CidrIp");
      const v6 = ranges("Ipv6Ranges", "CidrIpv6");
      if (v4.length + v6.length === 0) {
        throw new Ec2Fault(
          400,
          "MissingParameter",
          "The request must contain a source: IpRanges, Ipv6Ranges, UserIdGroupPairs or PrefixListIds",
        );
      }
      for (const cidr of v4) {
        const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
        if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) {
          throw badValue(`CIDR block ${cidr} is malformed`);
        }
      }
      for (const cidr of v6) {
        const [ip, bits] = cidr.split("/");
        let valid = bits !== undefined && /^\d{1,3}$/.test(bits) && Number(bits) <= 128;
        try {
          new URL(`http://[${ip}]/`);
        } catch {
          valid = false;
        }
        if (!valid || !ip.includes(":")) throw badValue(`CIDR block ${cidr} is malformed`);
      }
      const asked = [...v4, ...v6];
      // One rule that already exists fails the whole call; nothing is added.
      const dup = asked.find((cidr) =>
        g.ingress.some((r) =>
          r.protocol === protocol && r.from === from && r.to === to && r.cidr === cidr
        )
      );
      if (dup) {
        throw new Ec2Fault(
          400,
          "InvalidPermission.Duplicate",
          `the specified rule "peer: ${dup}, TCP, from port: ${from}, to port: ${to}, ALLOW" already exists`,
        );
      }
      for (const cidr of asked) g.ingress.push({ protocol, from, to, cidr });
      return ok(
        "AuthorizeSecurityGroupIngress",
        rid,
        tx("return", true) +
          set(
            "securityGroupRuleSet",
            asked.map((cidr) =>
              tx("groupId", g.id) + tx("isEgress", false) + tx("ipProtocol", protocol) +
              tx("fromPort", from) + tx("toPort", to) +
              tx(cidr.includes(":") ? "cidrIpv6" : "cidrIpv4", cidr)
            ),
          ),
      );
    },

    DeleteSecurityGroup(p, rid) {
      const id = p.get("GroupId");
      const g = id
        ? groups.get(id)
        : [...groups.values()].find((x) => x.name === p.get("GroupName"));
      if (!g) {
        throw new Ec2Fault(
          400,
          "InvalidGroup.NotFound",
          `The security group '${id ?? p.get("GroupName")}' does not exist`,
        );
      }
      if (groupInUse(g.id)) {
        throw new Ec2Fault(400, "DependencyViolation", `resource ${g.id} has a dependent object`);
      }
      groups.delete(g.id);
      return ok("DeleteSecurityGroup", rid, tx("return", true) + tx("groupId", g.id));
    },

    DescribeImages(p, rid) {
      const owners = list(p, "Owner");
      const ids = list(p, "ImageId");
      const fs = filters(p, ["name", "architecture", "state", "owner-id", "image-id"], false);
      const found = IMAGES.filter((i) =>
        (owners.length === 0 || owners.includes(i.owner)) &&
        (ids.length === 0 || ids.includes(i.id)) &&
        passes(
          fs,
          {},
          (n) =>
            ({
              name: [i.name],
              architecture: [i.architecture],
              state: ["available"],
              "owner-id": [i.owner],
              "image-id": [i.id],
            })[n],
        )
      );
      return ok(
        "DescribeImages",
        rid,
        set(
          "imagesSet",
          found.map((i) =>
            tx("imageId", i.id) + tx("imageLocation", `${i.owner}/${i.name}`) +
            tx("imageState", "available") +
            tx("imageOwnerId", i.owner) + tx("creationDate", i.creationDate) +
            tx("isPublic", true) +
            tx("architecture", i.architecture) + tx("imageType", "machine") + tx("name", i.name) +
            tx("rootDeviceType", "ebs") + tx("rootDeviceName", "/dev/sda1") +
            tx("virtualizationType", "hvm")
          ),
        ),
      );
    },

    DescribeVpcs(p, rid) {
      const fs = filters(p, ["isDefault", "vpc-id"], false);
      const found = vpcs.filter((v) =>
        passes(fs, {}, (n) => ({ isDefault: [String(v === FAKE_DEFAULT_VPC)], "vpc-id": [v] })[n])
      );
      return ok(
        "DescribeVpcs",
        rid,
        set(
          "vpcSet",
          found.map((v) =>
            tx("vpcId", v) + tx("state", "available") + tx("cidrBlock", "172.31.0.0/16") +
            tx("isDefault", v === FAKE_DEFAULT_VPC)
          ),
        ),
      );
    },

    DescribeSubnets(p, rid) {
      const ids = list(p, "SubnetId");
      for (const id of ids) {
        if (!subnets.some((s) => s.id === id)) {
          throw new Ec2Fault(
            400,
            "InvalidSubnetID.NotFound",
            `The subnet ID '${id}' does not exist`,
          );
        }
      }
      const fs = filters(p, ["vpc-id", "subnet-id", "default-for-az"], false);
      const found = subnets.filter((s) =>
        (ids.length === 0 || ids.includes(s.id)) &&
        passes(fs, {}, (n) =>
          ({
            "vpc-id": [s.vpcId],
            "subnet-id": [s.id],
            "default-for-az": [String(s.defaultForAz)],
          })[n])
      );
      return ok(
        "DescribeSubnets",
        rid,
        set(
          "subnetSet",
          found.map((s) =>
            tx("subnetId", s.id) + tx("vpcId", s.vpcId) + tx("availabilityZone", s.az) +
            tx("mapPublicIpOnLaunch", s.mapPublicIp) + tx("defaultForAz", s.defaultForAz)
          ),
        ),
      );
    },
  };

  const http = serveFake(async (req) => {
    const rid = crypto.randomUUID();
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    const form = new URLSearchParams(new TextDecoder().decode(body));
    const authHeader = req.headers.get("authorization") ?? "";
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => headers[k] = v);
    if (headers.authorization) {
      headers.authorization = authHeader.replace(/Signature=[0-9a-f]+/, "Signature=[redacted]");
    }
    if (headers["x-amz-security-token"]) headers["x-amz-security-token"] = "[redacted]";
    const recordedBody = Object.fromEntries(form);
    if (recordedBody.UserData) {
      recordedBody.UserData = `[redacted ${recordedBody.UserData.length} chars]`;
    }
    const record = {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: recordedBody,
      status: 0,
      action: form.get("Action") ?? undefined,
    };
    requests.push(record);
    let res: Response;
    try {
      const authFailure = await verifySigV4(
        { method: req.method, url, headers: req.headers, body },
        {
          keys: [keys],
          region,
          service: "ec2",
          nowMs: Date.now(),
          maxSkewMs: options.maxSkewMs ?? 300_000,
        },
      );
      if (authFailure) {
        throw new Ec2Fault(authFailure.status, authFailure.code, authFailure.message);
      }
      if (req.method !== "POST" || url.pathname !== "/") {
        throw new Ec2Fault(400, "InvalidAction", "the fake accepts only POST / with a form body");
      }
      if (
        !(req.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")
      ) {
        throw new Ec2Fault(
          400,
          "MissingAction",
          "The request must contain the parameter Action (form body expected)",
        );
      }
      const action = form.get("Action");
      if (!action) {
        throw new Ec2Fault(400, "MissingAction", "The request must contain the parameter Action");
      }
      if (!ACTIONS[action]) {
        throw new Ec2Fault(
          400,
          "InvalidAction",
          `The action ${action} is not valid for this web service.`,
        );
      }
      const version = form.get("Version");
      if (!version) {
        throw new Ec2Fault(
          400,
          "MissingParameter",
          "The request must contain the parameter Version",
        );
      }
      if (version !== "2016-11-15") {
        throw new Ec2Fault(
          400,
          "NoSuchVersion",
          `An invalid or unrecognized Version was specified: ${version}`,
        );
      }
      checkParams(action, form);
      if ((options.denyActions ?? []).includes(action)) {
        throw new Ec2Fault(
          403,
          "UnauthorizedOperation",
          `You are not authorized to perform this operation. User: arn:aws:iam::${account}:user/crabbox is not authorized to perform: ec2:${action}. Encoded authorization failure message: ${
            randomHex(40)
          }`,
        );
      }
      const fault = takeFault(faults, req.method, action);
      if (fault) {
        throw new Ec2Fault(
          fault.status,
          fault.code,
          faultMessage(fault, new TextDecoder().decode(body)),
        );
      }
      res = await handlers[action](form, rid);
    } catch (e) {
      if (!(e instanceof Ec2Fault)) throw e;
      res = e.toResponse(rid);
    }
    record.status = res.status;
    return res;
  });

  return {
    url: `${http.url}/`,
    region,
    env: {
      AWS_ACCESS_KEY_ID: keys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
      ...(keys.sessionToken ? { AWS_SESSION_TOKEN: keys.sessionToken } : {}),
      AWS_REGION: region,
      CRABBOX_AWS_EC2_ENDPOINT: `${http.url}/`,
    },
    requests,
    instances,
    keyPairs,
    securityGroups: groups,
    inject: (fault) => faults.push(fault),
    close: http.close,
    [Symbol.asyncDispose]: http.close,
  };
}
