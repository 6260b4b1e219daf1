/**
 * Google Compute Engine API v1, the pure half: settings from env/config,
 * the reversible label encoding, request bodies (instance, firewall), list
 * filters, parsers for instances, operations and aggregated lists, and the
 * mapping of Google's error envelope `{"error":{"code","message","errors"}}`
 * and of failed operations to {@link CrabboxError}s. No I/O here;
 * `provider.ts` is the fetch shell.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { isLeaseId } from "../../lib/core/names.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import type { Labels } from "../../lib/core/labels.ts";
import { clientKeyPath } from "../../lib/ssh/keys.ts";
import {
  apiBaseUrl,
  type BoxOwner,
  configPort,
  configString,
  isIpv4,
  ownerOf,
  sharedResourceName,
} from "../cloud/common.ts";
import { asObject, errorEnvelope } from "../cloud/http.ts";
import { capMessage, requestFragments, scrubRequestData } from "../cloud/request_data.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** Default compute base URL (`CRABBOX_GCP_COMPUTE_URL` overrides). */
export const GCP_COMPUTE_URL = "https://compute.googleapis.com/compute/v1";
/** Default zone (upstream's). */
export const GCP_DEFAULT_ZONE = "europe-west2-a";
/** Default machine type. */
export const GCP_DEFAULT_MACHINE_TYPE = "e2-standard-2";
/** Default image (upstream's). */
export const GCP_DEFAULT_IMAGE =
  "projects/ubuntu-os-cloud/global/images/family/ubuntu-2604-lts-amd64";
/** Largest metadata value GCP accepts (256 KiB). */
export const GCP_MAX_METADATA_VALUE = 256 * 1024;
/** Largest page crabbox asks for (`maxResults`, GCP's maximum). */
export const GCP_MAX_RESULTS = 500;

/** Resolved GCP settings. */
export interface GcpSettings {
  /** Compute base URL (ends in `/compute/v1`, no trailing slash). */
  computeUrl: string;
  /** Project id. */
  project: string;
  /** Zone. */
  zone: string;
  /** Machine type name. */
  machineType: string;
  /** Source image (partial or full URL). */
  image: string;
  /** VPC network name. */
  network: string;
  /** Subnetwork name, if any. */
  subnetwork?: string;
  /** Boot disk size in GB. */
  diskSizeGb: number;
  /** SSH login user (the `ssh-keys` metadata user). */
  sshUser: string;
  /** sshd port (the firewall opens this one). */
  sshPort: number;
  /** Source ranges allowed to reach sshd. */
  sshCidrs: string[];
}

const PROJECT = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const ZONE = /^[a-z]+-[a-z]+[0-9]+-[a-z]$/;
const RFC1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/;

const need = (value: string | undefined, what: string, re: RegExp, via: string) => {
  if (value !== undefined && !re.test(value)) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      `${via}: ${JSON.stringify(value)} is not a valid ${what}`,
    );
  }
  return value;
};

/**
 * Settings from env and the `gcp:` config section, upstream's precedence:
 * project = `CRABBOX_GCP_PROJECT` → `gcp.project` → `GOOGLE_CLOUD_PROJECT` →
 * `GCP_PROJECT_ID` → the key file's `project_id` (`keyProject`);
 * zone = `CRABBOX_GCP_ZONE` → `gcp.zone` → `europe-west2-a`.
 *
 * @example
 * ```ts
 * import { gcpSettings } from "./api.ts";
 * gcpSettings((k) => k === "CRABBOX_GCP_PROJECT" ? "my-proj-1" : undefined, {}).zone; // "europe-west2-a"
 * ```
 */
