/**
 * A fake Azure (Microsoft Entra token endpoint + Azure Resource Manager for
 * resource groups, NSGs, VNets, public IPs, NICs, VMs and managed disks),
 * enforcing the documented contract:
 *
 * - token endpoint `/<tenant>/oauth2/v2.0/token`: form-encoded
 *   `client_credentials` grant, the tenant, client id and secret, and the
 *   scope `https://management.azure.com/.default`; errors are
 *   `{"error","error_description","error_codes":[AADSTS…]}`;
 * - ARM: `Authorization: Bearer` with an issued, unexpired token (401
 *   `InvalidAuthenticationToken`/`ExpiredAuthenticationToken`), the
 *   subscription (404 `SubscriptionNotFound`), `api-version` on every URL
 *   (400 `MissingApiVersionParameter`) and one the resource type supports
 *   (400 `InvalidApiVersionParameter`), `{"error":{"code","message"}}`;
 * - resources need their resource group (404 `ResourceGroupNotFound`) and
 *   the resources they reference (NSG, subnet, public IP, NIC); tag rules
 *   (≤ 50, name ≤ 512 without `<>%&\?/`, value ≤ 256); VM rules: known size,
 *   image reference, admin user not root/admin, the SSH key path
 *   `/home/<admin>/.ssh/authorized_keys`, password login off without a
 *   password, base64 `customData` ≤ 64 KiB decoded, a NIC not used by
 *   another VM;
 * - PUTs answer 201 with `Azure-AsyncOperation` + `Retry-After`; DELETEs
 *   answer 202 with `Location` + `Retry-After` (202 with an empty body while
 *   running, then 200), or 204 when the resource does not exist; operations
 *   take several polls; a failed allocation ends `Failed` with Azure's
 *   `code`/`message`;
 * - delete ordering: a NIC attached to a VM is `NicInUse`, and stays
 *   `NicReservedForAnotherVm` for some attempts after its VM is gone; a
 *   public IP on a NIC, an NSG or VNet still in use, a disk attached to a VM
 *   are refused;
 * - VM lists paginate with `nextLink` (which carries `api-version` and a
 *   `$skiptoken`); 429 faults carry `Retry-After` and the
 *   `x-ms-ratelimit-remaining-*` headers.
 *
 * Not modelled: RBAC per action, the resources API tag filter, instance
 * view/power state, zones, spot, ephemeral disks, tag case-folding on reads,
 * NSG rule semantics (rules are stored, not evaluated). Uncertain in the
 * docs and lenient here: whether a VM PUT also returns `Location` (only
 * `Azure-AsyncOperation` is sent), and the exact NIC reservation time.
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

/** One ARM resource in the fake. */
export interface FakeArmResource {
  /** Kind. */
  kind: "nsg" | "vnet" | "pip" | "nic" | "vm" | "disk";
  /** Name. */
  name: string;
  /** Tags. */
  tags: Record<string, string>;
  /** The PUT body's properties (and whatever the fake adds). */
  properties: Record<string, unknown>;
  /** Set while a delete operation runs. */
  deleting?: boolean;
  /** NIC only: delete attempts that still answer NicReservedForAnotherVm. */
  reservedLeft?: number;
  /** VM only: decoded customData. */
  customData?: string;
}

/** Options of {@link startFakeAzure}. */
export interface FakeAzureOptions {
  /** Largest page of a list (default 50). */
  maxPerPage?: number;
  /** Polls an operation takes (default 2). */
  operationPolls?: number;
  /** `Retry-After` seconds the fake suggests (default 1). */
  retryAfter?: number;
  /** Delete attempts a NIC answers NicReservedForAnotherVm after its VM went (default 1). */
  nicReservedAttempts?: number;
  /** Known VM sizes. */
  vmSizes?: string[];
  /** Sizes whose VM operation ends Failed with AllocationFailed. */
  unavailable?: string[];
  /**
   * The VM operation ends Failed with an error whose message repeats the
   * whole PUT body (a provider that echoes what it got).
   */
  vmOperationEchoes?: boolean;
  /** VMs beyond this count are refused with 409 OperationNotAllowed (quota). */
  vmQuota?: number;
  /**
   * Refuse Azure's reserved admin names (root, admin, …) as Azure does
   * (default true). Only the e2e turns it off: a `local` box has only root.
   */
  reservedAdminNames?: boolean;
  /** Chooses a new public IP's address (e.g. a local box's). */
  onCreate?: (vm: string) => { ipAddress?: string } | void;
}

