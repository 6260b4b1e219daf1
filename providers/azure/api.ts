/**
 * Azure Resource Manager, the pure half for the `azure` provider: settings,
 * per-resource `api-version`s, resource paths and ids, request bodies (public
 * IP, NIC, NSG, VNet, VM), tag rules, parsers and the mapping of ARM's error
 * envelope `{"error":{"code","message"}}` to {@link CrabboxError}s. No I/O;
 * `provider.ts` is the fetch shell.
 *
 * @module
 */

import { encodeBase64 } from "../../lib/core/base64.ts";
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
  sharedResourceLabels,
  sharedResourceName,
} from "../cloud/common.ts";
import { asObject, errorEnvelope } from "../cloud/http.ts";
import { capMessage } from "../cloud/request_data.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** Default ARM base URL (`CRABBOX_AZURE_ARM_URL` overrides). */
export const AZURE_ARM_URL = "https://management.azure.com";
/** `api-version` per resource provider area (the versions upstream uses). */
export const API_VERSIONS = {
  resources: "2021-04-01",
  network: "2024-05-01",
  compute: "2024-07-01",
  disks: "2024-03-02",
} as const;
/** Largest decoded `customData` (cloud-init) Azure accepts. */
export const AZURE_MAX_CUSTOM_DATA = 65_535;
/** Default image (upstream's), `publisher:offer:sku:version`. */
export const AZURE_DEFAULT_IMAGE = "Canonical:ubuntu-24_04-lts:server:latest";

/** Resolved Azure settings. */
export interface AzureSettings {
  /** ARM base URL, no trailing slash. */
  armUrl: string;
  /** Subscription id. */
  subscription: string;
  /** Region. */
  location: string;
  /** Resource group holding every crabbox resource (created once, kept). */
  resourceGroup: string;
  /** VM size. */
  vmSize: string;
  /** Image reference. */
  image: { publisher: string; offer: string; sku: string; version: string };
  /** Admin user (SSH login). */
  sshUser: string;
  /** sshd port the NSG opens. */
  sshPort: number;
  /** Source prefixes allowed to reach sshd. */
  sshCidrs: string[];
}

const RG = /^[-\w._()]{1,89}[-\w_()]$/;
const GUID = /^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/;

/**
 * Settings from env and the `azure:` config section: subscription =
 * `AZURE_SUBSCRIPTION_ID` → `CRABBOX_AZURE_SUBSCRIPTION_ID` →
 * `azure.subscriptionId`; `CRABBOX_AZURE_LOCATION` (`eastus`),
 * `CRABBOX_AZURE_RESOURCE_GROUP` (`crabbox-leases`), `CRABBOX_AZURE_VM_SIZE`,
 * `CRABBOX_AZURE_IMAGE`, `CRABBOX_AZURE_SSH_CIDRS`, `CRABBOX_AZURE_ARM_URL`.
 *
 * @example
 * ```ts
 * import { azureSettings } from "./api.ts";
 * azureSettings((k) => k === "AZURE_SUBSCRIPTION_ID" ? "00000000-0000-0000-0000-000000000000" : undefined, {})
 *   .resourceGroup; // "crabbox-leases"
 * ```
 */
