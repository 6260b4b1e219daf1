/**
 * Helpers of the fake EC2 server: the Query API error type, XML writing in
 * EC2's shape (empty sets self-close), per-action parameter rules, filters
 * with `*`/`?` wildcards and TagSpecifications.
 *
 * @module
 */

/** An EC2 error answer: `<Response><Errors><Error><Code>…`. */
export class Ec2Fault extends Error {
  /**
   * @param status HTTP status
   * @param code EC2 error code
   * @param message EC2 message
   */
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }

  /** The documented error document. */
  toResponse(requestId: string): Response {
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${
      esc(this.code)
    }</Code><Message>${
      esc(this.message)
    }</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`;
    return new Response(body, {
      status: this.status,
      headers: { "content-type": "text/xml;charset=UTF-8" },
    });
  }
}

/** `InvalidParameterValue` (400). */
export const badValue = (message: string) => new Ec2Fault(400, "InvalidParameterValue", message);

/** XML-escape text. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** `<tag>value</tag>`, or nothing when value is undefined. */
export function tx(tag: string, value: string | number | boolean | undefined | null): string {
  return value === undefined || value === null ? "" : `<${tag}>${esc(String(value))}</${tag}>`;
}

/** `<tag>inner</tag>` with raw inner XML. */
export function el(tag: string, inner: string): string {
  return `<${tag}>${inner}</${tag}>`;
}

/** A set of `<item>`s; self-closing when empty, as EC2 writes it. */
export function set(tag: string, inner: readonly string[]): string {
  return inner.length === 0 ? `<${tag}/>` : el(tag, inner.map((i) => el("item", i)).join(""));
}

/** `<tagSet>` of a tag map. */
export function tagSet(tags: Record<string, string>): string {
  return set("tagSet", Object.entries(tags).map(([k, v]) => tx("key", k) + tx("value", v)));
}

/** A success response document. */
export function ok(action: string, requestId: string, inner: string): Response {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">${
      tx("requestId", requestId)
    }${inner}</${action}Response>`;
  return new Response(body, { status: 200, headers: { "content-type": "text/xml;charset=UTF-8" } });
}

const FILTER = /^Filter\.\d+\.(Name|Value\.\d+)$/;
const TAG_SPEC = /^TagSpecification\.\d+\.(ResourceType|Tag\.\d+\.(Key|Value))$/;

/** Allowed and required parameters of each supported action. */
export const ACTIONS: Record<string, { allowed: RegExp[]; required?: string[] }> = {
  DescribeInstances: { allowed: [/^InstanceId\.\d+$/, FILTER, /^MaxResults$/, /^NextToken$/] },
  RunInstances: {
    required: ["ImageId", "MinCount", "MaxCount"],
    allowed: [
      /^(ImageId|InstanceType|MinCount|MaxCount|KeyName|SubnetId|UserData|ClientToken)$/,
      /^InstanceInitiatedShutdownBehavior$/,
      /^SecurityGroupId\.\d+$/,
      /^MetadataOptions\.(HttpTokens|HttpEndpoint|HttpPutResponseHopLimit)$/,
      /^NetworkInterface\.1\.(DeviceIndex|SubnetId|AssociatePublicIpAddress|DeleteOnTermination|SecurityGroupId\.\d+)$/,
      /^BlockDeviceMapping\.\d+\.(DeviceName|Ebs\.(VolumeSize|VolumeType|DeleteOnTermination))$/,
      TAG_SPEC,
    ],
  },
  TerminateInstances: { required: ["InstanceId.1"], allowed: [/^InstanceId\.\d+$/] },
  ImportKeyPair: {
    required: ["KeyName", "PublicKeyMaterial"],
    allowed: [/^(KeyName|PublicKeyMaterial)$/, TAG_SPEC],
  },
  DescribeKeyPairs: {
    allowed: [/^KeyName\.\d+$/, /^KeyPairId\.\d+$/, FILTER, /^IncludePublicKey$/],
  },
  DeleteKeyPair: { allowed: [/^(KeyName|KeyPairId)$/] },
  DescribeSecurityGroups: {
    allowed: [/^GroupName\.\d+$/, /^GroupId\.\d+$/, FILTER, /^MaxResults$/, /^NextToken$/],
  },
  CreateSecurityGroup: {
    required: ["GroupName", "GroupDescription"],
    allowed: [/^(GroupName|GroupDescription|VpcId)$/, TAG_SPEC],
  },
  AuthorizeSecurityGroupIngress: {
    allowed: [
      /^(GroupId|GroupName)$/,
      /^IpPermissions\.\d+\.(IpProtocol|FromPort|ToPort)$/,
      /^IpPermissions\.\d+\.IpRanges\.\d+\.(CidrIp|Description)$/,
      /^IpPermissions\.\d+\.Ipv6Ranges\.\d+\.(CidrIpv6|Description)$/,
    ],
  },
  DeleteSecurityGroup: { allowed: [/^(GroupId|GroupName)$/] },
  DescribeImages: { allowed: [/^Owner\.\d+$/, /^ImageId\.\d+$/, FILTER, /^IncludeDeprecated$/] },
  DescribeVpcs: { allowed: [/^VpcId\.\d+$/, FILTER] },
  DescribeSubnets: { allowed: [/^SubnetId\.\d+$/, FILTER] },
};