/** A fault; `match` is tested against the path below `/subscriptions/<sub>` (or `/token`). */
export type AzureFault = Fault;

/** A running fake Azure. */
export interface FakeAzure extends AsyncDisposable {
  /** ARM base URL (`CRABBOX_AZURE_ARM_URL`). */
  armUrl: string;
  /** Login base URL (`CRABBOX_AZURE_LOGIN_URL`). */
  loginUrl: string;
  /** Env that authenticates against this fake. */
  env: Record<string, string>;
  /** Every request, secrets redacted. */
  requests: RecordedRequest[];
  /** Resource groups by name. */
  groups: Map<string, { location: string; tags: Record<string, string> }>;
  /** Resources by `<kind>/<name>` (all groups). */
  resources: Map<string, FakeArmResource>;
  /** Tokens issued. */
  issuedTokens: number;
  /** Queue a fault. */
  inject(fault: AzureFault): void;
  /** Expire every issued token. */
  expireTokens(): void;
  /** Stop the server. */
  close(): Promise<void>;
}

const TENANT = "11111111-2222-3333-4444-555555555555";
const SUBSCRIPTION = "00000000-1111-2222-3333-444444444444";
const CLIENT_ID = "66666666-7777-8888-9999-000000000000";
const SECRET = "fake-azure-client-secret-0123456789";
const TYPES: Record<string, FakeArmResource["kind"]> = {
  "Microsoft.Network/networkSecurityGroups": "nsg",
  "Microsoft.Network/virtualNetworks": "vnet",
  "Microsoft.Network/publicIPAddresses": "pip",
  "Microsoft.Network/networkInterfaces": "nic",
  "Microsoft.Compute/virtualMachines": "vm",
  "Microsoft.Compute/disks": "disk",
};
const VERSIONS: Record<string, string[]> = {
  resources: ["2021-04-01", "2022-09-01"],
  "Microsoft.Network": ["2023-09-01", "2024-05-01"],
  "Microsoft.Compute/virtualMachines": ["2024-03-01", "2024-07-01"],
  "Microsoft.Compute/disks": ["2023-10-02", "2024-03-02"],
};

/** Admin user names Azure refuses (a part of its documented list). */
const RESERVED_ADMINS = ["root", "admin", "administrator", "user", "guest", "test", "adm", "sys"];