export function azureSettings(env: EnvReader, config: Record<string, unknown>): AzureSettings {
  const e = (k: string) => env(k)?.trim() || undefined;
  const subscription = e("AZURE_SUBSCRIPTION_ID") ?? e("CRABBOX_AZURE_SUBSCRIPTION_ID") ??
    configString(config, "azure", "subscriptionId");
  if (!subscription) {
    throw new CrabboxError(
      "credentials",
      "azure_no_subscription",
      "AZURE_SUBSCRIPTION_ID is not set",
      {
        hint: "export AZURE_SUBSCRIPTION_ID (az account show --query id -o tsv)",
      },
    );
  }
  if (!GUID.test(subscription)) {
    throw new CrabboxError(
      "credentials",
      "azure_bad_subscription",
      "AZURE_SUBSCRIPTION_ID is not a subscription id (GUID)",
    );
  }
  const pick = (envKey: string, key: string, fallback: string) =>
    e(envKey) ?? configString(config, "azure", key) ?? fallback;
  const location = pick("CRABBOX_AZURE_LOCATION", "location", "eastus");
  const resourceGroup = pick("CRABBOX_AZURE_RESOURCE_GROUP", "resourceGroup", "crabbox-leases");
  const vmSize = pick("CRABBOX_AZURE_VM_SIZE", "vmSize", "Standard_B2s");
  const bad = (what: string) =>
    new CrabboxError("config", "bad_config_value", `azure ${what} is not valid`);
  if (!/^[a-z0-9]{2,40}$/.test(location)) throw bad("location");
  if (!RG.test(resourceGroup)) throw bad("resourceGroup");
  if (!/^[A-Za-z0-9_]{2,64}$/.test(vmSize)) throw bad("vmSize");
  const image = pick("CRABBOX_AZURE_IMAGE", "image", AZURE_DEFAULT_IMAGE).split(":");
  if (image.length !== 4 || image.some((p) => !/^[A-Za-z0-9._-]{1,100}$/.test(p))) {
    throw bad("image (publisher:offer:sku:version)");
  }
  const user = configString(config, "azure", "sshUser") ?? "crabbox";
  // Azure itself refuses reserved names (root, admin, …) with its own message.
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw bad("sshUser");
  const cidrs = (e("CRABBOX_AZURE_SSH_CIDRS") ?? "*").split(",").map((c) => c.trim()).filter(
    Boolean,
  );
  for (const c of cidrs) {
    if (c !== "*" && !/^(\d{1,3}\.){3}\d{1,3}(\/\d{1,2})?$/.test(c)) {
      throw bad("CRABBOX_AZURE_SSH_CIDRS");
    }
  }
  return {
    armUrl: apiBaseUrl("CRABBOX_AZURE_ARM_URL", e("CRABBOX_AZURE_ARM_URL") ?? AZURE_ARM_URL).href
      .replace(/\/+$/, ""),
    subscription,
    location,
    resourceGroup,
    vmSize,
    image: { publisher: image[0], offer: image[1], sku: image[2], version: image[3] },
    sshUser: user,
    sshPort: configPort(config, "azure", "sshPort", 22),
    sshCidrs: cidrs,
  };
}

// ------------------------------------------------------------------ names and paths

/** VM name `crabbox-<slug>-<lease hex>` (≤ 64). */
export function azureVmName(spec: { slug: string; leaseId: string }): string {
  return `crabbox-${spec.slug}-${spec.leaseId.slice(4)}`;
}

/** Names of a VM's own resources. */
export function vmResourceNames(vm: string): { pip: string; nic: string; disk: string } {
  return { pip: `${vm}-pip`, nic: `${vm}-nic`, disk: `${vm}-osdisk` };
}

/** Names of a crew's shared network resources. */
export function sharedNames(owner: BoxOwner): { vnet: string; subnet: string; nsg: string } {
  const base = sharedResourceName(owner);
  return { vnet: `${base}-vnet`, subnet: "crabbox", nsg: `${base}-nsg` };
}

/** Resource types crabbox touches, with their path segment and api-version. */
export const RESOURCE = {
  vm: { path: "Microsoft.Compute/virtualMachines", api: API_VERSIONS.compute },
  disk: { path: "Microsoft.Compute/disks", api: API_VERSIONS.disks },
  nic: { path: "Microsoft.Network/networkInterfaces", api: API_VERSIONS.network },
  pip: { path: "Microsoft.Network/publicIPAddresses", api: API_VERSIONS.network },
  nsg: { path: "Microsoft.Network/networkSecurityGroups", api: API_VERSIONS.network },
  vnet: { path: "Microsoft.Network/virtualNetworks", api: API_VERSIONS.network },
} as const;

/** A resource kind crabbox manages. */
export type ResourceKind = keyof typeof RESOURCE;

/** ARM id of the resource group. */
export function groupId(s: AzureSettings): string {
  return `/subscriptions/${s.subscription}/resourceGroups/${s.resourceGroup}`;
}

/**
 * ARM id of a resource in the group.
 *
 * @example
 * ```ts
 * import { resourceId } from "./api.ts";
 * resourceId({ subscription: "s", resourceGroup: "rg" } as never, "nic", "n-nic");
 * // "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n-nic"
 * ```
 */
export function resourceId(s: AzureSettings, kind: ResourceKind, name: string): string {
  return `${groupId(s)}/providers/${RESOURCE[kind].path}/${name}`;
}

/** `<id>?api-version=<v>` for a resource. */
export function resourceUrlPath(s: AzureSettings, kind: ResourceKind, name: string): string {
  return `${resourceId(s, kind, name)}?api-version=${RESOURCE[kind].api}`;
}

// ------------------------------------------------------------------ tags

const TAG_NAME_BAD = /[<>%&\\?/]/;

/**
 * Check labels against Azure's tag rules (≤ 50, name ≤ 512 without
 * `<>%&\?/` and not starting with `azure`/`microsoft`/`windows`, value ≤ 256,
 * names unique ignoring case). crabbox's labels always pass; anything else
 * is a usage error before any call.
 */