export function gcpSettings(
  env: EnvReader,
  config: Record<string, unknown>,
  keyProject?: string,
): GcpSettings {
  const e = (k: string) => env(k)?.trim() || undefined;
  const projectVia = e("CRABBOX_GCP_PROJECT")
    ? "CRABBOX_GCP_PROJECT"
    : configString(config, "gcp", "project")
    ? "gcp.project"
    : e("GOOGLE_CLOUD_PROJECT")
    ? "GOOGLE_CLOUD_PROJECT"
    : e("GCP_PROJECT_ID")
    ? "GCP_PROJECT_ID"
    : "project_id of the key file";
  const project = e("CRABBOX_GCP_PROJECT") ?? configString(config, "gcp", "project") ??
    e("GOOGLE_CLOUD_PROJECT") ?? e("GCP_PROJECT_ID") ?? keyProject;
  if (!project) {
    throw new CrabboxError(
      "config",
      "gcp_no_project",
      "no GCP project: set CRABBOX_GCP_PROJECT or gcp.project",
    );
  }
  need(project, "project id", PROJECT, projectVia);
  const zone = e("CRABBOX_GCP_ZONE") ?? configString(config, "gcp", "zone") ?? GCP_DEFAULT_ZONE;
  need(zone, "zone", ZONE, "CRABBOX_GCP_ZONE/gcp.zone");
  const machineType = e("CRABBOX_GCP_MACHINE_TYPE") ?? configString(config, "gcp", "machineType") ??
    GCP_DEFAULT_MACHINE_TYPE;
  need(machineType, "machine type", /^[a-z0-9][a-z0-9-]{0,62}$/, "gcp.machineType");
  const network = e("CRABBOX_GCP_NETWORK") ?? configString(config, "gcp", "network") ?? "default";
  need(network, "network name", RFC1035, "CRABBOX_GCP_NETWORK/gcp.network");
  const subnetwork = e("CRABBOX_GCP_SUBNET") ?? configString(config, "gcp", "subnetwork");
  need(subnetwork, "subnetwork name", RFC1035, "CRABBOX_GCP_SUBNET/gcp.subnetwork");
  const cidrs = (e("CRABBOX_GCP_SSH_CIDRS") ?? "0.0.0.0/0").split(",").map((c) => c.trim())
    .filter((c) => c !== "");
  for (const c of cidrs) need(c, "CIDR", CIDR, "CRABBOX_GCP_SSH_CIDRS");
  const rootGb = e("CRABBOX_GCP_ROOT_GB");
  const disk = rootGb === undefined ? 20 : Number(rootGb);
  if (!Number.isInteger(disk) || disk < 10 || disk > 65536) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      "CRABBOX_GCP_ROOT_GB must be an integer 10..65536",
    );
  }
  const base = e("CRABBOX_GCP_COMPUTE_URL") ?? GCP_COMPUTE_URL;
  return {
    computeUrl: apiBaseUrl("CRABBOX_GCP_COMPUTE_URL", base).href.replace(/\/+$/, ""),
    project,
    zone,
    machineType,
    image: e("CRABBOX_GCP_IMAGE") ?? configString(config, "gcp", "image") ?? GCP_DEFAULT_IMAGE,
    network,
    subnetwork,
    diskSizeGb: disk,
    sshUser: configString(config, "gcp", "sshUser") ?? "crabbox",
    sshPort: configPort(config, "gcp", "sshPort", 22),
    sshCidrs: cidrs,
  };
}

// ------------------------------------------------------------------ labels

const KEY_OK = /^[a-z][a-z0-9_-]{0,62}$/;

function escapeChars(s: string, keep: RegExp): string {
  let out = "";
  for (const ch of s) {
    if (keep.test(ch)) {
      out += ch;
      continue;
    }
    for (const b of new TextEncoder().encode(ch)) out += `_${b.toString(16).padStart(2, "0")}`;
  }
  return out;
}

