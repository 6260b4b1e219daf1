/**
 * `local` and `ssh` against the shared provider conformance suite, on real
 * boxes (network namespaces with their own sshd; root). `local` is the
 * provider itself; `ssh` leases static hosts that are real `local` boxes.
 * Cases that need an HTTP API (credentials, 429, capacity) do not apply and
 * are registered as ignored with the reason.
 */
import assert from "node:assert/strict";
import { ensureClientKey } from "../../lib/ssh/mod.ts";
import { joinPath, newLeaseId } from "../../lib/core/mod.ts";
import { encodeLabels } from "../../lib/core/labels.ts";
import { createLocalProvider } from "../../providers/local/mod.ts";
import { createSshProvider } from "../../providers/ssh_hosts/mod.ts";
import type { ProviderLease } from "../../providers/types.ts";
import { type ConformanceRig, runProviderConformance } from "../providers/conformance.ts";
import { boxSsh, netnsNames, requireE2E } from "./_local.ts";

const enabled = requireE2E();

/** Read an SSH banner from host:port (proves an sshd answers at the handed-out endpoint). */
async function sshBanner(host: string, port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: host, port });
  try {
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  } finally {
    conn.close();
  }
}

async function verifiedEndpoint(l: ProviderLease) {
  if (!l.ssh) throw new Error(`lease ${l.leaseId} has no ssh endpoint`);
  const banner = await sshBanner(l.ssh.host, l.ssh.port);
  if (!banner.startsWith("SSH-2.0-")) throw new Error(`no sshd at ${l.ssh.host}:${l.ssh.port}`);
  return { host: l.ssh.host, port: l.ssh.port };
}

const NO_API = "no HTTP API and no credentials";

runProviderConformance({
  name: "local",
  ignore: !enabled,
  sanitize: false,
  notApplicable: {
    credentials: NO_API,
    "rate-limit": NO_API,
    capacity: "boxes are namespaces on this machine; there is no provider capacity to refuse",
    "half-way": "no fault injection point between namespace, sshd and relay",
  },
  start: async (): Promise<ConformanceRig> => {
    const home = await Deno.makeTempDir({ prefix: "cbx-conf-local-" });
    const provider = createLocalProvider({
      home,
      env: (k) => Deno.env.get(k),
      config: {},
      fetch,
      log: () => {},
    });
    const made = new Set<string>();
    const kh = joinPath(home, "test_known_hosts");
    return {
      provider: {
        ...provider,
        name: provider.name,
        features: provider.features,
        create: async (spec, signal) => {
          made.add(spec.leaseId);
          return await provider.create(spec, signal);
        },
      },
      sleeps: [],
      key: async (owner, crew) =>
        await ensureClientKey(joinPath(home, "owners", owner), { crew, leaseId: newLeaseId() }),
      held: async () => {
        const ns = new Set(await netnsNames());
        const boxes = (await provider.list({})).map((l) => l.leaseId);
        return [...new Set([...boxes, ...[...made].filter((id) => ns.has(id))])];
      },
      handedOut: verifiedEndpoint,
      delivered: async (l) => {
        // The box's sshd reads AuthorizedKeysFile from the box dir; read it from inside the box.
        const r = await boxSsh(l.ssh!, ["cat", `${l.data?.boxDir}/authorized_keys`], kh);
        if (r.code !== 0) throw new Error(`reading authorized_keys failed: ${r.stderr}`);
        return { publicKeys: r.stdout.split("\n").filter((x) => x.trim() !== "") };
      },
      async [Symbol.asyncDispose]() {
        for (const l of await provider.list({})) await provider.delete(l).catch(() => {});
        await Deno.remove(home, { recursive: true }).catch(() => {});
      },
    };
  },
});

/** Five real boxes that serve as the `ssh` provider's static hosts, made once for this file. */
let backing:
  | Promise<{ hosts: Record<string, unknown>[]; cleanup: () => Promise<string[]> }>
  | undefined;

