/**
 * The `aws` provider: EC2 instances over the EC2 Query API, SigV4-signed with
 * `npm:aws4fetch` (explicit service `ec2` and region, no hidden retries).
 * This is the fetch shell; parameters, parsers and error mapping live in
 * `api.ts`, XML handling in `xml.ts`, credentials in
 * `credentials.ts`.
 *
 * Per crew it keeps one key pair and one security group (`crabbox-crew-<crew>`,
 * tagged, TCP `sshPort` only) and removes both with the crew's last instance.
 * The group opens `sshPort` to `aws.sshCidrs`, else to this machine's address
 * (asked once of a what-is-my-IP service, bounded), else — with a warning —
 * to `0.0.0.0/0`. An existing group only gains the missing blocks: nothing
 * is ever revoked, and a wider rule already there is reported.
 *
 * Config (`aws:`): `region`, `instanceType` (default `t3.small`), `ami`
 * (default: newest Canonical Ubuntu 24.04 via DescribeImages), `sshUser`
 * (`ubuntu`), `sshPort` (22), `subnetId` (default: the default VPC),
 * `sshCidrs`, `ipEchoUrl` (or env `CRABBOX_IP_ECHO_URL`).
 *
 * @example
 * ```ts
 * import { createAwsProvider } from "./provider.ts";
 * const aws = createAwsProvider({
 *   home: "/tmp/cbx", env: (k) => Deno.env.get(k), config: { region: "eu-central-1" },
 *   fetch, log: console.error,
 * });
 * const boxes = await aws.list({ crew: "pr-42" });
 * ```
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { knownHostsPath } from "../../lib/core/home.ts";
import {
  assertSelectorValue,
  backoffMs,
  type BoxOwner,
  type CloudProviderOptions,
  cloudRuntime,
  ownerOf,
  sharedResourceName,
  timeoutError,
  withLeftBehind,
} from "../cloud/common.ts";
import { badProviderIdError, notOursError } from "../cloud/delete_guard.ts";
import { fetchWithRetry, type HttpAnswer } from "../cloud/http.ts";
import { detectOperatorCidr } from "../cloud/operator_address.ts";
import {
  authorizeSshParams,
  type AwsSettings,
  awsSettings,
  createSecurityGroupParams,
  describeInstancesParams,
  describeUbuntuImagesParams,
  ec2Body,
  ec2Error,
  type Ec2Instance,
  filterParams,
  importKeyPairParams,
  instanceToLease,
  LISTED_STATES,
  LIVE_STATES,
  newestImage,
  ownerFilters,
  type Params,
  parseCreateSecurityGroup,
  parseDefaultVpc,
  parseDescribeInstances,
  parseKeyPairs,
  parseRunInstances,
  parseSecurityGroups,
  parseSubnetVpc,
  RETRYABLE_CODES,
  runInstancesParams,
  sshIngressPlan,
} from "./api.ts";
import { type AwsAuth, resolveAwsAuth, type TextReader } from "./credentials.ts";
import { parseEc2Error, parseXml, type XmlNode } from "./xml.ts";
import type { CreateSpec, Provider, ProviderContext, ProviderLease, SshTarget } from "../types.ts";
import { AwsClient } from "aws4fetch";

/** Options of {@link createAwsProvider}: the cloud knobs plus a file reader for `~/.aws`. */
export interface AwsProviderOptions extends CloudProviderOptions {
  /** Reads `~/.aws/credentials` and `~/.aws/config` (tests inject). */
  readFile?: TextReader;
  /** Bound of one what-is-my-IP attempt in ms (default 3000; two attempts at most). */
  ipEchoTimeoutMs?: number;
}

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const MAX_PAGES = 1000;

/**
 * Build the AWS provider. Credentials and region are resolved on first use,
 * so building it never fails for missing credentials.
 *
 * @example
 * ```ts
 * import { createAwsProvider } from "./provider.ts";
 * const p = createAwsProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false, pollIntervalMs: 10 },
 * );
 * p.features.has("tailscale"); // true
 * ```
 */