function unescapeChars(s: string): string {
  if (!s.includes("_")) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length;) {
    const m = /^_([0-9a-f]{2})/.exec(s.slice(i));
    if (m) {
      bytes.push(parseInt(m[1], 16));
      i += 3;
    } else {
      bytes.push(...new TextEncoder().encode(s[i]));
      i++;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * Encode labels by GCP's rules (keys `^[a-z][a-z0-9_-]{0,62}$`, values
 * `[a-z0-9_-]{0,63}`): every other character becomes `_` + two lowercase hex
 * digits per UTF-8 byte, and a key not starting with a letter gets an `x_`
 * prefix. crabbox's own labels never contain `_`, so this is reversible
 * with {@link decodeGcpLabels}. A result over 63 characters is a usage
 * error (nothing is truncated silently).
 *
 * @example
 * ```ts
 * import { encodeGcpLabels } from "./api.ts";
 * encodeGcpLabels({ crew: "pr-42", note: "A.b" }); // { crew: "pr-42", note: "_41_2eb" }
 * ```
 */
export function encodeGcpLabels(labels: Labels): Labels {
  const out: Labels = {};
  if (Object.keys(labels).length > 64) {
    throw new CrabboxError("usage", "gcp_bad_labels", "GCP allows at most 64 labels per instance");
  }
  for (const [k, v] of Object.entries(labels)) {
    let key = escapeChars(k, /[a-z0-9-]/);
    if (!/^[a-z]/.test(key)) key = `x_${key}`;
    const value = escapeChars(v, /[a-z0-9-]/);
    if (!KEY_OK.test(key) || value.length > 63) {
      throw new CrabboxError(
        "usage",
        "gcp_bad_labels",
        `label ${JSON.stringify(k)} does not fit GCP's 63-character label rules once encoded`,
      );
    }
    out[key] = value;
  }
  return out;
}

/** Inverse of {@link encodeGcpLabels}. */
export function decodeGcpLabels(labels: Labels): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(labels)) {
    out[unescapeChars(k.startsWith("x_") ? k.slice(2) : k)] = unescapeChars(v);
  }
  return out;
}

/**
 * The list filter for exact label matches, in GCP's filter language:
 * `(labels.crabbox = "true") AND (labels.crew = "pr-42")`.
 *
 * @example
 * ```ts
 * import { labelFilter } from "./api.ts";
 * labelFilter({ crabbox: "true" }); // '(labels.crabbox = "true")'
 * ```
 */
export function labelFilter(labels: Labels): string {
  return Object.entries(encodeGcpLabels(labels)).map(([k, v]) => `(labels.${k} = "${v}")`)
    .join(" AND ");
}

// ------------------------------------------------------------------ names

/**
 * Instance name `crabbox-<slug>-<lease hex>` (RFC 1035, ≤ 63).
 *
 * @example
 * ```ts
 * import { gcpInstanceName } from "./api.ts";
 * gcpInstanceName({ slug: "api", leaseId: "cbx-0123456789ab" }); // "crabbox-api-0123456789ab"
 * ```
 */
export function gcpInstanceName(spec: { slug: string; leaseId: string }): string {
  return `crabbox-${spec.slug}-${spec.leaseId.slice(4)}`;
}

/** Firewall rule name and network tag of a crew (or a crew-less lease). */
export function gcpFirewallName(owner: BoxOwner): string {
  return sharedResourceName(owner);
}

/** providerId `<zone>/<instance name>`. */
export function gcpProviderId(zone: string, name: string): string {
  return `${zone}/${name}`;
}

/** Split a providerId; `undefined` when it is not one of ours. */
export function parseGcpProviderId(id: string): { zone: string; name: string } | undefined {
  const m = /^([a-z]+-[a-z]+[0-9]+-[a-z])\/([a-z]([-a-z0-9]{0,61}[a-z0-9])?)$/.exec(id);
  return m ? { zone: m[1], name: m[2] } : undefined;
}

// ------------------------------------------------------------------ bodies

/** Build the `instances.insert` body. Oversized user data is a usage error before any call. */
export function insertInstanceBody(spec: CreateSpec, s: GcpSettings): Record<string, unknown> {
  const key = spec.sshPublicKey.trim();
  if (
    !/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( \S+)?$/.test(key)
  ) {
    throw new CrabboxError("usage", "bad_public_key", "the crew public key is not an OpenSSH key");
  }
  const items: { key: string; value: string }[] = [
    { key: "enable-oslogin", value: "FALSE" },
    { key: "ssh-keys", value: `${s.sshUser}:${key}` },
  ];
  if (spec.userData !== undefined) {
    const size = new TextEncoder().encode(spec.userData).length;
    if (size > GCP_MAX_METADATA_VALUE) {
      throw new CrabboxError(
        "usage",
        "user_data_too_large",
        `cloud-init user data is ${size} bytes; GCP metadata values hold at most ${GCP_MAX_METADATA_VALUE}`,
      );
    }
    items.push({ key: "user-data", value: spec.userData });
  }
  const tag = gcpFirewallName({ crew: spec.crew, leaseId: spec.leaseId });
  const nic: Record<string, unknown> = {
    network: `global/networks/${s.network}`,
    accessConfigs: [{ name: "External NAT", type: "ONE_TO_ONE_NAT" }],
  };
  if (s.subnetwork) nic.subnetwork = `regions/${s.zone.slice(0, -2)}/subnetworks/${s.subnetwork}`;
  return {
    name: gcpInstanceName(spec),
    machineType: `zones/${s.zone}/machineTypes/${s.machineType}`,
    labels: encodeGcpLabels(spec.labels),
    tags: { items: [tag] },
    metadata: { items },
    disks: [{
      boot: true,
      autoDelete: true,
      initializeParams: { sourceImage: s.image, diskSizeGb: String(s.diskSizeGb) },
    }],
    networkInterfaces: [nic],
  };
}

