/**
 * Proxmox VE API (`https://<host>:8006/api2/json`, `Authorization:
 * PVEAPIToken=USER@REALM!TOKENID=SECRET`, form-encoded bodies, `{"data": …}`
 * answers), the pure half: settings, form builders (clone, cloud-init config
 * with the double-URL-encoded `sshkeys`), UPID parsing, the labels-in-
 * description codec, guest-agent address picking and error mapping (a
 * missing VM is HTTP 500 "Configuration file … does not exist": not found).
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import {
  decodeLabels,
  isValidLabelKey,
  isValidLabelValue,
  type Labels,
} from "../../lib/core/labels.ts";
import { apiBaseUrl, configString, isIpv4 } from "../cloud/common.ts";
import { type ApiFailure, restError } from "../cloud/http_api.ts";
import { leaseResourceName } from "../cloud/lease_identity.ts";
import { capMessage } from "../cloud/request_data.ts";
import type { CreateSpec } from "../types.ts";

/** First line of the description that carries crabbox labels. */
export const PROXMOX_LABELS_HEADER = "crabbox labels";
/** Tag every crabbox VM carries. */
export const PROXMOX_TAG = "crabbox";

/** Resolved Proxmox settings (no secrets). */
export interface ProxmoxSettings {
  /** API base (`…/api2/json`) without trailing slash. */
  baseUrl: string;
  /** Node the VMs live on. */
  node: string;
  /** VM id of the cloud-init template to clone. */
  templateId: number;
  /** Target storage of the clone. */
  storage?: string;
  /** Resource pool. */
  pool?: string;
  /** Bridge for `net0`. */
  bridge?: string;
  /** cloud-init user (the SSH user). */
  user: string;
  /** Full clone (default) or linked clone. */
  fullClone: boolean;
  /** PEM of an extra CA certificate to trust (self-signed PVE). */
  caCert?: string;
}

function first(env: EnvReader, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = env(n)?.trim();
    if (v) return v;
  }
  return undefined;
}

const SAFE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * Settings from env (`CRABBOX_PROXMOX_*`) and `proxmox:` in config.yaml.
 * `readFile` reads the CA certificate (`CRABBOX_PROXMOX_CA_CERT`, a PEM
 * path). `CRABBOX_PROXMOX_INSECURE_TLS` is refused: Deno cannot skip TLS
 * verification per client.
 */