export function azureTags(labels: Labels): Labels {
  const entries = Object.entries(labels);
  const fail = (why: string) => new CrabboxError("usage", "azure_bad_tags", `Azure tags: ${why}`);
  if (entries.length > 50) throw fail("at most 50 tags per resource");
  const seen = new Set<string>();
  for (const [k, v] of entries) {
    const lower = k.toLowerCase();
    if (k === "" || k.length > 512 || TAG_NAME_BAD.test(k)) {
      throw fail(`tag name ${JSON.stringify(k)} is not allowed`);
    }
    if (/^(azure|microsoft|windows)/.test(lower)) {
      throw fail(`tag name ${JSON.stringify(k)} uses a reserved prefix`);
    }
    if (seen.has(lower)) throw fail(`tag names ${JSON.stringify(k)} collide (names ignore case)`);
    seen.add(lower);
    if (v.length > 256) throw fail(`tag ${JSON.stringify(k)} has a value over 256 characters`);
  }
  return { ...labels };
}

// ------------------------------------------------------------------ bodies

/** The resource group body. */
export function groupBody(s: AzureSettings): Record<string, unknown> {
  return { location: s.location, tags: { crabbox: "true" } };
}

/** NSG allowing TCP `sshPort` from the configured prefixes. */
export function nsgBody(s: AzureSettings, owner: BoxOwner): Record<string, unknown> {
  return {
    location: s.location,
    tags: azureTags(sharedResourceLabels(owner)),
    properties: {
      securityRules: [{
        name: `crabbox-ssh-${s.sshPort}`,
        properties: {
          priority: 100,
          direction: "Inbound",
          access: "Allow",
          protocol: "Tcp",
          sourcePortRange: "*",
          destinationAddressPrefix: "*",
          destinationPortRange: String(s.sshPort),
          ...(s.sshCidrs.length === 1
            ? { sourceAddressPrefix: s.sshCidrs[0] }
            : { sourceAddressPrefixes: s.sshCidrs }),
        },
      }],
    },
  };
}

/** VNet `10.42.0.0/16` with one subnet `10.42.0.0/24` behind the crew's NSG. */
export function vnetBody(s: AzureSettings, owner: BoxOwner): Record<string, unknown> {
  const n = sharedNames(owner);
  return {
    location: s.location,
    tags: azureTags(sharedResourceLabels(owner)),
    properties: {
      addressSpace: { addressPrefixes: ["10.42.0.0/16"] },
      subnets: [{
        name: n.subnet,
        properties: {
          addressPrefix: "10.42.0.0/24",
          networkSecurityGroup: { id: resourceId(s, "nsg", n.nsg) },
        },
      }],
    },
  };
}

/** A Standard static public IP. */
export function pipBody(s: AzureSettings, tags: Labels): Record<string, unknown> {
  return {
    location: s.location,
    tags: azureTags(tags),
    sku: { name: "Standard" },
    properties: { publicIPAllocationMethod: "Static", publicIPAddressVersion: "IPv4" },
  };
}

/** A NIC in the crew's subnet with the VM's public IP. */
export function nicBody(
  s: AzureSettings,
  owner: BoxOwner,
  vm: string,
  tags: Labels,
): Record<string, unknown> {
  const n = sharedNames(owner);
  return {
    location: s.location,
    tags: azureTags(tags),
    properties: {
      ipConfigurations: [{
        name: "ipconfig1",
        properties: {
          subnet: { id: `${resourceId(s, "vnet", n.vnet)}/subnets/${n.subnet}` },
          publicIPAddress: { id: resourceId(s, "pip", vmResourceNames(vm).pip) },
          privateIPAllocationMethod: "Dynamic",
        },
      }],
      networkSecurityGroup: { id: resourceId(s, "nsg", n.nsg) },
    },
  };
}

/**
 * The VM body: size, image, OS disk named `<vm>-osdisk`, admin user with the
 * crew key at `/home/<user>/.ssh/authorized_keys`, password login off,
 * cloud-init as base64 `customData` (≤ 64 KiB decoded), the NIC, the tags.
 */