/** The `firewalls.insert` body: TCP `sshPort` from `sshCidrs` to the crew's tag. */
export function firewallBody(owner: BoxOwner, s: GcpSettings): Record<string, unknown> {
  const name = gcpFirewallName(owner);
  return {
    name,
    description: "crabbox-managed: ssh to the crew's boxes",
    network: `global/networks/${s.network}`,
    direction: "INGRESS",
    priority: 1000,
    targetTags: [name],
    sourceRanges: s.sshCidrs,
    allowed: [{ IPProtocol: "tcp", ports: [String(s.sshPort)] }],
  };
}

// ------------------------------------------------------------------ parsers

function malformed(what: string): CrabboxError {
  return new CrabboxError("provider", "gcp_bad_response", `GCP returned a malformed ${what}`);
}

/** The last path segment of a (partial) resource URL. */
export function lastSegment(url: unknown): string {
  return typeof url === "string" ? url.slice(url.lastIndexOf("/") + 1) : "";
}

/** The fields of an instance crabbox uses. */
export interface GcpInstance {
  /** Instance name. */
  name: string;
  /** Zone name. */
  zone: string;
  /** PROVISIONING, STAGING, RUNNING, STOPPING, TERMINATED, … */
  status: string;
  /** Decoded labels. */
  labels: Labels;
  /** Public IPv4 (`networkInterfaces[0].accessConfigs[0].natIP`). */
  natIp?: string;
  /** Creation time. */
  created?: string;
  /** Machine type name. */
  machineType?: string;
}

/** Parse one instance resource. */
export function parseInstance(v: unknown): GcpInstance {
  const i = asObject(v);
  if (typeof i.name !== "string" || typeof i.status !== "string") throw malformed("instance");
  const labels: Labels = {};
  for (const [k, val] of Object.entries(asObject(i.labels))) {
    if (typeof val === "string") labels[k] = val;
  }
  const nics = Array.isArray(i.networkInterfaces) ? i.networkInterfaces : [];
  const acs = Array.isArray(asObject(nics[0]).accessConfigs)
    ? asObject(nics[0]).accessConfigs as unknown[]
    : [];
  const ip = asObject(acs[0]).natIP;
  return {
    name: i.name,
    zone: lastSegment(i.zone),
    status: i.status,
    labels: decodeGcpLabels(labels),
    natIp: isIpv4(ip) ? ip : undefined,
    created: typeof i.creationTimestamp === "string" ? i.creationTimestamp : undefined,
    machineType: lastSegment(i.machineType) || undefined,
  };
}

/** One page of `aggregated/instances`. */
export interface AggregatedPage {
  /** Instances of every zone on this page. */
  instances: GcpInstance[];
  /** Token for the next page. */
  nextPageToken?: string;
  /** Zones that could not be read (`unreachables`). */
  unreachable: string[];
}

/**
 * Parse an aggregated list page: `items` is a map of `zones/<z>` to
 * `{instances}` or `{warning}`.
 */
