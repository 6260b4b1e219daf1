/**
 * A fake Google Compute Engine API v1 plus a fake Google OAuth token
 * endpoint, enforcing the documented contract:
 *
 * - token endpoint: form-encoded JWT-bearer grant; the assertion's RS256
 *   signature is verified against the test service account's public key, and
 *   `iss`, `aud` (= the token URL), `scope`, `iat`/`exp` (≤ 1 h) are checked;
 *   errors are `{"error","error_description"}`;
 * - compute: `Authorization: Bearer` with an issued (unexpired) token or the
 *   fixed access token; the project must exist; the error envelope
 *   `{"error":{"code","message","errors":[{message,domain,reason}]}}`;
 * - `instances.insert` body rules: RFC 1035 name, known machine type as a
 *   zonal partial URL, GCP label rules (≤ 64, key `^[a-z][a-z0-9_-]{0,62}$`,
 *   value `^[a-z0-9_-]{0,63}$`), network tags, metadata keys unique,
 *   `ssh-keys` as `user:key`, each value ≤ 256 KiB and ≤ 512 KiB in total,
 *   one boot disk, `diskSizeGb` an int64 (string or number), a known network
 *   and a ONE_TO_ONE_NAT access config; duplicate names are 409
 *   `alreadyExists`; a repeated `requestId` returns the first operation;
 * - Operations that take several polls (PENDING → RUNNING → DONE), capacity
 *   and quota failures reported as an `error` inside a DONE operation (HTTP
 *   200); instance status PROVISIONING → STAGING → RUNNING, natIP once
 *   RUNNING, STOPPING while being deleted;
 * - `aggregated/instances`: the `filter` language subset crabbox uses
 *   (`(labels.k = "v") AND …`, unknown syntax is 400), `items` as a map of
 *   `zones/<z>` with `NO_RESULTS_ON_PAGE` warnings, `maxResults` ≤ 500,
 *   opaque `pageToken`s bound to the filter;
 * - firewalls: name, network, `allowed`, `targetTags`, `sourceRanges`; 409 on
 *   duplicates; global Operations.
 *
 * Not modelled: IAM permissions per method, labelFingerprint/setLabels,
 * `operations.wait` blocking (it answers at once, which the docs allow),
 * regional resources, images and disks as resources, spot scheduling.
 * Uncertain in the docs and therefore lenient: whether `diskSizeGb` must be
 * a string (both accepted), and whether GCP answers 403 or 429 on rate limits
 * (faults can inject either).
 *
 * @module
 */

import {
  type FakeHttp,
  type Fault,
  faultMessage,
  type RecordedRequest,
  recordRequest,
  serveFake,
  takeFault,
} from "./fake_http.ts";

/** An instance in the fake's state. */
export interface FakeGcpInstance {
  /** Name. */
  name: string;
  /** Zone. */
  zone: string;
  /** Numeric id (string, as GCP encodes uint64). */
  id: string;
  /** Labels as stored (encoded). */
  labels: Record<string, string>;
  /** Metadata items. */
  metadata: Record<string, string>;
  /** Network tags. */
  tags: string[];
  /** Machine type name. */
  machineType: string;
  /** External IPv4. */
  natIp: string;
  /** Status reads so far (drives PROVISIONING → STAGING → RUNNING). */
  polls: number;
  /** Set while a delete operation runs. */
  deleting?: boolean;
  /** Creation time. */
  created: string;
}

/** A firewall rule in the fake's state. */
export interface FakeGcpFirewall {
  /** Name. */
  name: string;
  /** Network partial URL. */
  network: string;
  /** Target tags. */
  targetTags: string[];
  /** Source ranges. */
  sourceRanges: string[];
  /** Allowed protocols/ports. */
  allowed: { IPProtocol: string; ports?: string[] }[];
}