export function createAwsProvider(
  ctx: ProviderContext,
  options: AwsProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 5000);
  let resolved: Promise<{ auth: AwsAuth; s: AwsSettings }> | undefined;
  const setup = () => {
    resolved ??= (async () => {
      const auth = await resolveAwsAuth(ctx.env, options.readFile);
      return { auth, s: awsSettings(ctx.env, ctx.config, auth.profileRegion) };
    })();
    resolved.catch(() => resolved = undefined);
    return resolved;
  };
  const settings = async () => (await setup()).s;

  async function call(
    action: string,
    params: Params,
    signal?: AbortSignal,
    extra: { instanceType?: string; imageId?: string } = {},
  ): Promise<XmlNode> {
    const { auth, s } = await setup();
    const c = auth.credentials;
    const secrets = [c.secretAccessKey, c.sessionToken];
    const client = new AwsClient({
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      service: "ec2",
      region: s.region,
      retries: 0,
    });
    const body = ec2Body(action, params);
    const errorOf = async (a: HttpAnswer) =>
      await parseEc2Error(a.text) ??
        { code: `HTTP${a.status}`, message: a.text };
    const answer = await fetchWithRetry({
      provider: "aws",
      api: "EC2",
      host: new URL(s.endpoint).host,
      what: action,
      rt,
      log: ctx.log,
      signal,
      secrets: () => secrets,
      request: [body],
      // Signed again for every attempt (the signature carries the time).
      send: async () =>
        await ctx.fetch(
          await client.sign(s.endpoint, {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
            body,
            signal,
          }),
        ),
      // Throttling and internal errors are transient; capacity errors (also 5xx) are not.
      retryDelayMs: async (a, attempt) => {
        const err = await errorOf(a);
        const retryable = RETRYABLE_CODES.has(err.code) ||
          (err.code.startsWith("HTTP") && a.status >= 500);
        return retryable ? backoffMs(attempt, 500, rt.maxBackoffMs) : undefined;
      },
    });
    if (answer.ok) return await parseXml(answer.text);
    throw ec2Error(answer.status, await errorOf(answer), {
      action,
      region: s.region,
      credentialSource: c.source,
      ...extra,
    }, secrets);
  }

  const isCode = (e: unknown, ...codes: string[]) =>
    e instanceof CrabboxError && codes.includes(String(e.details?.code));

  async function describe(filters: Params, signal?: AbortSignal): Promise<Ec2Instance[]> {
    const out: Ec2Instance[] = [];
    let token: string | undefined;
    const seen = new Set<string>();
    for (let n = 0; n < MAX_PAGES; n++) {
      const page = parseDescribeInstances(
        await call(
          "DescribeInstances",
          { ...filters, ...describeInstancesParams({ maxResults: 100, nextToken: token }) },
          signal,
        ),
      );
      out.push(...page.instances);
      if (!page.nextToken || seen.has(page.nextToken)) return out;
      seen.add(page.nextToken);
      token = page.nextToken;
    }
    throw timeoutError("aws", "DescribeInstances pagination", 0);
  }

  /** One instance by id; `undefined` when EC2 does not know it (yet or any more). */
  async function describeOne(id: string, signal?: AbortSignal) {
    try {
      return parseDescribeInstances(
        await call("DescribeInstances", describeInstancesParams({ ids: [id] }), signal),
      ).instances[0];
    } catch (e) {
      if (isCode(e, "InvalidInstanceID.NotFound")) return undefined;
      throw e;
    }
  }

  async function vpcFor(s: AwsSettings, signal?: AbortSignal): Promise<string> {
    if (s.subnetId) {
      const vpc = parseSubnetVpc(
        await call("DescribeSubnets", { "SubnetId.1": s.subnetId }, signal),
      );
      if (vpc) return vpc;
      throw new CrabboxError(
        "config",
        "aws_no_subnet",
        `subnet ${s.subnetId} not found in ${s.region}`,
      );
    }
    const vpc = parseDefaultVpc(
      await call("DescribeVpcs", filterParams([{ name: "isDefault", values: ["true"] }]), signal),
    );
    if (vpc) return vpc;
    throw new CrabboxError(
      "config",
      "aws_no_default_vpc",
      `region ${s.region} has no default VPC`,
      {
        hint: "set aws.subnetId to a subnet with a route to an internet gateway",
      },
    );
  }

  async function ensureKeyPair(owner: BoxOwner, publicKey: string, signal?: AbortSignal) {
    const name = sharedResourceName(owner);
    const wanted = publicKey.trim().split(/\s+/).slice(0, 2).join(" ");
    const [existing] = parseKeyPairs(
      await call("DescribeKeyPairs", {
        ...filterParams([{ name: "key-name", values: [name] }]),
        IncludePublicKey: "true",
      }, signal),
    );
    if (existing) {
      const have = existing.publicKey?.trim().split(/\s+/).slice(0, 2).join(" ");
      if (have === undefined || have === wanted) return name;
      ctx.log(`aws: key pair ${name} holds another public key; importing the current one`);
      await call("DeleteKeyPair", { KeyName: name }, signal);
    }
    try {
      await call("ImportKeyPair", importKeyPairParams(name, publicKey, owner), signal);
    } catch (e) {
      if (!isCode(e, "InvalidKeyPair.Duplicate")) throw e; // a concurrent member imported it
    }
    return name;
  }

  let detected: Promise<string[]> | undefined;
  /** Who may reach sshd: `aws.sshCidrs`, else this machine's detected address, else everyone (warned). */
  function sshSources(s: AwsSettings, signal?: AbortSignal): Promise<string[]> {
    if (s.sshCidrs) return Promise.resolve(s.sshCidrs);
    detected ??= (async () => {
      const service = new URL(s.ipEchoUrl).host;
      const r = await detectOperatorCidr({
        url: s.ipEchoUrl,
        fetch: ctx.fetch,
        timeoutMs: options.ipEchoTimeoutMs,
        signal,
      });
      if ("cidr" in r) {
        ctx.log(`aws: ssh opens to this machine's address ${r.cidr} (from ${service})`);
        return [r.cidr];
      }
      ctx.log(
        `aws: warning: cannot tell this machine's address (${service}: ${r.problem}); ` +
          `ssh opens to 0.0.0.0/0 — set aws.sshCidrs in config.yaml to restrict it`,
      );
      return ["0.0.0.0/0"];
    })();
    detected.catch(() => detected = undefined);
    return detected;
  }

  async function ensureSecurityGroup(owner: BoxOwner, s: AwsSettings, signal?: AbortSignal) {
    const name = sharedResourceName(owner);
    const vpcId = await vpcFor(s, signal);
    const find = async () =>
      parseSecurityGroups(
        await call(
          "DescribeSecurityGroups",
          filterParams([{ name: "group-name", values: [name] }, {
            name: "vpc-id",
            values: [vpcId],
          }]),
          signal,
        ),
      )[0];
    let group = await find();
    if (!group) {
      try {
        const id = parseCreateSecurityGroup(
          await call("CreateSecurityGroup", createSecurityGroupParams(name, owner, vpcId), signal),
        );
        group = { id, name, vpcId, tags: {}, tcpIngress: [] };
      } catch (e) {
        if (!isCode(e, "InvalidGroup.Duplicate")) throw e;
        group = await find();
        if (!group) throw e;
      }
    }
    const plan = sshIngressPlan(group.tcpIngress, s.sshPort, await sshSources(s, signal));
    if (plan.wider.length > 0) {
      ctx.log(
        `aws: warning: security group ${group.id} already opens port ${s.sshPort} to ` +
          `${plan.wider.join(", ")}; crabbox never narrows an existing group (revoke the rule ` +
          `in the EC2 console or release the crew to start over)`,
      );
    }
    if (plan.add.length > 0) {
      try {
        await call(
          "AuthorizeSecurityGroupIngress",
          authorizeSshParams(group.id, s.sshPort, plan.add),
          signal,
        );
      } catch (e) {
        if (!isCode(e, "InvalidPermission.Duplicate")) throw e;
      }
    }
    return group.id;
  }

  async function imageFor(s: AwsSettings, signal?: AbortSignal): Promise<string> {
    if (s.ami) return s.ami;
    const id = newestImage(
      await call("DescribeImages", describeUbuntuImagesParams(s.instanceType), signal),
    );
    if (!id) {
      throw new CrabboxError(
        "provider",
        "aws_no_ubuntu_ami",
        `no Canonical Ubuntu 24.04 AMI for ${s.instanceType} found in ${s.region}`,
        { hint: "set aws.ami to an Ubuntu AMI id of this region" },
      );
    }
    return id;
  }

  async function launch(
    spec: CreateSpec,
    s: AwsSettings,
    signal?: AbortSignal,
  ): Promise<Ec2Instance> {
    const owner = { crew: spec.crew, leaseId: spec.leaseId };
    const imageId = await imageFor(s, signal);
    for (let attempt = 0;; attempt++) {
      const keyName = await ensureKeyPair(owner, spec.sshPublicKey, signal);
      const groupId = await ensureSecurityGroup(owner, s, signal);
      try {
        return parseRunInstances(
          await call(
            "RunInstances",
            runInstancesParams(spec, s, { imageId, keyName, groupId }),
            signal,
            { instanceType: s.instanceType, imageId },
          ),
        );
      } catch (e) {
        // A concurrent release removed the crew's key pair or group: recreate once.
        if (attempt === 0 && isCode(e, "InvalidKeyPair.NotFound", "InvalidGroup.NotFound")) {
          continue;
        }
        throw e;
      }
    }
  }

  async function waitRunning(id: string, signal?: AbortSignal): Promise<Ec2Instance> {
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      // Right after RunInstances EC2 may still say InvalidInstanceID.NotFound: keep polling.
      const inst = await describeOne(id, signal);
      if (inst && (inst.state === "shutting-down" || inst.state === "terminated")) {
        throw new CrabboxError(
          "provider",
          "aws_instance_failed",
          `EC2 instance ${id} is ${inst.state}${inst.stateReason ? `: ${inst.stateReason}` : ""}`,
        );
      }
      if (inst?.state === "running" && inst.ipv4) return inst;
      if (inst?.state === "running" && rt.now() >= deadline) {
        throw new CrabboxError(
          "provider",
          "aws_no_public_ip",
          `EC2 instance ${id} runs without a public IPv4`,
          { hint: "launch into a subnet that maps public IPs (aws.subnetId), or the default VPC" },
        );
      }
      if (rt.now() >= deadline) {
        throw timeoutError("aws", `instance ${id} running with a public IPv4`, rt.readyTimeoutMs);
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  async function terminate(id: string, signal?: AbortSignal) {
    try {
      await call("TerminateInstances", { "InstanceId.1": id }, signal);
    } catch (e) {
      if (!isCode(e, "InvalidInstanceID.NotFound")) throw e;
    }
  }

  /** Remove the crew's key pair and security group once no live instance uses them. */
  async function cleanupShared(owner: BoxOwner, goneId: string, signal?: AbortSignal) {
    const live = (await describe(
      filterParams([...ownerFilters(owner), { name: "instance-state-name", values: LIVE_STATES }]),
      signal,
    )).filter((i) => i.id !== goneId);
    if (live.length > 0) return;
    const name = sharedResourceName(owner);
    const tagged = filterParams([{ name: "tag:crabbox", values: ["true"] }, {
      name: "key-name",
      values: [name],
    }]);
    for (const key of parseKeyPairs(await call("DescribeKeyPairs", tagged, signal))) {
      await call("DeleteKeyPair", { KeyName: key.name }, signal);
      ctx.log(`aws: deleted key pair ${key.name}`);
    }
    const groups = parseSecurityGroups(
      await call(
        "DescribeSecurityGroups",
        filterParams([{ name: "group-name", values: [name] }, {
          name: "tag:crabbox",
          values: ["true"],
        }]),
        signal,
      ),
    );
    if (groups.length === 0) return;
    // A security group cannot be deleted while a shutting-down instance still uses it:
    // wait until the crew has none, then retry DependencyViolation (ENIs detach late).
    const deadline = rt.now() + rt.goneTimeoutMs;
    const dying = filterParams([...ownerFilters(owner), {
      name: "instance-state-name",
      values: ["shutting-down"],
    }]);
    while ((await describe(dying, signal)).length > 0) {
      if (rt.now() >= deadline) {
        ctx.log(`aws: instances of ${name} are still shutting down; security group left in place`);
        return;
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
    for (const g of groups) {
      for (let attempt = 0;; attempt++) {
        try {
          await call("DeleteSecurityGroup", { GroupId: g.id }, signal);
          ctx.log(`aws: deleted security group ${g.name} (${g.id})`);
          break;
        } catch (e) {
          if (isCode(e, "InvalidGroup.NotFound")) break;
          if (!isCode(e, "DependencyViolation")) throw e;
          if (rt.now() >= deadline) {
            ctx.log(`aws: security group ${g.id} is still in use; left in place`);
            return;
          }
          await rt.sleep(backoffMs(attempt, rt.pollIntervalMs, 15_000), signal);
        }
      }
    }
  }

  return {
    name: "aws",
    features: new Set(["ssh", "tailscale", "cloud-init"]),

    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      const s = await settings();
      runInstancesParams(spec, s, { imageId: "", keyName: "", groupId: "" }); // validates user data first
      ctx.log(`aws: launching crabbox-${spec.slug} (${s.instanceType}) in ${s.region}`);
      const owner = { crew: spec.crew, leaseId: spec.leaseId };
      let createdId: string | undefined;
      try {
        const created = await launch(spec, s, signal);
        createdId = created.id;
        const inst = await waitRunning(created.id, signal);
        const lease = instanceToLease(inst, s, ctx.home, spec.sshKeyPath);
        if (!lease?.ssh) {
          throw new CrabboxError(
            "provider",
            "aws_bad_response",
            `EC2 instance ${inst.id} lost its crabbox tags`,
          );
        }
        if (rt.waitForSsh) {
          ctx.log(`aws: ${inst.id} is running at ${inst.ipv4}; waiting for ssh`);
          await rt.waitForSsh(lease.ssh, {
            knownHostsFile: knownHostsPath(ctx.home, spec),
            timeoutMs: rt.sshTimeoutMs,
            signal,
          });
        }
        return lease;
      } catch (e) {
        const left: string[] = [];
        const shared = sharedResourceName(owner);
        if (createdId !== undefined) {
          ctx.log(`aws: create of crabbox-${spec.slug} failed; terminating ${createdId}`);
          await terminate(createdId).catch((t) => {
            ctx.log(`aws: could not terminate ${createdId}: ${(t as Error).message}`);
            left.push(`instance ${createdId}`);
          });
        }
        // The crew's key pair and security group go too, unless another member uses them.
        if (left.length === 0) {
          await cleanupShared(owner, createdId ?? "").catch((t) => {
            ctx.log(`aws: could not remove ${shared}: ${(t as Error).message}`);
            left.push(`key pair and security group ${shared}`);
          });
        } else left.push(`key pair and security group ${shared}`);
        throw withLeftBehind(e, left);
      }
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const filters = [{ name: "tag:crabbox", values: ["true"] }];
      if (selector.crew !== undefined) {
        filters.push({ name: "tag:crew", values: [assertSelectorValue("crew", selector.crew)] });
      }
      if (selector.owner !== undefined) {
        const owner = assertSelectorValue("owner", selector.owner);
        filters.push({ name: "tag:crabbox-owner", values: [owner] });
      }
      filters.push({ name: "instance-state-name", values: LISTED_STATES });
      const s = await settings();
      return (await describe(filterParams(filters), signal))
        .map((i) => instanceToLease(i, s, ctx.home))
        .filter((l): l is ProviderLease => l !== undefined);
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      if (!INSTANCE_ID.test(providerId)) return undefined;
      const inst = await describeOne(providerId, signal);
      if (!inst || inst.state === "terminated") return undefined;
      return instanceToLease(inst, await settings(), ctx.home);
    },

    async delete(lease, signal): Promise<void> {
      if (!INSTANCE_ID.test(lease.providerId)) {
        throw badProviderIdError("aws", lease.providerId, "an EC2 instance id");
      }
      const inst = await describeOne(lease.providerId, signal);
      if (inst && inst.state !== "terminated") {
        if (ownerOf(inst.tags)?.leaseId !== lease.leaseId) {
          throw notOursError("aws", `EC2 instance ${inst.id}`, lease.leaseId, "terminating");
        }
        if (inst.state !== "shutting-down") await terminate(inst.id, signal);
        ctx.log(`aws: terminating ${inst.id}`);
      }
      const owner = ownerOf(lease.labels) ?? (inst && ownerOf(inst.tags)) ??
        { leaseId: lease.leaseId };
      await cleanupShared(owner, lease.providerId, signal);
    },

    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh;
    },
  };
}
