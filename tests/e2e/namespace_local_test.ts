/**
 * A Namespace lease over real SSH through the proxy seam: the fake Compute
 * API (Connect JSON) boots an "instance" by writing its
 * `experimental.authorizedSshKeys` into a real `local` box's authorized_keys,
 * and its `ssh` service endpoint (PROXY_OVER_SECURE_WEBSOCKET) bridges to that
 * box's sshd. `warmup --provider namespace` → `run` → `crew connect --export`
 * + a TCP round trip → `release` all go through `crabbox proxy`.
 */
import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { requireE2E, startNameServer } from "./_local.ts";
import { startFakeNamespace } from "../fakes/namespace.ts";
import { createLocalProvider, localBoxDir } from "../../providers/local/mod.ts";
import { ensureClientKey } from "../../lib/ssh/mod.ts";
import { encodeLabels } from "../../lib/core/mod.ts";
import { newLeaseId } from "../../lib/core/mod.ts";

const enabled = requireE2E();

// Read everything a TCP service sends.
async function readPort(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const buf = new Uint8Array(256);
  let text = "";
  while (true) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  conn.close();
  return text.trim();
}

Deno.test({
  name:
    "e2e: warmup --provider namespace authorizes the crew key and reaches sshd through the ingress via crabbox proxy",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-ns-" });
    const backingHome = await Deno.makeTempDir({ prefix: "cbx-ns-backing-" });
    const local = createLocalProvider({
      home: backingHome,
      env: (k) => Deno.env.get(k),
      config: {},
      fetch,
      log: () => {},
    });
    // The backing box starts with its own key only: the crew key gets there through the exec.
    const backingId = newLeaseId();
    const backingKey = await ensureClientKey(backingHome, {
      crew: "backing",
      leaseId: backingId,
    });
    const backing = await local.create({
      leaseId: backingId,
      crew: "backing",
      slug: "ns-box",
      role: "ns-box",
      expose: [],
      labels: encodeLabels({ leaseId: backingId, crew: "backing", slug: "ns-box" }),
      sshPublicKey: backingKey.publicKey,
      sshKeyPath: backingKey.keyPath,
    });
    await using fake = startFakeNamespace({
      bridge: () => ({ hostname: backing.ssh!.host, port: backing.ssh!.port }),
      authorizedKeysFile: () => `${localBoxDir(backingHome, backing.leaseId)}/authorized_keys`,
    });
    await Deno.writeTextFile(
      `${backingHome}/token.json`,
      JSON.stringify({ bearer_token: fake.token }),
    );
    const env = {
      NSC_TOKEN_FILE: `${backingHome}/token.json`,
      CRABBOX_NAMESPACE_API_URL: fake.url,
    };
    try {
      await startNameServer(backing.ssh!, backingKey.keyPath, 8080, "hello-from-namespace");
      const warm = await crabbox(home, [
        "warmup",
        "--crew",
        "ns",
        "--slug",
        "api",
        "--provider",
        "namespace",
        "--expose",
        "8080",
        "--json",
      ], env);
      assert.equal(warm.code, 0, warm.stderr);
      const lease = JSON.parse(warm.stdout);
      assert.equal(lease.provider, "namespace");
      assert.equal(fake.instances.size, 1);
      const inst = [...fake.instances.values()][0];
      assert.equal(inst.status, "RUNNING");
      assert.ok(inst.labels.some((l) => l.name === "crew" && l.value === "ns"));
      assert.ok(fake.ingressConnections >= 1, "ssh went through the ingress");
      assert.ok(inst.extensions.length >= 1, "each connection extends the deadline");
      assert.ok(!warm.stdout.includes(fake.token) && !warm.stderr.includes(fake.token));

      const run = await crabbox(home, ["run", "--id", "ns/api", "--", "hostname"], env);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), "crabbox-ns-box");

      const connect = await crabbox(home, ["crew", "connect", "ns", "--export"], env);
      assert.equal(connect.code, 0, connect.stderr);
      const m = /^export CRABBOX_CREW_API_8080=127\.0\.0\.1:(\d+)$/m.exec(connect.stdout);
      assert.ok(m, connect.stdout);
      assert.equal(await readPort(Number(m[1])), "hello-from-namespace");
      const doctor = await crabbox(home, ["doctor", "--crew", "ns", "--json"], env);
      assert.ok(!doctor.stdout.includes(fake.token) && !doctor.stderr.includes(fake.token));
      const mesh = JSON.parse(doctor.stdout).checks.find((c: { name: string }) =>
        c.name === "crew-mesh"
      );
      assert.equal(mesh?.status, "ok", JSON.stringify(mesh));
      const disc = await crabbox(home, ["crew", "disconnect", "ns"], env);
      assert.equal(disc.code, 0, disc.stderr);

      const rel = await crabbox(home, ["release", "--crew", "ns"], env);
      assert.equal(rel.code, 0, rel.stderr);
      assert.equal(fake.instances.size, 0, "instance destroyed");
    } finally {
      await crabbox(home, ["crew", "disconnect", "ns"], env).catch(() => {});
      await local.delete(backing);
      await Deno.remove(home, { recursive: true }).catch(() => {});
      await Deno.remove(backingHome, { recursive: true }).catch(() => {});
    }
  },
});