export function vmBody(spec: CreateSpec, s: AzureSettings): Record<string, unknown> {
  const key = spec.sshPublicKey.trim();
  if (
    !/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( \S+)?$/.test(key)
  ) {
    throw new CrabboxError("usage", "bad_public_key", "the crew public key is not an OpenSSH key");
  }
  const name = azureVmName(spec);
  const osProfile: Record<string, unknown> = {
    computerName: name,
    adminUsername: s.sshUser,
    linuxConfiguration: {
      disablePasswordAuthentication: true,
      ssh: { publicKeys: [{ path: `/home/${s.sshUser}/.ssh/authorized_keys`, keyData: key }] },
    },
  };
  if (spec.userData !== undefined) {
    const size = new TextEncoder().encode(spec.userData).length;
    if (size > AZURE_MAX_CUSTOM_DATA) {
      throw new CrabboxError(
        "usage",
        "user_data_too_large",
        `cloud-init user data is ${size} bytes; Azure customData holds at most ${AZURE_MAX_CUSTOM_DATA}`,
      );
    }
    osProfile.customData = encodeBase64(spec.userData);
  }
  return {
    location: s.location,
    tags: azureTags(spec.labels),
    properties: {
      hardwareProfile: { vmSize: s.vmSize },
      storageProfile: {
        imageReference: s.image,
        osDisk: {
          name: vmResourceNames(name).disk,
          createOption: "FromImage",
          caching: "ReadWrite",
          deleteOption: "Delete",
          managedDisk: { storageAccountType: "StandardSSD_LRS" },
        },
      },
      osProfile,
      networkProfile: {
        networkInterfaces: [{ id: resourceId(s, "nic", vmResourceNames(name).nic) }],
      },
    },
  };
}

// ------------------------------------------------------------------ parsers

function malformed(what: string): CrabboxError {
  return new CrabboxError("provider", "azure_bad_response", `Azure returned a malformed ${what}`);
}

/** The VM fields crabbox uses. */
export interface AzureVm {
  /** Name. */
  name: string;
  /** Tags. */
  tags: Labels;
  /** `provisioningState` (Creating, Succeeded, Deleting, Failed, …). */
  provisioningState: string;
  /** Creation time, when reported. */
  created?: string;
}

/** Parse a VM resource. */
export function parseVm(v: unknown): AzureVm {
  const vm = asObject(v);
  if (typeof vm.name !== "string") throw malformed("virtual machine");
  const tags: Labels = {};
  for (const [k, val] of Object.entries(asObject(vm.tags))) {
    if (typeof val === "string") tags[k] = val;
  }
  const props = asObject(vm.properties);
  return {
    name: vm.name,
    tags,
    provisioningState: typeof props.provisioningState === "string"
      ? props.provisioningState
      : "Unknown",
    created: typeof props.timeCreated === "string" ? props.timeCreated : undefined,
  };
}

/** A page of a list: `{value, nextLink}`. */
export interface ArmPage<T> {
  /** Items. */
  items: T[];
  /** Absolute URL of the next page. */
  nextLink?: string;
}

/** Parse `{value:[…], nextLink}`. */
export function parseArmPage<T>(json: unknown, parse: (v: unknown) => T): ArmPage<T> {
  const root = asObject(json);
  if (!Array.isArray(root.value)) throw malformed("list");
  return {
    items: root.value.map(parse),
    nextLink: typeof root.nextLink === "string" && root.nextLink !== "" ? root.nextLink : undefined,
  };
}

/** The IPv4 of a public IP resource, once allocated. */
export function parsePipAddress(v: unknown): string | undefined {
  const ip = asObject(asObject(v).properties).ipAddress;
  return isIpv4(ip) ? ip : undefined;
}

/** `provisioningState` of any resource body. */
export function provisioningState(v: unknown): string | undefined {
  const s = asObject(asObject(v).properties).provisioningState;
  return typeof s === "string" ? s : undefined;
}

/** An async-operation status body. */
export interface AsyncStatus {
  /** InProgress, Succeeded, Failed, Canceled (or another non-terminal value). */
  status: string;
  /** Error when Failed/Canceled. */
  error?: { code: string; message: string };
}

/** Parse an `Azure-AsyncOperation` status body. */
export function parseAsyncStatus(v: unknown): AsyncStatus {
  const o = asObject(v);
  if (typeof o.status !== "string") throw malformed("operation status");
  const err = asObject(o.error);
  return {
    status: o.status,
    error: typeof err.code === "string"
      ? { code: err.code, message: typeof err.message === "string" ? err.message : "" }
      : undefined,
  };
}

/** True for the terminal async statuses. */
export function isTerminal(status: string): boolean {
  return ["Succeeded", "Failed", "Canceled"].includes(status);
}

/** Map a VM provisioning state to the provider-neutral lease state. */
export function leaseState(state: string): ProviderLease["state"] {
  switch (state) {
    case "Creating":
    case "Updating":
      return "creating";
    case "Succeeded":
      return "running";
    case "Deleting":
      return "deleting";
    default:
      return "unknown";
  }
}