export function parseAggregatedPage(json: unknown): AggregatedPage {
  const root = asObject(json);
  if (root.items !== undefined && (typeof root.items !== "object" || Array.isArray(root.items))) {
    throw malformed("aggregated list");
  }
  const instances: GcpInstance[] = [];
  for (const scoped of Object.values(asObject(root.items))) {
    const list = asObject(scoped).instances;
    if (Array.isArray(list)) instances.push(...list.map(parseInstance));
  }
  const token = root.nextPageToken;
  return {
    instances,
    nextPageToken: typeof token === "string" && token !== "" ? token : undefined,
    unreachable: Array.isArray(root.unreachables)
      ? root.unreachables.filter((u): u is string => typeof u === "string")
      : [],
  };
}

/** An Operation's progress. */
export interface GcpOperation {
  /** Operation name. */
  name: string;
  /** `zones/<z>` scope or `global`. */
  scope: string;
  /** PENDING, RUNNING, DONE. */
  status: string;
  /** Errors inside a DONE operation. */
  errors: { code: string; message: string }[];
  /** Target resource URL. */
  targetLink?: string;
}

/** Parse an Operation. */
export function parseOperation(v: unknown): GcpOperation {
  const o = asObject(v);
  if (typeof o.name !== "string" || typeof o.status !== "string") throw malformed("operation");
  const errs = Array.isArray(asObject(o.error).errors) ? asObject(o.error).errors as unknown[] : [];
  return {
    name: o.name,
    scope: typeof o.zone === "string" ? `zones/${lastSegment(o.zone)}` : "global",
    status: o.status,
    errors: errs.map((e) => ({
      code: String(asObject(e).code ?? "UNKNOWN"),
      message: String(asObject(e).message ?? ""),
    })),
    targetLink: typeof o.targetLink === "string" ? o.targetLink : undefined,
  };
}

/** Map a GCP status to the provider-neutral lease state. */
export function leaseState(status: string): ProviderLease["state"] {
  switch (status) {
    case "PROVISIONING":
    case "STAGING":
      return "creating";
    case "RUNNING":
      return "running";
    case "STOPPING":
    case "STOPPED":
    case "SUSPENDING":
    case "SUSPENDED":
    case "TERMINATED":
      return "stopped";
    default:
      return "unknown";
  }
}

/** An instance as a {@link ProviderLease}; `undefined` without the reserved labels. */
export function instanceToLease(
  inst: GcpInstance,
  s: GcpSettings,
  home: string,
  keyPath?: string,
): ProviderLease | undefined {
  const owner = ownerOf(inst.labels);
  if (!owner || !isLeaseId(owner.leaseId)) return undefined;
  return {
    providerId: gcpProviderId(inst.zone, inst.name),
    leaseId: owner.leaseId,
    labels: inst.labels,
    state: leaseState(inst.status),
    ssh: inst.natIp
      ? {
        host: inst.natIp,
        port: s.sshPort,
        user: s.sshUser,
        keyPath: keyPath ?? clientKeyPath(home, owner),
      }
      : undefined,
    createdAt: inst.created,
    data: { name: inst.name, zone: inst.zone, machineType: inst.machineType },
  };
}

// ------------------------------------------------------------------ errors

/** The decoded error envelope. */
export interface GcpApiError {
  /** HTTP-like code from the body (or the status). */
  code: number;
  /** Google's message. */
  message: string;
  /** `errors[].reason` values (`notFound`, `rateLimitExceeded`, …). */
  reasons: string[];
}

/** Decode `{"error":{"code","message","errors":[{reason}]}}`; tolerates junk. */
export function parseGcpError(status: number, text: string): GcpApiError {
  const err = errorEnvelope(text);
  const list = Array.isArray(err.errors) ? err.errors : [];
  return {
    code: typeof err.code === "number" ? err.code : status,
    message: capMessage(typeof err.message === "string" ? err.message : text),
    reasons: list.map((e: unknown) => asObject(e).reason).filter((r): r is string =>
      typeof r === "string"
    ),
  };
}

/** Reasons that mean "slow down" (403 or 429). */
export const RATE_REASONS = new Set(["rateLimitExceeded", "userRateLimitExceeded"]);
const QUOTA_REASONS = new Set(["quotaExceeded", "QUOTA_EXCEEDED", "limitExceeded"]);
/** Operation error codes that mean "no capacity or quota now". */
export const CAPACITY_CODES = new Set([
  "QUOTA_EXCEEDED",
  "ZONE_RESOURCE_POOL_EXHAUSTED",
  "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
  "RESOURCE_EXHAUSTED",
  "RESOURCE_POOL_EXHAUSTED",
]);