/** Reject unknown and missing parameters the way EC2 does. */
export function checkParams(action: string, p: URLSearchParams): void {
  const spec = ACTIONS[action];
  for (const key of p.keys()) {
    if (key === "Action" || key === "Version" || key === "DryRun") continue;
    if (!spec.allowed.some((r) => r.test(key))) {
      throw new Ec2Fault(400, "UnknownParameter", `The parameter ${key} is not recognized`);
    }
  }
  for (const key of spec.required ?? []) {
    if (!p.get(key)) {
      throw new Ec2Fault(400, "MissingParameter", `The request must contain the parameter ${key}`);
    }
  }
}

/** `Prefix.N` values in index order. */
export function list(p: URLSearchParams, prefix: string): string[] {
  const out: [number, string][] = [];
  for (const [k, v] of p) {
    const m = k.match(new RegExp(`^${prefix.replace(/\./g, "\\.")}\\.(\\d+)$`));
    if (m) out.push([Number(m[1]), v]);
  }
  return out.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

/** A parsed filter. */
export interface ParsedFilter {
  /** Filter name. */
  name: string;
  /** Values (wildcards `*` and `?`). */
  values: string[];
}

/** Parse `Filter.N.*`, checking names against `allowed` (`tag:` keys always allowed if `tags`). */
export function filters(
  p: URLSearchParams,
  allowed: readonly string[],
  tags = true,
): ParsedFilter[] {
  const byIndex = new Map<number, ParsedFilter>();
  for (const [k, v] of p) {
    const m = k.match(/^Filter\.(\d+)\.(Name|Value\.(\d+))$/);
    if (!m) continue;
    const f = byIndex.get(Number(m[1])) ?? { name: "", values: [] };
    if (m[2] === "Name") f.name = v;
    else f.values.push(v);
    byIndex.set(Number(m[1]), f);
  }
  const out = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, f]) => f);
  for (const f of out) {
    if (!f.name) {
      throw new Ec2Fault(
        400,
        "MissingParameter",
        "The request must contain the parameter Filter.N.Name",
      );
    }
    if (
      !(allowed.includes(f.name) || (tags && (f.name.startsWith("tag:") || f.name === "tag-key")))
    ) {
      throw badValue(`The filter '${f.name}' is invalid`);
    }
    if (f.values.length === 0) throw badValue(`The filter '${f.name}' requires a value`);
  }
  return out;
}

/** True when `value` matches an EC2 filter pattern (`*` any run, `?` one character). */
export function globMatch(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(value);
}

/** True when a resource passes every filter; `field(name)` gives its values for a filter name. */
export function passes(
  fs: readonly ParsedFilter[],
  tags: Record<string, string>,
  field: (name: string) => string[] | undefined,
): boolean {
  return fs.every((f) => {
    let have: string[];
    if (f.name.startsWith("tag:")) {
      const k = f.name.slice(4);
      have = k in tags ? [tags[k]] : [];
    } else if (f.name === "tag-key") have = Object.keys(tags);
    else have = field(f.name) ?? [];
    return have.some((h) => f.values.some((v) => globMatch(v, h)));
  });
}

/** Parse and validate `TagSpecification.N.*`; returns tags per resource type. */
export function tagSpecs(
  p: URLSearchParams,
  allowedTypes: readonly string[],
): Map<string, Record<string, string>> {
  type Spec = { type?: string; keys: Map<number, { k?: string; v?: string }> };
  const specs = new Map<number, Spec>();
  for (const [k, v] of p) {
    const m = k.match(/^TagSpecification\.(\d+)\.(ResourceType|Tag\.(\d+)\.(Key|Value))$/);
    if (!m) continue;
    const s: Spec = specs.get(Number(m[1])) ?? { keys: new Map() };
    if (m[2] === "ResourceType") s.type = v;
    else {
      const t = s.keys.get(Number(m[3])) ?? {};
      if (m[4] === "Key") t.k = v;
      else t.v = v;
      s.keys.set(Number(m[3]), t);
    }
    specs.set(Number(m[1]), s);
  }
  const out = new Map<string, Record<string, string>>();
  for (const s of specs.values()) {
    if (!s.type || !allowedTypes.includes(s.type)) {
      throw badValue(`'${s.type ?? ""}' is not a valid taggable resource type for this operation.`);
    }
    const tags: Record<string, string> = {};
    for (const t of s.keys.values()) {
      if (t.k === undefined) {
        throw new Ec2Fault(400, "InvalidParameterValue", "Tag key must be specified");
      }
      if (t.k.length > 128 || (t.v ?? "").length > 256) {
        throw badValue("Tag key or value is too long");
      }
      if (t.k.toLowerCase().startsWith("aws:")) {
        throw badValue("Tag keys starting with 'aws:' are reserved");
      }
      if (!/^[\p{L}\p{N}\s+\-=._:/@]*$/u.test(t.k + (t.v ?? ""))) {
        throw badValue(`Tag '${t.k}' contains characters that are not allowed`);
      }
      tags[t.k] = t.v ?? "";
    }
    if (Object.keys(tags).length > 50) {
      throw new Ec2Fault(400, "TagLimitExceeded", "The maximum number of tags (50) was exceeded");
    }
    out.set(s.type, tags);
  }
  return out;
}

/** A random lowercase hex string of `n` characters. */
export function randomHex(n: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(Math.ceil(n / 2))),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("").slice(0, n);
}