/** A VM as a {@link ProviderLease}; `undefined` without the reserved tags. */
export function vmToLease(
  vm: AzureVm,
  ip: string | undefined,
  s: AzureSettings,
  home: string,
  keyPath?: string,
): ProviderLease | undefined {
  const owner = ownerOf(vm.tags);
  if (!owner || !isLeaseId(owner.leaseId)) return undefined;
  return {
    providerId: vm.name,
    leaseId: owner.leaseId,
    labels: vm.tags,
    state: leaseState(vm.provisioningState),
    ssh: ip
      ? {
        host: ip,
        port: s.sshPort,
        user: s.sshUser,
        keyPath: keyPath ?? clientKeyPath(home, owner),
      }
      : undefined,
    createdAt: vm.created,
    data: { name: vm.name, resourceGroup: s.resourceGroup, location: s.location, vmSize: s.vmSize },
  };
}

// ------------------------------------------------------------------ errors

/** ARM's error envelope. */
export interface ArmError {
  /** Code, e.g. `ResourceNotFound`. */
  code: string;
  /** Message. */
  message: string;
}

/** Decode `{"error":{"code","message"}}` (tolerates junk). */
export function parseArmError(status: number, text: string): ArmError {
  const err = errorEnvelope(text);
  return {
    code: typeof err.code === "string" ? err.code : `http_${status}`,
    message: capMessage(typeof err.message === "string" ? err.message : text),
  };
}

/** Codes meaning "no capacity or quota for this size/region now" (upstream's fallback list). */
export const CAPACITY_CODES = new Set([
  "SkuNotAvailable",
  "QuotaExceeded",
  "AllocationFailed",
  "ZonalAllocationFailed",
  "OverconstrainedAllocationRequest",
  "NotAvailableForSubscription",
  "OperationNotAllowed",
]);

/** Transient delete conflicts that clear up by themselves (retried, bounded). */
export const TRANSIENT_DELETE_CODES = new Set([
  "NicReservedForAnotherVm",
  "NicInUse",
  "InUse",
  "AnotherOperationInProgress",
  "InUseSubnetCannotBeDeleted",
  "InUseNetworkSecurityGroupCannotBeDeleted",
  "PublicIPAddressCannotBeDeleted",
]);

/**
 * Map an ARM failure (HTTP or a Failed async operation) to a
 * {@link CrabboxError}: 401 and AuthorizationFailed are credentials errors
 * naming the variables, capacity codes are provider errors with Azure's words.
 *
 * @example
 * ```ts
 * import { azureError } from "./api.ts";
 * azureError(409, { code: "OperationNotAllowed", message: "quota" }, { what: "PUT vm" }).exitStatus; // 4
 * ```
 */
export function azureError(
  status: number,
  err: ArmError,
  ctx: { what: string; vmSize?: string; location?: string },
): CrabboxError {
  const details = { status, code: err.code };
  const said = `${err.code}: ${err.message}`;
  if (CAPACITY_CODES.has(err.code)) {
    return new CrabboxError(
      "provider",
      "azure_capacity",
      `Azure cannot ${ctx.what} (${ctx.vmSize ?? "VM size"} in ${
        ctx.location ?? "the region"
      }): ${said}`,
      { hint: "try another azure.vmSize or azure.location, or raise the quota", details },
    );
  }
  if (
    status === 401 || err.code === "InvalidAuthenticationToken" ||
    err.code === "ExpiredAuthenticationToken"
  ) {
    return new CrabboxError(
      "credentials",
      "azure_auth",
      `Azure rejected the token for AZURE_CLIENT_ID (${said})`,
      { hint: "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET", details },
    );
  }
  if (err.code === "AuthorizationFailed" || status === 403) {
    return new CrabboxError(
      "credentials",
      "azure_forbidden",
      `the service principal in AZURE_CLIENT_ID may not ${ctx.what} (${said})`,
      { hint: "grant it the Contributor role on the subscription or resource group", details },
    );
  }
  if (err.code === "SubscriptionNotFound" || err.code === "InvalidSubscriptionId") {
    return new CrabboxError(
      "credentials",
      "azure_subscription",
      `AZURE_SUBSCRIPTION_ID is not usable (${said})`,
      {
        details,
      },
    );
  }
  if (status === 429) {
    return new CrabboxError(
      "provider",
      "azure_throttled",
      `Azure throttled ${ctx.what} and retries ran out (${said})`,
      {
        details,
      },
    );
  }
  return new CrabboxError("provider", `azure_error`, `Azure could not ${ctx.what}: ${said}`, {
    details,
  });
}