/** True when the answer asks crabbox to wait and retry. */
export function isRateLimited(status: number, err: GcpApiError): boolean {
  return status === 429 || (status === 403 && err.reasons.some((r) => RATE_REASONS.has(r)));
}

/** What a failed call was doing, for messages. */
export interface GcpRequestContext {
  /** HTTP method. */
  method: string;
  /** Path without query. */
  path: string;
  /** Variable holding the credentials. */
  credentials: string;
  /** Machine type and zone, for create. */
  machineType?: string;
  /** Zone. */
  zone?: string;
}

/**
 * Map an HTTP status + GCP error to a {@link CrabboxError}: 401 and
 * permission 403s are credentials errors naming the variable; quota errors
 * are provider errors with Google's words.
 *
 * @example
 * ```ts
 * import { gcpError } from "./api.ts";
 * gcpError(401, { code: 401, message: "Invalid Credentials", reasons: ["authError"] },
 *   { method: "GET", path: "/x", credentials: "GOOGLE_OAUTH_ACCESS_TOKEN" }).kind; // "credentials"
 * ```
 */
export function gcpError(status: number, err: GcpApiError, ctx: GcpRequestContext): CrabboxError {
  const where = `${ctx.method} ${ctx.path.split("?")[0]}`;
  const details = { status, reasons: err.reasons };
  if (err.reasons.some((r) => QUOTA_REASONS.has(r))) {
    return new CrabboxError("provider", "gcp_quota", `GCP quota exceeded: ${err.message}`, {
      hint: "release boxes or raise the quota in the Google Cloud console",
      details,
    });
  }
  if (status === 401 || (status === 403 && !isRateLimited(status, err))) {
    return new CrabboxError(
      "credentials",
      "gcp_auth",
      `GCP rejected the credentials in ${ctx.credentials} (${status}: ${err.message}) on ${where}`,
      {
        hint: status === 403
          ? "the service account needs the Compute Instance Admin and Security Admin roles in this project"
          : `check ${ctx.credentials}`,
        details,
      },
    );
  }
  if (isRateLimited(status, err)) {
    return new CrabboxError(
      "provider",
      "gcp_rate_limited",
      `GCP rate limit exceeded on ${where} and retries ran out (${err.message})`,
      { details },
    );
  }
  if (status === 409) {
    return new CrabboxError("provider", "gcp_already_exists", `GCP: ${err.message}`, { details });
  }
  if (status === 400) {
    return new CrabboxError("provider", "gcp_invalid", `GCP rejected ${where}: ${err.message}`, {
      details,
    });
  }
  return new CrabboxError(
    "provider",
    "gcp_error",
    `GCP ${where} failed: ${status} ${err.message}`,
    {
      details,
    },
  );
}

/**
 * Map the errors of a DONE operation (HTTP 200) to a {@link CrabboxError}.
 * Their messages are capped and never repeat `request` (the body that
 * started the operation, see {@link scrubRequestData}).
 */
export function operationError(
  op: GcpOperation,
  ctx: { what: string; machineType?: string; zone?: string },
  request?: string,
): CrabboxError {
  const fragments = requestFragments([request]);
  const errors = op.errors.map((e) => ({
    ...e,
    message: capMessage(scrubRequestData(e.message, fragments)),
  }));
  op = { ...op, errors };
  const said = capMessage(op.errors.map((e) => `${e.code}: ${e.message}`).join("; "));
  if (op.errors.some((e) => CAPACITY_CODES.has(e.code))) {
    return new CrabboxError(
      "provider",
      "gcp_capacity",
      `GCP cannot ${ctx.what} (${ctx.machineType ?? "machine"} in ${
        ctx.zone ?? "the zone"
      }): ${said}`,
      {
        hint: "try another gcp.zone or gcp.machineType, or raise the quota",
        details: { errors: op.errors },
      },
    );
  }
  return new CrabboxError(
    "provider",
    "gcp_operation_failed",
    `GCP could not ${ctx.what}: ${said}`,
    {
      details: { errors: op.errors },
    },
  );
}