export function proxmoxSettings(
  env: EnvReader,
  config: Record<string, unknown>,
  readFile: (path: string) => string = Deno.readTextFileSync,
): ProxmoxSettings {
  const raw = first(env, "CRABBOX_PROXMOX_API_URL") ?? configString(config, "proxmox", "apiUrl");
  if (!raw) {
    throw new CrabboxError("credentials", "proxmox_no_url", "CRABBOX_PROXMOX_API_URL is not set", {
      hint: "export CRABBOX_PROXMOX_API_URL=https://<pve host>:8006",
    });
  }
  if (first(env, "CRABBOX_PROXMOX_INSECURE_TLS")) {
    throw new CrabboxError(
      "usage",
      "proxmox_insecure_tls",
      "CRABBOX_PROXMOX_INSECURE_TLS is not supported: Deno cannot skip TLS verification per connection",
      {
        hint:
          "set CRABBOX_PROXMOX_CA_CERT to the node's CA (/etc/pve/pve-root-ca.pem), or knowingly run " +
          "crabbox with --unsafely-ignore-certificate-errors=<pve host>",
      },
    );
  }
  const base = apiBaseUrl("CRABBOX_PROXMOX_API_URL", raw).href.replace(/\/+$/, "")
    .replace(/\/api2\/json$/, "");
  const node = first(env, "CRABBOX_PROXMOX_NODE") ?? configString(config, "proxmox", "node");
  const tmpl = first(env, "CRABBOX_PROXMOX_TEMPLATE_ID") ??
    (config.templateId === undefined ? undefined : String(config.templateId));
  if (!node || !SAFE.test(node)) {
    throw new CrabboxError(
      "config",
      "proxmox_no_node",
      "CRABBOX_PROXMOX_NODE (the PVE node name) is not set or invalid",
    );
  }
  if (!tmpl || !/^[1-9][0-9]{2,8}$/.test(tmpl)) {
    throw new CrabboxError(
      "config",
      "proxmox_no_template",
      "CRABBOX_PROXMOX_TEMPLATE_ID (VM id of a cloud-init template with qemu-guest-agent) is not set or invalid",
    );
  }
  const opt = (envName: string, key: string) => {
    const v = first(env, envName) ?? configString(config, "proxmox", key);
    if (v !== undefined && !SAFE.test(v)) {
      throw new CrabboxError(
        "config",
        "bad_config_value",
        `${envName} ${JSON.stringify(v)} is invalid`,
      );
    }
    return v;
  };
  const caPath = first(env, "CRABBOX_PROXMOX_CA_CERT") ?? configString(config, "proxmox", "caCert");
  let caCert: string | undefined;
  if (caPath) {
    try {
      caCert = readFile(caPath);
    } catch (e) {
      throw new CrabboxError(
        "config",
        "proxmox_ca_cert",
        `cannot read the CA certificate ${caPath}: ${(e as Error).message}`,
      );
    }
    if (!caCert.includes("-----BEGIN CERTIFICATE-----")) {
      throw new CrabboxError("config", "proxmox_ca_cert", `${caPath} is not a PEM certificate`);
    }
  }
  const full = first(env, "CRABBOX_PROXMOX_FULL_CLONE") ?? "true";
  return {
    baseUrl: `${base}/api2/json`,
    node,
    templateId: Number(tmpl),
    storage: opt("CRABBOX_PROXMOX_STORAGE", "storage"),
    pool: opt("CRABBOX_PROXMOX_POOL", "pool"),
    bridge: opt("CRABBOX_PROXMOX_BRIDGE", "bridge"),
    user: opt("CRABBOX_PROXMOX_USER", "user") ?? "crabbox",
    fullClone: !/^(0|false|no)$/i.test(full),
    caCert,
  };
}

/** The `Authorization` header value; a credentials error when the token is missing or malformed. */
export function proxmoxAuthorization(env: EnvReader): string {
  const id = first(env, "CRABBOX_PROXMOX_TOKEN_ID");
  const secret = first(env, "CRABBOX_PROXMOX_TOKEN_SECRET");
  if (!id || !secret) {
    throw new CrabboxError(
      "credentials",
      "proxmox_no_token",
      "CRABBOX_PROXMOX_TOKEN_ID / CRABBOX_PROXMOX_TOKEN_SECRET are not set",
      { hint: "create an API token (Datacenter → Permissions → API Tokens) and export both" },
    );
  }
  if (!/^[^@\s=!]+@[^@\s=!]+![A-Za-z][A-Za-z0-9_.-]*$/.test(id)) {
    throw new CrabboxError(
      "credentials",
      "proxmox_bad_token_id",
      "CRABBOX_PROXMOX_TOKEN_ID must look like user@realm!tokenid",
    );
  }
  return `PVEAPIToken=${id}=${secret}`;
}

/** A form body. */
export function form(fields: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) q.set(k, String(v));
  return q.toString();
}

/** Clone form: new id, name, full clone, optional storage and pool. */
export function cloneForm(spec: CreateSpec, s: ProxmoxSettings, vmid: number): string {
  return form({
    newid: vmid,
    name: leaseResourceName(spec),
    full: s.fullClone ? 1 : 0,
    storage: s.storage,
    pool: s.pool,
  });
}

/**
 * Labels as the VM description: `crabbox labels` then one `key=value` per line.
 *
 * @example
 * ```ts
 * import { labelsToDescription } from "./api.ts";
 * labelsToDescription({ crabbox: "true" }); // "crabbox labels\ncrabbox=true"
 * ```
 */
