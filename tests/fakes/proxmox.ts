/**
 * A fake Proxmox VE API (`/api2/json`) that enforces the documented
 * contract: `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET` (401
 * otherwise), form-encoded POST bodies, `{"data": …}` answers with the
 * message in the status line, `nextid`, clone from a template (a locked
 * clone while its UPID task runs), UPID tasks that take several polls and
 * answer only on the node the UPID names, the cloud-init config (`sshkeys`
 * must be URL-encoded inside the form: a raw space or `+` is rejected like
 * PVE's "invalid urlencoded string"; `tags` in pve-tag format; description
 * ≤ 8192), start/stop tasks, the guest agent answering 500 "QEMU guest agent
 * is not running" for a few reads after start, destroy only when stopped, a
 * missing VM as HTTP 500 "Configuration file 'nodes/<node>/qemu-server/<id>.conf'
 * does not exist" (reason phrase, and `message` in the `{"data":null}` body:
 * Deno's fetch only exposes canonical reason phrases), 400 "Parameter verification failed."
 * with `errors`, 403 "Permission check failed", 501 for unknown routes.
 *
 * Not modelled: JSON request bodies (PVE ≥ 7 accepts them too; the fake
 * insists on forms, which is what crabbox sends), tickets/CSRF (tokens need
 * none), clusters with several nodes beyond the node check of UPIDs,
 * storage and pool validation, linked-clone storage rules, rate limits.
 *
 * @example
 * ```ts
 * import { startFakeProxmox } from "./proxmox.ts";
 * await using fake = startFakeProxmox();
 * ```
 *
 * @module
 */

import {
  type FakeHttp,
  type Fault,
  type RecordedRequest,
  recordRequest,
  serveFakeRaw,
  takeFault,
} from "./fake_http.ts";

/** A VM in the fake's state. */
export interface FakeProxmoxVm {
  /** VM id. */
  vmid: number;
  /** Name. */
  name: string;
  /** Template flag. */
  template: boolean;
  /** `running` or `stopped`. */
  status: "running" | "stopped";
  /** Config keys as stored (sshkeys stored URL-encoded, like PVE). */
  config: Record<string, string>;
  /** Lock while a task runs (`clone`, …). */
  lock?: string;
  /** Agent reads since start. */
  agentPolls: number;
  /** IPv4 the agent reports once up. */
  ip: string;
}

/** Options of {@link startFakeProxmox}. */
export interface FakeProxmoxOptions {
  /** Token id `user@realm!tokenid`. */
  tokenId?: string;
  /** Token secret. */
  tokenSecret?: string;
  /** Node name. */
  node?: string;
  /** Template VM id. */
  templateId?: number;
  /** Status reads a task stays `running` (default 2). */
  taskPolls?: number;
  /** Agent reads answering "not running" after start (default 2). */
  agentPolls?: number;
  /** Answer `nextid` as a number instead of a string. */
  nextIdAsNumber?: boolean;
  /** The token lacks VM.Allocate (clone answers 403). */
  readOnly?: boolean;
  /** Chooses the IPv4 the agent reports. */
  onCreate?: (vm: FakeProxmoxVm) => { ip?: string } | void;
  /** Called when a VM has booted (cloud-init would apply `ciuser`/`sshkeys` now). */
  onStart?: (vm: FakeProxmoxVm) => void;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
}

/** A running fake Proxmox API. */
export interface FakeProxmox extends AsyncDisposable {
  /** Base URL for `CRABBOX_PROXMOX_API_URL` (without `/api2/json`). */
  url: string;
  /** Token id. */
  tokenId: string;
  /** Token secret. */
  tokenSecret: string;
  /** Node. */
  node: string;
  /** Template id. */
  templateId: number;
  /** Every request, secrets redacted. */
  requests: RecordedRequest[];
  /** VMs by id (the template included). */
  vms: Map<number, FakeProxmoxVm>;
  /** Queue a fault (`match` is the path without `/api2/json`). */
  inject(fault: Fault): void;
  /** Stop the server. */
  close(): Promise<void>;
}

const TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/i;
const KEY_LINE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( [^\n]*)?$/;

function answer(
  status: number,
  reason: string,
  data: unknown,
  extra: Record<string, unknown> = {},
): Response {
  // PVE sends the message as the reason phrase (which Deno's fetch does not expose) and, in its
  // JSON formatter, as `message` next to `data` [the body field is uncertain for old PVE versions].
  const body = status >= 400 ? { data, message: `${reason}\n`, ...extra } : { data, ...extra };
  return new Response(JSON.stringify(body), {
    status,
    statusText: reason,
    headers: { "content-type": "application/json;charset=UTF-8" },
  });
}

const ok = (data: unknown) => answer(200, "OK", data);

/**
 * Start a fake Proxmox VE API on 127.0.0.1.
 *
 * @example
 * ```ts
 * import { startFakeProxmox } from "./proxmox.ts";
 * await using fake = startFakeProxmox({ onCreate: () => ({ ip: "127.0.0.1" }) });
 * ```
 */
export function startFakeProxmox(options: FakeProxmoxOptions = {}): FakeProxmox {
  const tokenId = options.tokenId ?? "crabbox@pve!ci";
  const tokenSecret = options.tokenSecret ?? "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
  const node = options.node ?? "pve1";
  const templateId = options.templateId ?? 9000;
  const taskPolls = options.taskPolls ?? 2;
  const agentPolls = options.agentPolls ?? 2;
  const vms = new Map<number, FakeProxmoxVm>();
  vms.set(templateId, {
    vmid: templateId,
    name: "ubuntu-cloud-tmpl",
    template: true,
    status: "stopped",
    config: { name: "ubuntu-cloud-tmpl", template: "1" },
    agentPolls: 0,
    ip: "",
  });
  const tasks = new Map<string, { polls: number; done: () => string }>();
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  let taskSeq = 0;

  const missing = (vmid: number | string) =>
    answer(500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`, null);
  const paramFail = (errors: Record<string, string>) =>
    answer(400, "Parameter verification failed.", null, { errors });

  /** Start a task; `done` runs when it finishes and returns the exit status. */
  function task(type: string, vmid: number, done: () => string): string {
    taskSeq++;
    const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");
    const upid = `UPID:${node}:${hex(4000 + taskSeq)}:${hex(taskSeq * 977)}:${
      hex(Math.floor(Date.now() / 1000))
    }:${type}:${vmid}:${tokenId}:`;
    tasks.set(upid, { polls: 0, done });
    return upid;
  }

  async function formBody(req: Request): Promise<URLSearchParams | Response> {
    const type = req.headers.get("content-type") ?? "";
    const text = await req.text();
    if (text === "") return new URLSearchParams();
    if (!type.startsWith("application/x-www-form-urlencoded")) {
      return answer(400, "Parameter verification failed.", null, {
        errors: { body: "expected a form-encoded body" },
      });
    }
    return new URLSearchParams(text);
  }

  async function route(req: Request, path: string, q: URLSearchParams): Promise<Response> {
    if (req.headers.get("authorization") !== `PVEAPIToken=${tokenId}=${tokenSecret}`) {
      await req.body?.cancel();
      return answer(401, "invalid token value!", null);
    }
    if (req.method === "GET" && path === "/cluster/nextid") {
      let id = 100;
      while (vms.has(id)) id++;
      return ok(options.nextIdAsNumber ? id : String(id));
    }
    let m = /^\/nodes\/([^/]+)\/tasks\/([^/]+)\/status$/.exec(path);
    if (req.method === "GET" && m) {
      const upid = decodeURIComponent(m[2]);
      const t = tasks.get(upid);
      if (!t || m[1] !== upid.split(":")[1]) return answer(500, "no such task", null);
      t.polls++;
      if (t.polls <= taskPolls) return ok({ status: "running", upid, node: m[1] });
      const exitstatus = t.polls === taskPolls + 1 ? t.done() : "OK";
      if (exitstatus !== "OK") tasks.set(upid, { polls: t.polls, done: () => exitstatus });
      return ok({ status: "stopped", exitstatus, upid, node: m[1] });
    }
    m = /^\/nodes\/([^/]+)\/qemu(?:\/([0-9]+)(\/.*)?)?$/.exec(path);
    if (!m) {
      await req.body?.cancel();
      return answer(501, "Not Implemented", null, {
        message: `Method '${req.method} ${path}' not implemented`,
      });
    }
    if (m[1] !== node) {
      await req.body?.cancel();
      return answer(
        500,
        `hostname lookup '${m[1]}' failed - failed to get address info for: ${m[1]}`,
        null,
      );
    }
    if (!m[2]) {
      if (req.method !== "GET") return answer(501, "Not Implemented", null);
      return ok([...vms.values()].map((v) => ({
        vmid: v.vmid,
        name: v.name,
        status: v.status,
        template: v.template ? 1 : undefined,
        tags: v.config.tags,
      })));
    }
    const vmid = Number(m[2]);
    const rest = m[3] ?? "";
    const vm = vms.get(vmid);
    if (req.method === "POST" && rest === "/clone") {
      const f = await formBody(req);
      if (f instanceof Response) return f;
      if (!vm) return missing(vmid);
      if (options.readOnly) {
        return answer(403, `Permission check failed (/vms/${f.get("newid")}, VM.Allocate)`, null);
      }
      if (!vm.template) return answer(500, `VM ${vmid} is not a template`, null);
      const newid = f.get("newid") ?? "";
      const name = f.get("name") ?? "";
      const errors: Record<string, string> = {};
      if (!/^[1-9][0-9]{2,8}$/.test(newid)) errors.newid = "value must be a VM id";
      if (name && !/^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(name)) {
        errors.name = "invalid format - value does not look like a valid DNS name";
      }
      if (f.has("full") && !/^[01]$/.test(f.get("full")!)) {
        errors.full = "type check ('boolean') failed";
      }
      if (Object.keys(errors).length) return paramFail(errors);
      if (vms.has(Number(newid))) {
        return answer(500, `unable to create VM ${newid}: config file already exists`, null);
      }
      const clone: FakeProxmoxVm = {
        vmid: Number(newid),
        name,
        template: false,
        status: "stopped",
        config: { name },
        lock: "clone",
        agentPolls: 0,
        ip: `192.0.2.${Number(newid) % 250}`,
      };
      const chosen = options.onCreate?.(clone);
      if (chosen?.ip) clone.ip = chosen.ip;
      vms.set(clone.vmid, clone);
      return ok(task("qmclone", vmid, () => {
        delete clone.lock;
        return "OK";
      }));
    }
    if (!vm) {
      await req.body?.cancel();
      return missing(vmid);
    }
    if (req.method === "GET" && rest === "/config") return ok({ ...vm.config, digest: "fake" });
    if (req.method === "GET" && rest === "/status/current") {
      return ok({ vmid: vm.vmid, name: vm.name, status: vm.status, lock: vm.lock });
    }
    if ((req.method === "POST" || req.method === "PUT") && rest === "/config") {
      const f = await formBody(req);
      if (f instanceof Response) return f;
      if (vm.lock) return answer(500, `VM is locked (${vm.lock})`, null);
      const errors: Record<string, string> = {};
      const keys = f.get("sshkeys");
      if (keys !== null) {
        let decoded = "";
        try {
          if (/[ +]/.test(keys)) throw new Error();
          decoded = decodeURIComponent(keys);
        } catch {
          errors.sshkeys = "invalid urlencoded string";
        }
        if (
          !errors.sshkeys &&
          !decoded.split("\n").filter((l) => l.trim()).every((l) => KEY_LINE.test(l.trim()))
        ) {
          errors.sshkeys = "invalid format - invalid SSH key";
        }
      }
      const tags = f.get("tags");
      if (tags !== null && !tags.split(/[;,]/).every((t) => TAG.test(t))) {
        errors.tags = "invalid format - invalid tag";
      }
      const desc = f.get("description");
      if (desc !== null && desc.length > 8192) {
        errors.description = "value may only be 8192 characters long";
      }
      const ci = f.get("ciuser");
      if (ci !== null && !/^[a-z_][a-z0-9_-]*$/.test(ci)) errors.ciuser = "invalid user name";
      if (Object.keys(errors).length) return paramFail(errors);
      for (const [k, v] of f) vm.config[k] = v;
      return ok(req.method === "PUT" ? null : task("qmconfig", vmid, () => "OK"));
    }
    if (req.method === "POST" && (rest === "/status/start" || rest === "/status/stop")) {
      await req.body?.cancel();
      if (vm.lock) return answer(500, `VM is locked (${vm.lock})`, null);
      if (rest === "/status/start") {
        return ok(task("qmstart", vmid, () => {
          vm.status = "running";
          vm.agentPolls = 0;
          options.onStart?.(vm);
          return "OK";
        }));
      }
      return ok(task("qmstop", vmid, () => {
        vm.status = "stopped";
        return "OK";
      }));
    }
    if (req.method === "GET" && rest === "/agent/network-get-interfaces") {
      if (vm.status !== "running") return answer(500, `VM ${vmid} is not running`, null);
      if (vm.agentPolls++ < agentPolls) return answer(500, "QEMU guest agent is not running", null);
      return ok({
        result: [
          {
            name: "lo",
            "ip-addresses": [{ "ip-address": "127.0.0.1", "ip-address-type": "ipv4", prefix: 8 }],
          },
          {
            name: "docker0",
            "ip-addresses": [{ "ip-address": "172.17.0.1", "ip-address-type": "ipv4", prefix: 16 }],
          },
          {
            name: "eth0",
            "hardware-address": "bc:24:11:00:00:01",
            "ip-addresses": [
              { "ip-address": "fe80::1", "ip-address-type": "ipv6", prefix: 64 },
              { "ip-address": vm.ip, "ip-address-type": "ipv4", prefix: 24 },
            ],
          },
        ],
      });
    }
    if (req.method === "DELETE" && rest === "") {
      if (vm.template) return answer(500, "refusing to destroy the template in this fake", null);
      if (vm.status === "running") {
        return answer(500, `VM ${vmid} is running - destroy failed`, null);
      }
      if (vm.lock) return answer(500, `VM is locked (${vm.lock})`, null);
      const purge = q.get("purge");
      if (purge !== null && !/^[01]$/.test(purge)) {
        return paramFail({ purge: "type check ('boolean') failed" });
      }
      vm.lock = "destroyed";
      return ok(task("qmdestroy", vmid, () => {
        vms.delete(vmid);
        return "OK";
      }));
    }
    await req.body?.cancel();
    return answer(501, "Not Implemented", null, {
      message: `Method '${req.method} ${path}' not implemented`,
    });
  }

  const handler = async (req: Request) => {
    const u = new URL(req.url);
    const path = u.pathname.replace(/^\/api2\/json/, "");
    const { rec: record } = recordRequest(requests, req, ["authorization"], path);
    if (req.method === "POST" || req.method === "PUT") {
      record.body = Object.fromEntries(new URLSearchParams(await req.clone().text()));
    }
    const fault = takeFault(faults, req.method, path);
    let res: Response;
    if (fault) {
      await req.body?.cancel();
      res = answer(fault.status, fault.message ?? fault.code, null);
      for (const [k, v] of Object.entries(fault.headers ?? {})) res.headers.set(k, v);
    } else if (!u.pathname.startsWith("/api2/json/")) {
      res = answer(501, "Not Implemented", null);
    } else {
      res = await route(req, path, u.searchParams);
    }
    record.status = res.status;
    return res;
  };

  const http: FakeHttp = serveFakeRaw(handler, { tls: options.tls });

  return {
    url: http.url,
    tokenId,
    tokenSecret,
    node,
    templateId,
    requests,
    vms,
    inject: (f) => faults.push(f),
    close: () => http.close(),
    [Symbol.asyncDispose]: () => http.close(),
  };
}