class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
  toResponse(): Response {
    return json(this.status, { error: { code: this.code, message: this.message } }, this.headers);
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

const bad = (message: string, code = "InvalidParameter") => new ArmError(400, code, message);

function checkTags(tags: unknown): Record<string, string> {
  if (tags === undefined) return {};
  if (!tags || typeof tags !== "object" || Array.isArray(tags)) {
    throw bad("tags must be an object", "InvalidTagFormat");
  }
  const entries = Object.entries(tags);
  if (entries.length > 50) {
    throw bad("The number of tags exceeds the limit of 50.", "InvalidTagCount");
  }
  for (const [k, v] of entries) {
    if (k.length > 512 || /[<>%&\\?/]/.test(k) || k === "") {
      throw bad(
        `The tag name '${k}' has invalid characters or length.`,
        "InvalidTagNameCharacters",
      );
    }
    if (typeof v !== "string" || v.length > 256) {
      throw bad(`The tag value of '${k}' is too long.`, "InvalidTagValueLength");
    }
  }
  return tags as Record<string, string>;
}

/**
 * Start a fake Azure on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { startFakeAzure } from "./azure.ts";
 * await using fake = startFakeAzure({ maxPerPage: 2 });
 * // fake.env holds AZURE_* and CRABBOX_AZURE_* for a provider
 * ```
 */
export function startFakeAzure(options: FakeAzureOptions = {}): FakeAzure {
  const maxPerPage = options.maxPerPage ?? 50;
  const opPolls = options.operationPolls ?? 2;
  const retryAfter = String(options.retryAfter ?? 1);
  const vmSizes = new Set(
    options.vmSizes ?? ["Standard_B2s", "Standard_D2s_v5", "Standard_D4ads_v6"],
  );
  const tokens = new Map<string, number>();
  const groups = new Map<string, { location: string; tags: Record<string, string> }>();
  const resources = new Map<string, FakeArmResource>();
  const requests: RecordedRequest[] = [];
  const faults: AzureFault[] = [];
  interface Op {
    id: string;
    polls: number;
    failure?: { code: string; message: string };
    onDone?: () => void;
    done?: boolean;
  }
  const ops = new Map<string, Op>();
  let ipCounter = 10;
  let base = "";
  const sub = `/subscriptions/${SUBSCRIPTION}`;

  const newOp = (o: Omit<Op, "id" | "polls">) => {
    const op: Op = { ...o, id: crypto.randomUUID(), polls: 0 };
    ops.set(op.id, op);
    return op;
  };
  const advance = (op: Op) => {
    if (op.done) return;
    op.polls++;
    if (op.polls >= opPolls) {
      op.done = true;
      op.onDone?.();
    }
  };
  const asyncHeaders = (op: Op, ns: string, api: string) => ({
    "azure-asyncoperation":
      `${base}/arm${sub}/providers/${ns}/locations/eastus/operations/${op.id}?api-version=${api}`,
    "retry-after": retryAfter,
  });
  const locationHeaders = (op: Op, ns: string, api: string) => ({
    location:
      `${base}/arm${sub}/providers/${ns}/locations/eastus/operationResults/${op.id}?api-version=${api}`,
    "retry-after": retryAfter,
  });
  const armId = (rg: string, kind: FakeArmResource["kind"], name: string) => {
    const type = Object.entries(TYPES).find(([, k]) => k === kind)![0];
    return `${sub}/resourceGroups/${rg}/providers/${type}/${name}`;
  };
  const resolve = (id: unknown, kind: FakeArmResource["kind"], what: string) => {
    const m = typeof id === "string"
      ? new RegExp(
        `^${sub}/resourceGroups/([^/]+)/providers/([^/]+/[^/]+)/([^/]+)(/subnets/([^/]+))?$`,
        "i",
      ).exec(id)
      : null;
    if (!m || TYPES[m[2]] !== kind) {
      throw bad(`${what} is not a valid ${kind} resource id`, "InvalidResourceReference");
    }
    const r = resources.get(`${kind}/${m[3]}`);
    if (!r || r.deleting) {
      throw bad(`Resource ${id} referenced by ${what} was not found.`, "InvalidResourceReference");
    }
    return { resource: r, subnet: m[5] };
  };
  const resourceJson = (rg: string, r: FakeArmResource, state: string) => ({
    id: armId(rg, r.kind, r.name),
    name: r.name,
    type: Object.entries(TYPES).find(([, k]) => k === r.kind)![0],
    location: "eastus",
    tags: r.tags,
    properties: { ...r.properties, provisioningState: state },
  });

  function putResource(
    rg: string,
    kind: FakeArmResource["kind"],
    name: string,
    body: Record<string, unknown>,
    api: string,
    ns: string,
  ): Response {
    if (typeof body.location !== "string" || body.location === "") {
      throw bad("The 'location' property is required.", "LocationRequired");
    }
    const tags = checkTags(body.tags);
    const props = (body.properties ?? {}) as Record<string, unknown>;
    if (typeof props !== "object") throw bad("properties must be an object");
    const existing = resources.get(`${kind}/${name}`);
    if (existing?.deleting) {
      throw new ArmError(409, "AnotherOperationInProgress", `${name} is being deleted.`);
    }
    let failure: Op["failure"];
    const res: FakeArmResource = { kind, name, tags: { ...tags }, properties: { ...props } };
    if (kind === "nsg") {
      const rules = props.securityRules ?? [];
      if (!Array.isArray(rules)) throw bad("securityRules must be an array");
      for (const r of rules) {
        const p = (r as { properties?: Record<string, unknown> }).properties ?? {};
        const prio = Number(p.priority);
        if (
          !(prio >= 100 && prio <= 4096) ||
          !["Inbound", "Outbound"].includes(String(p.direction)) ||
          !["Allow", "Deny"].includes(String(p.access))
        ) {
          throw bad(
            "Security rule has invalid priority, direction or access.",
            "SecurityRuleInvalidParameter",
          );
        }
        if (p.sourceAddressPrefix === undefined && p.sourceAddressPrefixes === undefined) {
          throw bad("Security rule needs a source address prefix.", "SecurityRuleInvalidParameter");
        }
      }
    } else if (kind === "vnet") {
      const prefixes = (props.addressSpace as { addressPrefixes?: unknown })?.addressPrefixes;
      if (!Array.isArray(prefixes) || prefixes.length === 0) {
        throw bad("addressSpace.addressPrefixes is required");
      }
      for (
        const s of (props.subnets ?? []) as {
          name?: string;
          properties?: Record<string, unknown>;
        }[]
      ) {
        if (!s.name || typeof s.properties?.addressPrefix !== "string") {
          throw bad("subnet needs a name and addressPrefix");
        }
        if (s.properties.networkSecurityGroup) {
          resolve(
            (s.properties.networkSecurityGroup as { id?: string }).id,
            "nsg",
            `subnet ${s.name}`,
          );
        }
      }
    } else if (kind === "pip") {
      const sku = (body.sku as { name?: string })?.name;
      if (sku === "Standard" && props.publicIPAllocationMethod !== "Static") {
        throw bad(
          "Standard sku public IP addresses require the Static allocation method.",
          "StandardSkuPublicIPAddressesMustBeStatic",
        );
      }
      res.properties.ipAddress = existing?.properties.ipAddress ??
        `198.51.100.${ipCounter++ % 250}`;
    } else if (kind === "nic") {
      const cfgs = props.ipConfigurations;
      if (!Array.isArray(cfgs) || cfgs.length === 0) throw bad("ipConfigurations is required");
      const p = (cfgs[0] as { properties?: Record<string, unknown> }).properties ?? {};
      const { resource: vnet, subnet } = resolve(
        (p.subnet as { id?: string })?.id,
        "vnet",
        "ipConfiguration.subnet",
      );
      if (
        !subnet ||
        !((vnet.properties.subnets ?? []) as { name: string }[]).some((s) => s.name === subnet)
      ) {
        throw bad("The subnet does not exist.", "InvalidResourceReference");
      }
      if (p.publicIPAddress) {
        const { resource: pip } = resolve(
          (p.publicIPAddress as { id?: string }).id,
          "pip",
          "ipConfiguration.publicIPAddress",
        );
        const user = [...resources.values()].find((r) =>
          r.kind === "nic" && r.name !== name && r.properties.pip === pip.name
        );
        if (user) {
          throw bad(`Public IP ${pip.name} is in use by ${user.name}.`, "PublicIPAddressInUse");
        }
        res.properties.pip = pip.name;
      }
      if (props.networkSecurityGroup) {
        res.properties.nsg =
          resolve((props.networkSecurityGroup as { id?: string }).id, "nsg", "networkSecurityGroup")
            .resource.name;
      }
      res.properties.vnet = vnet.name;
      res.properties.vm = existing?.properties.vm;
    } else if (kind === "vm") {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}[A-Za-z0-9_]$/.test(name)) {
        throw bad("The VM name is invalid.", "InvalidParameter");
      }
      const hw = props.hardwareProfile as { vmSize?: string } | undefined;
      if (!hw?.vmSize || !vmSizes.has(hw.vmSize)) {
        throw bad(
          `The requested VM size ${hw?.vmSize} is not available in location 'eastus'.`,
          "SkuNotAvailable",
        );
      }
      const storage = props.storageProfile as {
        imageReference?: Record<string, string>;
        osDisk?: Record<string, unknown>;
      } | undefined;
      const img = storage?.imageReference ?? {};
      if (!img.publisher || !img.offer || !img.sku || !img.version) {
        throw bad("imageReference needs publisher, offer, sku and version", "InvalidParameter");
      }
      const os = props.osProfile as Record<string, unknown> | undefined;
      const admin = String(os?.adminUsername ?? "");
      if (
        !/^[a-z_][a-z0-9_-]{0,63}$/.test(admin) ||
        ((options.reservedAdminNames ?? true) && RESERVED_ADMINS.includes(admin))
      ) {
        throw bad("The Admin Username specified is not allowed.", "InvalidParameter");
      }
      if (String(os?.computerName ?? name).length > 64) {
        throw bad("computerName is too long", "InvalidParameter");
      }
      const linux = os?.linuxConfiguration as {
        disablePasswordAuthentication?: boolean;
        ssh?: { publicKeys?: { path?: string; keyData?: string }[] };
      } | undefined;
      if (linux?.disablePasswordAuthentication && os?.adminPassword !== undefined) {
        throw bad("adminPassword with password authentication disabled");
      }
      if (!linux?.disablePasswordAuthentication && os?.adminPassword === undefined) {
        throw bad("Required parameter 'adminPassword' is missing (null).", "InvalidParameter");
      }
      for (const k of linux?.ssh?.publicKeys ?? []) {
        if (k.path !== `/home/${admin}/.ssh/authorized_keys`) {
          throw bad(
            `Destination path for SSH public keys is currently limited to its default value /home/${admin}/.ssh/authorized_keys due to a known issue in Linux provisioning agent.`,
            "InvalidParameter",
          );
        }
        if (
          !/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/]+={0,2}( .*)?$/.test(
            k.keyData ?? "",
          )
        ) {
          throw bad(
            "The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.",
            "InvalidParameter",
          );
        }
      }
      if (os?.customData !== undefined) {
        let decoded: Uint8Array;
        try {
          if (typeof os.customData !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(os.customData)) {
            throw new Error();
          }
          decoded = Uint8Array.from(atob(os.customData), (c) => c.charCodeAt(0));
        } catch {
          throw bad("The value of parameter customData is invalid (base64).", "InvalidParameter");
        }
        if (decoded.length > 65535) {
          throw bad("customData exceeds the 64 KB limit.", "InvalidParameter");
        }
        res.customData = new TextDecoder().decode(decoded);
      }
      const nics =
        (props.networkProfile as { networkInterfaces?: { id?: string }[] })?.networkInterfaces ??
          [];
      if (nics.length === 0) throw bad("networkProfile.networkInterfaces is required");
      const { resource: nic } = resolve(nics[0].id, "nic", "networkProfile");
      if (nic.properties.vm && nic.properties.vm !== name) {
        throw bad(`Network interface ${nic.name} is used by ${nic.properties.vm}.`, "NicInUse");
      }
      const count = [...resources.values()].filter((r) => r.kind === "vm").length;
      if (!existing && options.vmQuota !== undefined && count >= options.vmQuota) {
        throw new ArmError(
          409,
          "OperationNotAllowed",
          `Operation could not be completed as it results in exceeding approved Total Regional Cores quota. Location: eastus, Current Limit: ${
            options.vmQuota * 2
          }.`,
        );
      }
      nic.properties.vm = name;
      const diskName = String(storage?.osDisk?.name ?? `${name}_OsDisk_1`);
      res.properties.disk = diskName;
      resources.set(`disk/${diskName}`, {
        kind: "disk",
        name: diskName,
        tags: {},
        properties: { managedBy: name },
      });
      if (options.vmOperationEchoes) {
        failure = { code: "InvalidParameter", message: `invalid VM: ${JSON.stringify(body)}` };
      } else if ((options.unavailable ?? []).includes(hw.vmSize)) {
        failure = {
          code: "AllocationFailed",
          message:
            "Allocation failed. We do not have sufficient capacity for the requested VM size in this region.",
        };
      }
      const chosen = options.onCreate?.(name);
      if (chosen?.ipAddress && nic.properties.pip) {
        const pip = resources.get(`pip/${nic.properties.pip}`);
        if (pip) pip.properties.ipAddress = chosen.ipAddress;
      }
    }
    resources.set(`${kind}/${name}`, res);
    const op = newOp({ failure });
    res.properties.opId = op.id;
    return json(
      existing ? 200 : 201,
      resourceJson(rg, res, existing ? "Updating" : "Creating"),
      asyncHeaders(op, ns, api),
    );
  }

  function deleteResource(
    kind: FakeArmResource["kind"],
    name: string,
    api: string,
    ns: string,
  ): Response {
    const r = resources.get(`${kind}/${name}`);
    if (!r) return new Response(null, { status: 204 });
    if (r.deleting) {
      return new Response(null, { status: 202, headers: locationHeaders(newOp({}), ns, api) });
    }
    const users = [...resources.values()];
    if (kind === "nic") {
      if (r.properties.vm) {
        throw bad(
          `Network interface ${name} is in use by virtual machine ${r.properties.vm}.`,
          "NicInUse",
        );
      }
      if ((r.reservedLeft ?? 0) > 0) {
        r.reservedLeft!--;
        throw bad(
          `Nic ${name} is reserved for VM that was recently deleted. Please retry after 180 seconds.`,
          "NicReservedForAnotherVm",
        );
      }
    }
    if (kind === "pip" && users.some((u) => u.kind === "nic" && u.properties.pip === name)) {
      throw bad(
        `Public IP address ${name} can not be deleted since it is still allocated to a resource.`,
        "PublicIPAddressCannotBeDeleted",
      );
    }
    if (
      kind === "nsg" && users.some((u) =>
        (u.kind === "nic" && u.properties.nsg === name) ||
        (u.kind === "vnet" &&
          JSON.stringify(u.properties.subnets ?? []).includes(`/networkSecurityGroups/${name}"`))
      )
    ) {
      throw bad(
        `Network security group ${name} cannot be deleted because it is in use.`,
        "InUseNetworkSecurityGroupCannotBeDeleted",
      );
    }
    if (kind === "vnet" && users.some((u) => u.kind === "nic" && u.properties.vnet === name)) {
      throw bad(`Subnet of ${name} is in use and cannot be deleted.`, "InUseSubnetCannotBeDeleted");
    }
    if (
      kind === "disk" && r.properties.managedBy && resources.has(`vm/${r.properties.managedBy}`)
    ) {
      throw new ArmError(
        409,
        "OperationNotAllowed",
        `Disk ${name} is attached to VM ${r.properties.managedBy}.`,
      );
    }
    r.deleting = true;
    const op = newOp({
      onDone: () => {
        resources.delete(`${kind}/${name}`);
        if (kind === "vm") {
          const nic = [...resources.values()].find((u) =>
            u.kind === "nic" && u.properties.vm === name
          );
          if (nic) {
            nic.properties.vm = undefined;
            nic.reservedLeft = options.nicReservedAttempts ?? 1;
          }
          const disk = resources.get(`disk/${r.properties.disk}`);
          if (disk) disk.properties.managedBy = undefined;
        }
      },
    });
    return new Response(null, { status: 202, headers: locationHeaders(op, ns, api) });
  }

  function stateOf(r: FakeArmResource): string {
    if (r.deleting) return "Deleting";
    const op = ops.get(String(r.properties.opId ?? ""));
    if (!op) return "Succeeded";
    return op.done
      ? (op.failure ? "Failed" : "Succeeded")
      : r.kind === "vm"
      ? "Creating"
      : "Updating";
  }

  function tokenEndpoint(tenant: string, req: Request, text: string): Response {
    const fail = (status: number, error: string, code: number, description: string) =>
      json(status, {
        error,
        error_description: `AADSTS${code}: ${description}`,
        error_codes: [code],
        timestamp: new Date().toISOString(),
      });
    if (req.method !== "POST") {
      return fail(405, "invalid_request", 900561, "The endpoint only accepts POST requests.");
    }
    if (!(req.headers.get("content-type") ?? "").startsWith("application/x-www-form-urlencoded")) {
      return fail(
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'grant_type'.",
      );
    }
    if (tenant !== TENANT) {
      return fail(400, "invalid_request", 90002, `Tenant '${tenant}' not found.`);
    }
    const form = new URLSearchParams(text);
    if (form.get("grant_type") !== "client_credentials") {
      return fail(
        400,
        "unsupported_grant_type",
        70003,
        "The app requested an unsupported grant type.",
      );
    }
    if (form.get("client_id") !== CLIENT_ID) {
      return fail(
        400,
        "unauthorized_client",
        700016,
        `Application with identifier '${form.get("client_id")}' was not found in the directory.`,
      );
    }
    if (form.get("client_secret") !== SECRET) {
      return fail(401, "invalid_client", 7000215, "Invalid client secret provided.");
    }
    if (form.get("scope") !== "https://management.azure.com/.default") {
      return fail(
        400,
        "invalid_scope",
        70011,
        "The provided value for the input parameter 'scope' is not valid.",
      );
    }
    const token = `eyJ0eXAiOiJKV1Qi.fake.${crypto.randomUUID()}`;
    tokens.set(token, Date.now() + 3600_000);
    fake.issuedTokens++;
    return json(200, {
      token_type: "Bearer",
      expires_in: 3599,
      ext_expires_in: 3599,
      access_token: token,
    });
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const text = req.method === "GET" || req.method === "DELETE" ? "" : await req.text();
    const { rec, done } = recordRequest(requests, req, ["authorization"]);
    const login = /^\/login\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (login) {
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
      return done(tokenEndpoint(decodeURIComponent(login[1]), req, text));
    }
    try {
      if (!url.pathname.startsWith("/arm/")) {
        throw new ArmError(404, "NotFound", "no such endpoint");
      }
      const path = url.pathname.slice(4);
      const auth = /^Bearer (\S+)$/.exec(req.headers.get("authorization") ?? "");
      const exp = auth ? tokens.get(auth[1]) : undefined;
      if (exp === undefined) {
        throw new ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.", {
          "www-authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/"',
        });
      }
      if (exp < Date.now()) {
        throw new ArmError(
          401,
          "ExpiredAuthenticationToken",
          "The access token expiry UTC time is earlier than current UTC time.",
        );
      }
      const m = /^\/subscriptions\/([^/]+)(\/.*)?$/.exec(path);
      if (!m) throw new ArmError(404, "NotFound", "no such endpoint");
      if (m[1] !== SUBSCRIPTION) {
        throw new ArmError(
          404,
          "SubscriptionNotFound",
          `The subscription '${m[1]}' could not be found.`,
        );
      }
      const rest = m[2] ?? "";
      const fault = takeFault(faults, req.method, rest);
      if (fault) {
        const headers = fault.status === 429
          ? {
            "x-ms-ratelimit-remaining-subscription-reads": "0",
            "x-ms-ratelimit-remaining-subscription-writes": "0",
            ...fault.headers,
          }
          : fault.headers ?? {};
        throw new ArmError(fault.status, fault.code, faultMessage(fault, text), headers);
      }
      const api = url.searchParams.get("api-version");
      if (!api) {
        throw bad(
          "The api-version query parameter (?api-version=) is required for all requests.",
          "MissingApiVersionParameter",
        );
      }
      const checkApi = (area: string) => {
        if (!VERSIONS[area].includes(api)) {
          throw bad(
            `The api-version '${api}' is invalid. The supported versions are '${
              VERSIONS[area].join(",")
            }'.`,
            "InvalidApiVersionParameter",
          );
        }
      };
      if (text !== "") {
        if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) {
          throw new ArmError(
            415,
            "UnsupportedMediaType",
            "The content media type is not supported.",
          );
        }
        try {
          rec.body = JSON.parse(text);
        } catch {
          throw bad(
            "The request content was invalid and could not be deserialized.",
            "InvalidRequestContent",
          );
        }
      }
      let r: RegExpExecArray | null;
      // Operation status (Azure-AsyncOperation) and results (Location).
      if (
        (r =
          /^\/providers\/(Microsoft\.[A-Za-z]+)\/locations\/[^/]+\/(operations|operationResults)\/([^/]+)$/
            .exec(rest)) && req.method === "GET"
      ) {
        const op = ops.get(r[3]);
        if (!op) throw new ArmError(404, "NotFound", "operation not found");
        advance(op);
        if (r[2] === "operationResults") {
          return done(
            op.done ? new Response(null, { status: 200 }) : new Response(null, {
              status: 202,
              headers: { location: url.href, "retry-after": retryAfter },
            }),
          );
        }
        const status = !op.done ? "InProgress" : op.failure ? "Failed" : "Succeeded";
        return done(
          json(200, {
            name: op.id,
            status,
            ...(op.done && op.failure ? { error: op.failure } : {}),
          }, op.done ? {} : { "retry-after": retryAfter }),
        );
      }
      if ((r = /^\/resourcegroups\/([^/]+)$/i.exec(rest))) {
        checkApi("resources");
        const rg = r[1];
        if (req.method === "PUT") {
          const body = rec.body as Record<string, unknown> | undefined;
          if (typeof body?.location !== "string") {
            throw bad("The 'location' property is required.", "LocationRequired");
          }
          const existed = groups.has(rg);
          groups.set(rg, { location: body.location, tags: checkTags(body.tags) });
          return done(
            json(existed ? 200 : 201, {
              id: `${sub}/resourceGroups/${rg}`,
              name: rg,
              location: body.location,
              tags: body.tags ?? {},
              properties: { provisioningState: "Succeeded" },
            }),
          );
        }
        if (!groups.has(rg)) {
          throw new ArmError(
            404,
            "ResourceGroupNotFound",
            `Resource group '${rg}' could not be found.`,
          );
        }
        if (req.method === "GET") {
          return done(
            json(200, {
              id: `${sub}/resourceGroups/${rg}`,
              name: rg,
              properties: { provisioningState: "Succeeded" },
            }),
          );
        }
      }
      if (
        (r =
          /^\/resourceGroups\/([^/]+)\/providers\/(Microsoft\.[A-Za-z]+)\/([A-Za-z]+)(?:\/([^/]+))?$/
            .exec(rest))
      ) {
        const [, rg, ns, typeName, name] = r;
        const type = `${ns}/${typeName}`;
        const kind = TYPES[type];
        if (!kind) {
          throw new ArmError(
            400,
            "InvalidResourceType",
            `The resource type '${typeName}' could not be found in the namespace '${ns}'.`,
          );
        }
        checkApi(ns === "Microsoft.Network" ? "Microsoft.Network" : type);
        if (!groups.has(rg)) {
          throw new ArmError(
            404,
            "ResourceGroupNotFound",
            `Resource group '${rg}' could not be found.`,
          );
        }
        if (name === undefined) {
          if (req.method !== "GET") throw new ArmError(405, "MethodNotAllowed", "not allowed");
          const all = [...resources.values()].filter((x) => x.kind === kind).sort((a, b) =>
            a.name.localeCompare(b.name)
          );
          const skip = Number(url.searchParams.get("$skiptoken") ?? "0");
          if (!Number.isInteger(skip) || skip < 0) throw bad("Invalid $skiptoken");
          const page = all.slice(skip, skip + maxPerPage);
          const nextLink = skip + maxPerPage < all.length
            ? `${base}/arm${sub}/resourceGroups/${rg}/providers/${type}?api-version=${api}&%24skiptoken=${
              skip + maxPerPage
            }`
            : undefined;
          return done(
            json(200, {
              value: page.map((x) => resourceJson(rg, x, stateOf(x))),
              ...(nextLink ? { nextLink } : {}),
            }),
          );
        }
        if (req.method === "PUT") {
          return done(
            putResource(rg, kind, name, (rec.body ?? {}) as Record<string, unknown>, api, ns),
          );
        }
        if (req.method === "DELETE") return done(deleteResource(kind, name, api, ns));
        if (req.method === "GET") {
          const x = resources.get(`${kind}/${name}`);
          if (!x) {
            throw new ArmError(
              404,
              "ResourceNotFound",
              `The Resource '${type}/${name}' under resource group '${rg}' was not found.`,
            );
          }
          return done(json(200, resourceJson(rg, x, stateOf(x))));
        }
      }
      throw new ArmError(404, "NotFound", `no route for ${req.method} ${rest}`);
    } catch (e) {
      if (e instanceof ArmError) return done(e.toResponse());
      throw e;
    }
  }

  const http: FakeHttp = serveFake(handle);
  base = http.url;
  const fake: FakeAzure = {
    armUrl: `${base}/arm`,
    loginUrl: `${base}/login`,
    env: {
      AZURE_TENANT_ID: TENANT,
      AZURE_CLIENT_ID: CLIENT_ID,
      AZURE_CLIENT_SECRET: SECRET,
      AZURE_SUBSCRIPTION_ID: SUBSCRIPTION,
      CRABBOX_AZURE_ARM_URL: `${base}/arm`,
      CRABBOX_AZURE_LOGIN_URL: `${base}/login`,
    },
    requests,
    groups,
    resources,
    issuedTokens: 0,
    inject: (f) => faults.push(f),
    expireTokens: () => {
      for (const k of tokens.keys()) tokens.set(k, 0);
    },
    close: () => http.close(),
    [Symbol.asyncDispose]: () => http.close(),
  };
  return fake;
}