export function labelsToDescription(labels: Labels): string {
  return [PROXMOX_LABELS_HEADER, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)].join("\n");
}

/** Labels back from a description; `undefined` unless every line is a valid label and they are a lease. */
export function labelsFromDescription(text: unknown): Labels | undefined {
  if (typeof text !== "string") return undefined;
  const lines = text.replace(/\r\n/g, "\n").replace(/\n+$/, "").split("\n");
  if (lines[0] !== PROXMOX_LABELS_HEADER) return undefined;
  const labels: Labels = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf("=");
    const k = line.slice(0, i);
    const v = line.slice(i + 1);
    if (i < 1 || !isValidLabelKey(k) || !isValidLabelValue(v) || k in labels) return undefined;
    labels[k] = v;
  }
  return decodeLabels(labels) ? labels : undefined;
}

/**
 * The cloud-init config form. `sshkeys` is URL-encoded (spaces as `%20`)
 * before the form encoding, as PVE requires.
 */
export function configForm(spec: CreateSpec, s: ProxmoxSettings): string {
  return form({
    ciuser: s.user,
    sshkeys: encodeURIComponent(spec.sshPublicKey.trim() + "\n"),
    ipconfig0: "ip=dhcp",
    agent: "enabled=1",
    tags: PROXMOX_TAG,
    description: labelsToDescription(spec.labels),
    net0: s.bridge ? `virtio,bridge=${s.bridge}` : undefined,
  });
}

/** The node a UPID belongs to (`UPID:<node>:…`). */
export function upidNode(upid: string): string {
  const m =
    /^UPID:([A-Za-z0-9][A-Za-z0-9_.-]*):[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:[^:]*:[^:]*:[^:]+:$/
      .exec(upid);
  if (!m) {
    throw new CrabboxError(
      "provider",
      "proxmox_bad_response",
      `Proxmox returned a malformed task id`,
    );
  }
  return m[1];
}

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Record<string, unknown>
    : {};
}

/** `data` of an answer. */
export function dataOf(json: unknown): unknown {
  return obj(json).data;
}

/** `nextid` may be a string or a number. */
export function parseNextId(json: unknown): number {
  const d = dataOf(json);
  const n = typeof d === "number"
    ? d
    : typeof d === "string" && /^[0-9]+$/.test(d)
    ? Number(d)
    : NaN;
  if (!Number.isInteger(n) || n < 100) {
    throw new CrabboxError(
      "provider",
      "proxmox_bad_response",
      "Proxmox returned a malformed next VM id",
    );
  }
  return n;
}

/** A task's status. */
export interface ProxmoxTask {
  /** `running` or `stopped`. */
  status: string;
  /** `OK` or the error text once stopped. */
  exitstatus?: string;
}

/** Parse task status. */
export function parseTask(json: unknown): ProxmoxTask {
  const d = obj(dataOf(json));
  if (typeof d.status !== "string") {
    throw new CrabboxError(
      "provider",
      "proxmox_bad_response",
      "Proxmox returned a malformed task status",
    );
  }
  return {
    status: d.status,
    exitstatus: typeof d.exitstatus === "string" ? d.exitstatus : undefined,
  };
}

/** A VM in a node listing. */
export interface ProxmoxVm {
  /** VM id. */
  vmid: number;
  /** Name. */
  name: string;
  /** `running` or `stopped`. */
  status: string;
  /** Template flag. */
  template: boolean;
  /** Tags. */
  tags: string[];
}