function backingHosts() {
  return backing ??= (async () => {
    const home = await Deno.makeTempDir({ prefix: "cbx-conf-ssh-backing-" });
    const local = createLocalProvider({
      home,
      env: (k) => Deno.env.get(k),
      config: {},
      fetch,
      log: () => {},
    });
    const key = await ensureClientKey(home, { crew: "static", leaseId: newLeaseId() });
    const hosts: Record<string, unknown>[] = [];
    const leases: ProviderLease[] = [];
    for (let i = 1; i <= 6; i++) {
      const leaseId = newLeaseId();
      const box = await local.create({
        leaseId,
        crew: "static",
        slug: `host-${i}`,
        role: "host",
        expose: [],
        labels: encodeLabels({ leaseId, crew: "static", slug: `host-${i}` }),
        sshPublicKey: key.publicKey,
        sshKeyPath: key.keyPath,
      });
      leases.push(box);
      hosts.push({
        name: `rack${i}`,
        host: box.ssh!.host,
        port: box.ssh!.port,
        user: "root",
        identityFile: key.keyPath,
        hostKey: box.ssh!.hostKey,
      });
    }
    return {
      hosts,
      cleanup: async () => {
        const failed: string[] = [];
        for (const l of leases) {
          await local.delete(l).catch((e) => failed.push(`${l.leaseId}: ${(e as Error).message}`));
        }
        const ns = new Set(await netnsNames());
        failed.push(
          ...leases.filter((l) => ns.has(l.leaseId)).map((l) => `${l.leaseId}: netns left`),
        );
        if (failed.length === 0) await Deno.remove(home, { recursive: true }).catch(() => {});
        return failed;
      },
    };
  })();
}

runProviderConformance({
  name: "ssh",
  ignore: !enabled,
  sanitize: false,
  notApplicable: {
    credentials: NO_API,
    "rate-limit": NO_API,
    capacity:
      "a static inventory has no provider capacity; all hosts leased is no_free_host (exit 4)",
  },
  start: async (): Promise<ConformanceRig> => {
    const { hosts } = await backingHosts();
    const home = await Deno.makeTempDir({ prefix: "cbx-conf-ssh-" });
    const config = { hosts: hosts.map((h) => ({ ...h })) };
    const provider = createSshProvider({
      home,
      env: (k) => Deno.env.get(k),
      config,
      fetch,
      log: () => {},
    });
    let dead: Deno.TcpListener | undefined;
    return {
      provider,
      sleeps: [],
      key: async (owner, crew) =>
        await ensureClientKey(joinPath(home, "owners", owner), { crew, leaseId: newLeaseId() }),
      // What the ssh provider holds is its claims on the inventory.
      held: async () => {
        const dir = joinPath(home, "ssh-hosts");
        const out: string[] = [];
        try {
          for await (const e of Deno.readDir(dir)) {
            if (e.name.endsWith(".json")) out.push(e.name.slice(0, -5));
          }
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
        return out;
      },
      handedOut: async (l) => {
        const h = hosts.find((x) => x.name === l.providerId);
        if (!h) throw new Error(`no static host ${l.providerId}`);
        const ep = await verifiedEndpoint(l);
        if (ep.host !== h.host || ep.port !== h.port) {
          throw new Error("endpoint differs from the inventory");
        }
        return ep;
      },
      // A host that accepts TCP but never speaks SSH is first in line: the claim must be undone.
      failHalfwayNext: () => {
        dead = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        config.hosts.unshift({
          name: "dead",
          host: "127.0.0.1",
          port: dead.addr.port,
          user: "root",
        });
      },
      async [Symbol.asyncDispose]() {
        dead?.close();
        await Deno.remove(home, { recursive: true }).catch(() => {});
      },
    };
  },
});

Deno.test({
  name: "conformance ssh: backing hosts are removed",
  ignore: !enabled,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (backing) assert.deepEqual(await (await backing).cleanup(), [], "backing boxes removed");
  },
});
