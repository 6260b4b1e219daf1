/**
 * The tailnet's devices through the Tailscale API: list them (and pick a
 * crew's by tag and host name), and delete one so a released box leaves the
 * tailnet.
 *
 * @module
 */

import type { TailnetClient } from "./api.ts";

/** A device as `GET /api/v2/tailnet/{tailnet}/devices` lists it (the fields crabbox reads). */
export interface TailnetDevice {
  /** Legacy numeric id. */
  id: string;
  /** Stable node id. */
  nodeId: string;
  /** Host name. */
  hostname: string;
  /** MagicDNS name. */
  name: string;
  /** Tailscale addresses. */
  addresses: string[];
  /** Tags. */
  tags: string[];
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/**
 * Every device of the tailnet (`GET /api/v2/tailnet/{tailnet}/devices`).
 * Entries without an id are skipped. Errors are the client's API errors.
 *
 * @example
 * ```ts
 * import { listDevices } from "./devices.ts";
 * import { tailnetClientFromEnv } from "./api.ts";
 * const devices = await listDevices(tailnetClientFromEnv(Deno.env.toObject()));
 * ```
 */
export async function listDevices(client: TailnetClient): Promise<TailnetDevice[]> {
  const res = await client.request({
    what: "list the tailnet's devices",
    method: "GET",
    path: `${client.tailnetPath}/devices`,
    headers: { accept: "application/json" },
    scope: "devices:core:read",
  });
  if (res.status < 200 || res.status > 299) {
    throw client.apiError("list the tailnet's devices", res);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(res.body);
  } catch {
    doc = {};
  }
  const list = (doc as { devices?: unknown }).devices;
  return (Array.isArray(list) ? list : []).flatMap((d): TailnetDevice[] => {
    if (typeof d !== "object" || d === null) return [];
    const o = d as Record<string, unknown>;
    const nodeId = typeof o.nodeId === "string" ? o.nodeId : "";
    const id = typeof o.id === "string" ? o.id : "";
    if (!nodeId && !id) return [];
    return [{
      id,
      nodeId,
      hostname: typeof o.hostname === "string" ? o.hostname : "",
      name: typeof o.name === "string" ? o.name : "",
      addresses: strings(o.addresses),
      tags: strings(o.tags),
    }];
  });
}

/**
 * The devices carrying `tag` (the API has no tag filter: this filters the
 * list), optionally only those named `hostname`.
 *
 * @example
 * ```ts
 * import { devicesWithTag } from "./devices.ts";
 * devicesWithTag([{ id: "1", nodeId: "n1", hostname: "crabbox-api", name: "", addresses: [],
 *   tags: ["tag:cbx-crew-alice-pr-42"] }], "tag:cbx-crew-alice-pr-42").length; // 1
 * ```
 */
export function devicesWithTag(
  devices: readonly TailnetDevice[],
  tag: string,
  hostname?: string,
): TailnetDevice[] {
  return devices.filter((d) =>
    d.tags.includes(tag) && (hostname === undefined || d.hostname === hostname)
  );
}

/**
 * Delete a device (`DELETE /api/v2/device/{id}`, id = node id or numeric id).
 * Resolves `"deleted"`, or `"gone"` on 404; other answers are API errors.
 *
 * @example
 * ```ts
 * import { deleteDevice } from "./devices.ts";
 * import { tailnetClientFromEnv } from "./api.ts";
 * await deleteDevice(tailnetClientFromEnv(Deno.env.toObject()), "nABC123CNTRL");
 * ```
 */
export async function deleteDevice(
  client: TailnetClient,
  id: string,
): Promise<"deleted" | "gone"> {
  const res = await client.request({
    what: "delete a tailnet device",
    method: "DELETE",
    path: `/device/${encodeURIComponent(id)}`,
    scope: "devices:core",
  });
  if (res.status === 404) return "gone";
  if (res.status < 200 || res.status > 299) throw client.apiError("delete a tailnet device", res);
  return "deleted";
}