/** Parse `GET /nodes/{node}/qemu`. */
export function parseVmList(json: unknown): ProxmoxVm[] {
  const d = dataOf(json);
  if (!Array.isArray(d)) {
    throw new CrabboxError(
      "provider",
      "proxmox_bad_response",
      "Proxmox returned a malformed VM list",
    );
  }
  return d.map(obj).filter((v) => typeof v.vmid === "number" || typeof v.vmid === "string").map((
    v,
  ) => ({
    vmid: Number(v.vmid),
    name: typeof v.name === "string" ? v.name : "",
    status: typeof v.status === "string" ? v.status : "unknown",
    template: v.template === 1 || v.template === "1",
    tags: typeof v.tags === "string" ? v.tags.split(/[;,]/).filter((t) => t !== "") : [],
  }));
}

/**
 * The first usable IPv4 from `agent/network-get-interfaces` (skipping `lo`,
 * `docker*` and `veth*`, like upstream).
 *
 * @example
 * ```ts
 * import { agentIpv4 } from "./api.ts";
 * agentIpv4({ data: { result: [{ name: "eth0", "ip-addresses": [
 *   { "ip-address": "10.0.0.5", "ip-address-type": "ipv4" }] }] } }); // "10.0.0.5"
 * ```
 */
export function agentIpv4(json: unknown): string | undefined {
  const result = obj(dataOf(json)).result;
  if (!Array.isArray(result)) return undefined;
  for (const ifc of result.map(obj)) {
    const name = typeof ifc.name === "string" ? ifc.name : "";
    if (name === "lo" || name.startsWith("docker") || name.startsWith("veth")) continue;
    const addrs = Array.isArray(ifc["ip-addresses"]) ? ifc["ip-addresses"].map(obj) : [];
    for (const a of addrs) {
      const ip = a["ip-address"];
      if (a["ip-address-type"] === "ipv4" && isIpv4(ip)) return ip;
    }
  }
  return undefined;
}

/**
 * Map a failed answer. PVE puts its message in the status line; a missing
 * VM is a 500 "Configuration file … does not exist" (not found, unlike
 * upstream, which only checks 404); the guest agent not running yet is "not
 * ready"; 401 and 403 are credentials errors.
 *
 * @example
 * ```ts
 * import { proxmoxError } from "./api.ts";
 * proxmoxError({ status: 500, where: "GET /nodes/pve/qemu/101/config",
 *   text: `{"data":null,"message":"Configuration file 'nodes/pve/qemu-server/101.conf' does not exist\\n"}` })
 *   .code; // "proxmox_not_found"
 * ```
 */
export function proxmoxError(f: ApiFailure): CrabboxError {
  let body: Record<string, unknown> = {};
  try {
    body = obj(JSON.parse(f.text));
  } catch {
    // not JSON
  }
  const params = Object.entries(obj(body.errors)).map(([k, v]) => `${k}: ${String(v).trim()}`);
  // PVE's message is its reason phrase, which Deno's fetch does not expose (it reports the
  // canonical one), so it comes from the body's `message`.
  const message = typeof body.message === "string" ? body.message.trim() : "";
  const said = capMessage([message, ...params].filter((x) => x).join("; ")) || `HTTP ${f.status}`;
  if (/Configuration file '[^']*' does not exist/i.test(said)) {
    return new CrabboxError("provider", "proxmox_not_found", `Proxmox: ${f.where}: ${said}`, {
      details: { status: f.status },
    });
  }
  if (/QEMU guest agent is not running|guest agent.*not (running|available)/i.test(said)) {
    return new CrabboxError("provider", "proxmox_agent_not_ready", `Proxmox: ${said}`, {
      details: { status: f.status },
    });
  }
  return restError(f, said, {
    provider: "proxmox",
    label: "Proxmox",
    credentials: "CRABBOX_PROXMOX_TOKEN_ID / CRABBOX_PROXMOX_TOKEN_SECRET",
    hint: f.status === 403
      ? "give the token's user VM.Allocate, VM.Clone, VM.Config.*, VM.PowerMgmt, VM.Audit and Datastore.AllocateSpace"
      : "check CRABBOX_PROXMOX_TOKEN_ID (user@realm!tokenid) and CRABBOX_PROXMOX_TOKEN_SECRET",
  });
}