/** Options of {@link startFakeGcp}. */
export interface FakeGcpOptions {
  /** The project that exists (default `crabbox-test-1`). */
  project?: string;
  /** Zones that exist (default europe-west2-a/b, us-central1-a). */
  zones?: string[];
  /** Known machine types. */
  machineTypes?: string[];
  /** Known networks. */
  networks?: string[];
  /** Largest page the fake returns, whatever `maxResults` asks (default 500). */
  maxPerPage?: number;
  /** Operation reads before DONE (default 2). */
  operationPolls?: number;
  /** Instance reads before RUNNING (default 2). */
  startPolls?: number;
  /** Chooses the natIP of a new instance (e.g. a local box's address). */
  onCreate?: (inst: FakeGcpInstance) => { natIp?: string } | void;
  /** Machine types whose insert operation ends in ZONE_RESOURCE_POOL_EXHAUSTED. */
  exhausted?: string[];
  /** Instances beyond this count end in a QUOTA_EXCEEDED operation error. */
  instanceQuota?: number;
  /**
   * The insert operation ends DONE with an error whose message repeats the
   * whole request body (a provider that echoes what it got).
   */
  insertOperationEchoes?: boolean;
}

/** A fault: `match` is the path below `/compute/v1` (or `/token`); `code` is the reason. */
export type GcpFault = Fault;

/** A running fake GCP. */
export interface FakeGcp extends AsyncDisposable {
  /** Compute base URL for `CRABBOX_GCP_COMPUTE_URL` (ends in `/compute/v1`). */
  url: string;
  /** Token endpoint (the key file's `token_uri`). */
  tokenUrl: string;
  /** The project id. */
  project: string;
  /** A ready access token (for `GOOGLE_OAUTH_ACCESS_TOKEN`). */
  accessToken: string;
  /** The service-account key file JSON (for `GOOGLE_APPLICATION_CREDENTIALS`). */
  keyFile: string;
  /** Same account, but a private key the fake does not know (signature fails). */
  wrongKeyFile: string;
  /** Every request, secrets redacted. */
  requests: RecordedRequest[];
  /** Tokens issued by the token endpoint. */
  issuedTokens: number;
  /** Instances by `<zone>/<name>`. */
  instances: Map<string, FakeGcpInstance>;
  /** Firewall rules by name. */
  firewalls: Map<string, FakeGcpFirewall>;
  /** Machine types whose inserts end in ZONE_RESOURCE_POOL_EXHAUSTED (mutable). */
  exhausted: Set<string>;
  /** Queue a fault. */
  inject(fault: GcpFault): void;
  /** Expire every issued token (the next compute call gets 401). */
  expireTokens(): void;
  /** Stop the server. */
  close(): Promise<void>;
}

const RFC1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const CLIENT_EMAIL = "crabbox@crabbox-test-1.iam.gserviceaccount.com";
const INSTANCE_FIELDS = new Set([
  "name",
  "machineType",
  "labels",
  "tags",
  "metadata",
  "disks",
  "networkInterfaces",
  "serviceAccounts",
  "scheduling",
  "description",
]);

class GcpApiError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) {
    super(message);
  }
  toResponse(headers: Record<string, string> = {}): Response {
    return json(this.status, {
      error: {
        code: this.status,
        message: this.message,
        errors: [{ message: this.message, domain: "global", reason: this.reason }],
      },
    }, headers);
  }
}

const invalid = (message: string) => new GcpApiError(400, "invalid", message);
const notFound = (what: string) =>
  new GcpApiError(404, "notFound", `The resource '${what}' was not found`);

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=UTF-8", ...headers },
  });
}

function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function unb64url(s: string): Uint8Array<ArrayBuffer> {
  const b = s.replaceAll("-", "+").replaceAll("_", "/");
  return Uint8Array.from(atob(b + "=".repeat((4 - b.length % 4) % 4)), (c) => c.charCodeAt(0));
}

async function newRsaKey(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
  const b64 = btoa(String.fromCharCode(...der)).match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

let keys: Promise<{ good: CryptoKeyPair; wrong: CryptoKeyPair }> | undefined;

/**
 * Parse the subset of GCP's list filter language crabbox uses:
 * `(labels.k = "v")` terms joined by `AND`. Anything else throws.
 */
export function parseGcpFilter(filter: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const term of filter.split(/\s+AND\s+/)) {
    const m = /^\(?\s*labels\.([a-z][a-z0-9_-]{0,62})\s*=\s*"?([a-z0-9_-]{0,63})"?\s*\)?$/.exec(
      term.trim(),
    );
    if (!m) {
      throw invalid(
        `Invalid value for field 'filter': '${filter}'. Invalid list filter expression.`,
      );
    }
    out[m[1]] = m[2];
  }
  return out;
}

/**
 * Start a fake GCP (compute + token endpoint) on 127.0.0.1. Generating the
 * test RSA keys takes a moment the first time.
 *
 * @example
 * ```ts
 * import { startFakeGcp } from "./gcp.ts";
 * await using fake = await startFakeGcp({ maxPerPage: 2 });
 * const env = { GOOGLE_OAUTH_ACCESS_TOKEN: fake.accessToken, CRABBOX_GCP_COMPUTE_URL: fake.url,
 *   CRABBOX_GCP_PROJECT: fake.project };
 * ```
 */
export async function startFakeGcp(options: FakeGcpOptions = {}): Promise<FakeGcp> {
  keys ??= Promise.all([newRsaKey(), newRsaKey()]).then(([good, wrong]) => ({ good, wrong }));
  const { good, wrong } = await keys;
  const project = options.project ?? "crabbox-test-1";
  const zones = new Set(options.zones ?? ["europe-west2-a", "europe-west2-b", "us-central1-a"]);
  const machineTypes = new Set(
    options.machineTypes ?? ["e2-standard-2", "e2-small", "n2-standard-4"],
  );
  const networks = new Set(options.networks ?? ["default"]);
  const maxPerPage = options.maxPerPage ?? 500;
  const opPolls = options.operationPolls ?? 2;
  const startPolls = options.startPolls ?? 2;
  const accessToken = `ya29.fixed-${crypto.randomUUID()}`;
  const tokens = new Map<string, number>(); // token → expiry ms
  const instances = new Map<string, FakeGcpInstance>();
  const firewalls = new Map<string, FakeGcpFirewall>();
  const requests: RecordedRequest[] = [];
  const faults: GcpFault[] = [];
  const requestIds = new Map<string, unknown>();
  const exhausted = new Set(options.exhausted ?? []);
  interface Op {
    name: string;
    zone?: string;
    type: string;
    target: string;
    polls: number;
    error?: { code: string; message: string };
    onDone?: () => void;
    done?: boolean;
  }
  const ops = new Map<string, Op>();
  let seq = 1;
  let ipCounter = 10;
  let issued = 0;
  let base = "";

  const opJson = (op: Op) => {
    const status = op.done ? "DONE" : op.polls === 0 ? "PENDING" : "RUNNING";
    return {
      kind: "compute#operation",
      id: String(1000 + seq),
      name: op.name,
      operationType: op.type,
      targetLink: `${base}/projects/${project}/${op.target}`,
      status,
      progress: op.done ? 100 : 0,
      ...(op.zone ? { zone: `${base}/projects/${project}/zones/${op.zone}` } : {}),
      selfLink: `${base}/projects/${project}/${
        op.zone ? `zones/${op.zone}` : "global"
      }/operations/${op.name}`,
      ...(op.done && op.error
        ? {
          error: { errors: [op.error] },
          httpErrorStatusCode: 403,
          httpErrorMessage: "FORBIDDEN",
        }
        : {}),
    };
  };
  const newOp = (o: Omit<Op, "name" | "polls">) => {
    const op: Op = { ...o, name: `operation-${Date.now()}-${seq++}`, polls: 0 };
    ops.set(op.name, op);
    return op;
  };
  const observeOp = (op: Op) => {
    if (op.done) return;
    op.polls++;
    if (op.polls >= opPolls) {
      op.done = true;
      op.onDone?.();
    }
  };

  const instanceJson = (i: FakeGcpInstance) => {
    const status = i.deleting
      ? "STOPPING"
      : i.polls < 1
      ? "PROVISIONING"
      : i.polls < startPolls
      ? "STAGING"
      : "RUNNING";
    const ac: Record<string, unknown> = {
      kind: "compute#accessConfig",
      type: "ONE_TO_ONE_NAT",
      name: "External NAT",
    };
    if (status === "RUNNING") ac.natIP = i.natIp;
    return {
      kind: "compute#instance",
      id: i.id,
      name: i.name,
      zone: `${base}/projects/${project}/zones/${i.zone}`,
      machineType: `${base}/projects/${project}/zones/${i.zone}/machineTypes/${i.machineType}`,
      status,
      creationTimestamp: i.created,
      labels: i.labels,
      labelFingerprint: "42WmSpB8rSM=",
      tags: { items: i.tags, fingerprint: "abc=" },
      metadata: { items: Object.entries(i.metadata).map(([key, value]) => ({ key, value })) },
      networkInterfaces: [{
        network: `${base}/projects/${project}/global/networks/default`,
        networkIP: `10.154.0.${ipCounter % 250}`,
        accessConfigs: [ac],
      }],
      selfLink: `${base}/projects/${project}/zones/${i.zone}/instances/${i.name}`,
    };
  };

  function readJson(req: Request, text: string): Record<string, unknown> {
    if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
      throw new GcpApiError(
        400,
        "parseError",
        "This API does not support parsing form-encoded input.",
      );
    }
    try {
      const v = JSON.parse(text);
      if (v && typeof v === "object" && !Array.isArray(v)) return v;
    } catch { /* below */ }
    throw new GcpApiError(400, "parseError", "Parse Error");
  }

  function checkLabels(labels: unknown) {
    if (labels === undefined) return {};
    if (!labels || typeof labels !== "object" || Array.isArray(labels)) {
      throw invalid("Invalid value for field 'resource.labels'");
    }
    const entries = Object.entries(labels);
    if (entries.length > 64) {
      throw invalid("Invalid value for field 'resource.labels': too many labels (max 64)");
    }
    for (const [k, v] of entries) {
      if (!LABEL_KEY.test(k)) {
        throw invalid(
          `Invalid value for field 'resource.labels': label key '${k}' violates format constraints`,
        );
      }
      if (typeof v !== "string" || !LABEL_VALUE.test(v)) {
        throw invalid(
          `Invalid value for field 'resource.labels': label value of '${k}' violates format constraints`,
        );
      }
    }
    return labels as Record<string, string>;
  }

  function insertInstance(zone: string, body: Record<string, unknown>): Response {
    for (const k of Object.keys(body)) {
      if (!INSTANCE_FIELDS.has(k)) {
        throw invalid(`Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
      }
    }
    if (typeof body.name !== "string" || !RFC1035.test(body.name)) {
      throw invalid(
        `Invalid value for field 'resource.name': '${body.name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'`,
      );
    }
    const mt = /^(?:.*\/)?zones\/([^/]+)\/machineTypes\/([^/]+)$/.exec(
      String(body.machineType ?? ""),
    );
    if (!mt || mt[1] !== zone) {
      throw invalid(`Invalid value for field 'resource.machineType': '${body.machineType}'.`);
    }
    if (!machineTypes.has(mt[2])) {
      throw notFound(`projects/${project}/zones/${zone}/machineTypes/${mt[2]}`);
    }
    const labels = checkLabels(body.labels);
    const tags = (body.tags as { items?: unknown })?.items ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string" || !RFC1035.test(t))) {
      throw invalid("Invalid value for field 'resource.tags.items'");
    }
    const metadata: Record<string, string> = {};
    const items = (body.metadata as { items?: unknown })?.items ?? [];
    if (!Array.isArray(items)) throw invalid("Invalid value for field 'resource.metadata.items'");
    let total = 0;
    for (const it of items) {
      const { key, value } = it as { key?: unknown; value?: unknown };
      if (
        typeof key !== "string" || !/^[a-zA-Z0-9-_]{1,128}$/.test(key) || typeof value !== "string"
      ) {
        throw invalid("Invalid value for field 'resource.metadata.items'");
      }
      if (key in metadata) throw invalid(`Duplicate metadata key '${key}'`);
      const size = new TextEncoder().encode(value).length;
      if (size > 256 * 1024) throw invalid(`Metadata value for key '${key}' exceeds 256 KB`);
      total += size + key.length;
      metadata[key] = value;
    }
    if (total > 512 * 1024) throw invalid("Metadata total size exceeds 512 KB");
    if (metadata["ssh-keys"] !== undefined) {
      for (const line of metadata["ssh-keys"].split("\n").filter((l) => l.trim())) {
        if (
          !/^[a-z_][a-z0-9_.-]{0,31}:(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/]+={0,2}( .*)?$/
            .test(line)
        ) {
          throw invalid(
            "Invalid value for field 'resource.metadata.items.ssh-keys': expected USER:KEY",
          );
        }
      }
    }
    const disks = body.disks;
    if (!Array.isArray(disks) || disks.filter((d) => (d as { boot?: boolean }).boot).length !== 1) {
      throw invalid("Invalid value for field 'resource.disks': exactly one boot disk is required");
    }
    const init = (disks.find((d) => (d as { boot?: boolean }).boot) as {
      initializeParams?: Record<string, unknown>;
    })
      .initializeParams ?? {};
    if (typeof init.sourceImage !== "string" || !init.sourceImage.includes("/images/")) {
      throw invalid("Invalid value for field 'resource.disks[0].initializeParams.sourceImage'");
    }
    // [uncertain] int64 travels as a JSON string; GCP's parser also takes a number.
    if (init.diskSizeGb !== undefined && !/^[1-9][0-9]*$/.test(String(init.diskSizeGb))) {
      throw invalid("Invalid value for field 'resource.disks[0].initializeParams.diskSizeGb'");
    }
    const nics = body.networkInterfaces;
    if (!Array.isArray(nics) || nics.length < 1) {
      throw invalid("Invalid value for field 'resource.networkInterfaces'");
    }
    const nic = nics[0] as { network?: string; accessConfigs?: { type?: string }[] };
    const net = /^(?:.*\/)?global\/networks\/([^/]+)$/.exec(
      nic.network ?? "global/networks/default",
    );
    if (!net || !networks.has(net[1])) {
      throw notFound(`projects/${project}/global/networks/${net?.[1] ?? nic.network}`);
    }
    if (
      nic.accessConfigs !== undefined &&
      (!Array.isArray(nic.accessConfigs) ||
        nic.accessConfigs.some((a) => a.type !== "ONE_TO_ONE_NAT"))
    ) {
      throw invalid(
        "Invalid value for field 'resource.networkInterfaces[0].accessConfigs[0].type'",
      );
    }
    const key = `${zone}/${body.name}`;
    if (instances.has(key)) {
      throw new GcpApiError(
        409,
        "alreadyExists",
        `The resource 'projects/${project}/zones/${zone}/instances/${body.name}' already exists`,
      );
    }
    const target = `zones/${zone}/instances/${body.name}`;
    if (options.insertOperationEchoes) {
      const op = newOp({
        zone,
        type: "insert",
        target,
        error: {
          code: "INVALID_FIELD_VALUE",
          message: `invalid instance: ${JSON.stringify(body)}`,
        },
      });
      return json(200, opJson(op));
    }
    if (exhausted.has(mt[2])) {
      const op = newOp({
        zone,
        type: "insert",
        target,
        error: {
          code: "ZONE_RESOURCE_POOL_EXHAUSTED",
          message:
            `The zone 'projects/${project}/zones/${zone}' does not have enough resources available to fulfill the request. Try a different zone, or try again later.`,
        },
      });
      return json(200, opJson(op));
    }
    if (options.instanceQuota !== undefined && instances.size >= options.instanceQuota) {
      const op = newOp({
        zone,
        type: "insert",
        target,
        error: {
          code: "QUOTA_EXCEEDED",
          message: `Quota 'INSTANCES' exceeded.  Limit: ${options.instanceQuota}.0 in region ${
            zone.slice(0, -2)
          }.`,
        },
      });
      return json(200, opJson(op));
    }
    const inst: FakeGcpInstance = {
      name: body.name,
      zone,
      id: String(4_000_000_000_000 + seq),
      labels: { ...labels },
      metadata,
      tags: tags as string[],
      machineType: mt[2],
      natIp: `203.0.113.${ipCounter++ % 250}`,
      polls: 0,
      created: new Date().toISOString(),
    };
    const chosen = options.onCreate?.(inst);
    if (chosen?.natIp) inst.natIp = chosen.natIp;
    instances.set(key, inst);
    return json(200, opJson(newOp({ zone, type: "insert", target })));
  }

  function insertFirewall(body: Record<string, unknown>): Response {
    if (typeof body.name !== "string" || !RFC1035.test(body.name)) {
      throw invalid("Invalid value for field 'resource.name'");
    }
    const net = /^(?:.*\/)?global\/networks\/([^/]+)$/.exec(
      String(body.network ?? "global/networks/default"),
    );
    if (!net || !networks.has(net[1])) {
      throw notFound(`projects/${project}/global/networks/${body.network}`);
    }
    const allowed = body.allowed;
    if (
      !Array.isArray(allowed) || allowed.length === 0 ||
      allowed.some((a) =>
        typeof a?.IPProtocol !== "string" ||
        (a.ports !== undefined && (!Array.isArray(a.ports) || a.ports.some((p: unknown) =>
          typeof p !== "string" || !/^\d{1,5}(-\d{1,5})?$/.test(p)
        )))
      )
    ) throw invalid("Invalid value for field 'resource.allowed'");
    const targetTags = body.targetTags ?? [];
    if (
      !Array.isArray(targetTags) ||
      targetTags.some((t) => typeof t !== "string" || !RFC1035.test(t))
    ) {
      throw invalid("Invalid value for field 'resource.targetTags'");
    }
    const ranges = body.sourceRanges ?? [];
    if (
      !Array.isArray(ranges) ||
      ranges.some((r) => typeof r !== "string" || !/^(\d{1,3}\.){3}\d{1,3}(\/\d{1,2})?$/.test(r))
    ) {
      throw invalid("Invalid value for field 'resource.sourceRanges'");
    }
    if (firewalls.has(body.name)) {
      throw new GcpApiError(
        409,
        "alreadyExists",
        `The resource 'projects/${project}/global/firewalls/${body.name}' already exists`,
      );
    }
    firewalls.set(body.name, {
      name: body.name,
      network: `global/networks/${net[1]}`,
      targetTags: targetTags as string[],
      sourceRanges: ranges as string[],
      allowed: allowed as FakeGcpFirewall["allowed"],
    });
    return json(200, opJson(newOp({ type: "insert", target: `global/firewalls/${body.name}` })));
  }

  function aggregated(query: URLSearchParams): Response {
    const filter = query.get("filter") ?? "";
    const want = filter ? parseGcpFilter(filter) : {};
    const max = query.get("maxResults") === null ? 500 : Number(query.get("maxResults"));
    if (!Number.isInteger(max) || max < 0 || max > 500) {
      throw invalid("Invalid value for field 'maxResults': must be between 0 and 500");
    }
    const size = Math.min(max === 0 ? 500 : max, maxPerPage);
    let offset = 0;
    const token = query.get("pageToken");
    if (token) {
      let parsed: { o?: unknown; f?: unknown };
      try {
        parsed = JSON.parse(new TextDecoder().decode(unb64url(token)));
      } catch {
        throw invalid("Invalid value for field 'pageToken'");
      }
      if (parsed.f !== filter || typeof parsed.o !== "number") {
        throw invalid(
          "Invalid value for field 'pageToken': the filter must match the first request",
        );
      }
      offset = parsed.o;
    }
    const matching = [...instances.values()]
      .filter((i) => Object.entries(want).every(([k, v]) => i.labels[k] === v))
      .sort((a, b) => a.id.localeCompare(b.id));
    const page = matching.slice(offset, offset + size);
    const items: Record<string, unknown> = {};
    for (const z of [...zones].sort()) {
      const here = page.filter((i) => i.zone === z);
      items[`zones/${z}`] = here.length > 0
        ? {
          instances: here.map((i) => {
            i.polls++;
            return instanceJson(i);
          }),
        }
        : {
          warning: {
            code: "NO_RESULTS_ON_PAGE",
            message: "There are no results for scope 'zones/" + z + "' on this page.",
            data: [{ key: "scope", value: `zones/${z}` }],
          },
        };
    }
    const next = offset + size < matching.length
      ? b64url(new TextEncoder().encode(JSON.stringify({ o: offset + size, f: filter })))
      : undefined;
    return json(200, {
      kind: "compute#instanceAggregatedList",
      id: `projects/${project}/aggregated/instances`,
      items,
      ...(next ? { nextPageToken: next } : {}),
      selfLink: `${base}/projects/${project}/aggregated/instances`,
    });
  }

  async function tokenEndpoint(req: Request, text: string): Promise<Response> {
    const fail = (error: string, description: string) =>
      json(400, { error, error_description: description });
    if (req.method !== "POST") {
      return json(405, { error: "invalid_request", error_description: "POST only" });
    }
    if (!(req.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")) {
      return fail("invalid_request", "Invalid content type");
    }
    const form = new URLSearchParams(text);
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      return fail("unsupported_grant_type", "Invalid grant_type");
    }
    const parts = (form.get("assertion") ?? "").split(".");
    if (parts.length !== 3) {
      return fail(
        "invalid_grant",
        "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
      );
    }
    let header: Record<string, unknown>, claims: Record<string, unknown>;
    try {
      header = JSON.parse(new TextDecoder().decode(unb64url(parts[0])));
      claims = JSON.parse(new TextDecoder().decode(unb64url(parts[1])));
    } catch {
      return fail("invalid_grant", "Invalid JWT: malformed");
    }
    if (header.alg !== "RS256") return fail("invalid_grant", "Invalid JWT: alg must be RS256");
    const ok = await crypto.subtle.verify(
      "RSASSA-PKCS1-v1_5",
      good.publicKey,
      unb64url(parts[2]),
      new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
    );
    if (!ok) return fail("invalid_grant", "Invalid JWT Signature.");
    const now = Math.floor(Date.now() / 1000);
    if (claims.iss !== CLIENT_EMAIL) return fail("invalid_grant", "Invalid JWT: unknown issuer");
    if (claims.aud !== `${base}/token`) {
      return fail("invalid_grant", "Invalid JWT: aud must be the token endpoint");
    }
    if (
      typeof claims.scope !== "string" ||
      !claims.scope.split(" ").includes("https://www.googleapis.com/auth/cloud-platform")
    ) {
      return fail("invalid_scope", "Invalid OAuth scope or ID token audience provided.");
    }
    const iat = Number(claims.iat), exp = Number(claims.exp);
    if (!(iat <= now + 60 && exp > now && exp - iat <= 3600)) {
      return fail(
        "invalid_grant",
        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
      );
    }
    const token = `ya29.issued-${crypto.randomUUID()}`;
    tokens.set(token, Date.now() + 3600_000);
    issued++;
    fake.issuedTokens = issued;
    return json(200, { access_token: token, expires_in: 3599, token_type: "Bearer" });
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const text = req.method === "GET" || req.method === "DELETE" ? "" : await req.text();
    const { rec, done } = recordRequest(requests, req, ["authorization"]);
    if (url.pathname === "/token") {
      rec.body = "[redacted form]";
      const fault = takeFault(faults, req.method, "/token");
      if (fault) {
        return done(
          json(
            fault.status,
            { error: fault.code, error_description: fault.message ?? fault.code },
            fault.headers,
          ),
        );
      }
      return done(await tokenEndpoint(req, text));
    }
    try {
      if (!url.pathname.startsWith("/compute/v1/")) throw notFound(url.pathname);
      const path = url.pathname.slice("/compute/v1".length);
      const auth = /^Bearer (\S+)$/.exec(req.headers.get("authorization") ?? "");
      const exp = auth ? (auth[1] === accessToken ? Infinity : tokens.get(auth[1])) : undefined;
      if (!exp || exp < Date.now()) {
        return done(json(401, {
          error: {
            code: 401,
            message:
              "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            errors: [{
              message: "Invalid Credentials",
              domain: "global",
              reason: "authError",
              location: "Authorization",
              locationType: "header",
            }],
            status: "UNAUTHENTICATED",
          },
        }, { "www-authenticate": 'Bearer realm="https://accounts.google.com/"' }));
      }
      const fault = takeFault(faults, req.method, path);
      if (fault) {
        throw Object.assign(
          new GcpApiError(fault.status, fault.code, faultMessage(fault, text)),
          { headers: fault.headers },
        );
      }
      const m = /^\/projects\/([^/]+)(\/.*)$/.exec(path);
      if (!m) throw notFound(path);
      if (m[1] !== project) throw notFound(`projects/${m[1]}`);
      const rest = m[2];
      if (text !== "") rec.body = JSON.parse(text);
      let r: RegExpExecArray | null;
      const zoneOk = (z: string) => {
        if (!zones.has(z)) throw notFound(`projects/${project}/zones/${z}`);
      };
      // Idempotent writes: the same requestId answers the first operation again.
      const rid = url.searchParams.get("requestId");
      if (rid !== null && req.method !== "GET") {
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(rid)) {
          throw invalid("Invalid value for field 'requestId': must be a UUID");
        }
        const first = requestIds.get(rid);
        if (first) return done(json(200, opJson(ops.get(first as string)!)));
      }
      const remember = (res: Response, opName: string) => {
        if (rid) requestIds.set(rid, opName);
        return res;
      };
      if (req.method === "GET" && rest === "/aggregated/instances") {
        return done(aggregated(url.searchParams));
      }
      if ((r = /^\/zones\/([^/]+)\/instances$/.exec(rest)) && req.method === "POST") {
        zoneOk(r[1]);
        const res = insertInstance(r[1], readJson(req, text));
        const body = await res.clone().json();
        return done(remember(res, body.name));
      }
      if ((r = /^\/zones\/([^/]+)\/instances\/([^/]+)$/.exec(rest))) {
        zoneOk(r[1]);
        const key = `${r[1]}/${r[2]}`;
        const inst = instances.get(key);
        if (!inst) throw notFound(`projects/${project}/zones/${r[1]}/instances/${r[2]}`);
        if (req.method === "GET") {
          inst.polls++;
          return done(json(200, instanceJson(inst)));
        }
        if (req.method === "DELETE") {
          if (inst.deleting) {
            throw new GcpApiError(400, "resourceNotReady", `The resource '${key}' is not ready`);
          }
          inst.deleting = true;
          const op = newOp({
            zone: r[1],
            type: "delete",
            target: `zones/${key.replace("/", "/instances/")}`,
            onDone: () => instances.delete(key),
          });
          return done(remember(json(200, opJson(op)), op.name));
        }
      }
      if ((r = /^\/(zones\/([^/]+)|global)\/operations\/([^/]+?)(\/wait)?$/.exec(rest))) {
        const op = ops.get(r[3]);
        if (!op || (op.zone ?? "global") !== (r[2] ?? "global")) {
          throw notFound(`projects/${project}/${r[1]}/operations/${r[3]}`);
        }
        if ((req.method === "GET" && !r[4]) || (req.method === "POST" && r[4])) {
          observeOp(op);
          return done(json(200, opJson(op)));
        }
      }
      if (rest === "/global/firewalls" && req.method === "POST") {
        const res = insertFirewall(readJson(req, text));
        return done(remember(res, (await res.clone().json()).name));
      }
      if ((r = /^\/global\/firewalls\/([^/]+)$/.exec(rest))) {
        const fw = firewalls.get(r[1]);
        if (!fw) throw notFound(`projects/${project}/global/firewalls/${r[1]}`);
        if (req.method === "GET") return done(json(200, { kind: "compute#firewall", ...fw }));
        if (req.method === "DELETE") {
          const name = r[1];
          const op = newOp({
            type: "delete",
            target: `global/firewalls/${name}`,
            onDone: () => firewalls.delete(name),
          });
          return done(remember(json(200, opJson(op)), op.name));
        }
      }
      throw notFound(`${req.method} ${path}`);
    } catch (e) {
      if (e instanceof GcpApiError) {
        return done(
          e.toResponse((e as unknown as { headers?: Record<string, string> }).headers ?? {}),
        );
      }
      if (e instanceof SyntaxError) {
        return done(new GcpApiError(400, "parseError", "Parse Error").toResponse());
      }
      throw e;
    }
  }

  const http: FakeHttp = serveFake(handle);
  base = http.url;
  const keyJson = async (pair: CryptoKeyPair) =>
    JSON.stringify({
      type: "service_account",
      project_id: project,
      private_key_id: "0123456789abcdef",
      private_key: await pkcs8Pem(pair.privateKey),
      client_email: CLIENT_EMAIL,
      client_id: "123456789",
      token_uri: `${base}/token`,
    });
  const fake: FakeGcp = {
    url: `${base}/compute/v1`,
    tokenUrl: `${base}/token`,
    project,
    accessToken,
    keyFile: await keyJson(good),
    wrongKeyFile: await keyJson(wrong),
    requests,
    issuedTokens: 0,
    instances,
    firewalls,
    exhausted,
    inject: (f) => faults.push(f),
    expireTokens: () => {
      for (const k of tokens.keys()) tokens.set(k, 0);
    },
    close: () => http.close(),
    [Symbol.asyncDispose]: () => http.close(),
  };
  return fake;
}
