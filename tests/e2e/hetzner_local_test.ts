/**
 * A Hetzner-shaped lease over real SSH: the fake Hetzner API hands out the
 * address of a real `local` box as the server's public IPv4, so
 * `warmup --provider hetzner` → `run` → `crew connect` → a TCP round trip all
 * go through the Hetzner provider code and a real sshd.
 */
import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { requireE2E, startNameServer } from "./_local.ts";
import { startFakeHetzner } from "../fakes/hetzner.ts";
import { createLocalProvider } from "../../providers/local/mod.ts";
import { ensureClientKey } from "../../lib/ssh/keys.ts";
import { encodeLabels } from "../../lib/core/labels.ts";

const enabled = requireE2E();

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
    "e2e: warmup --provider hetzner against the fake API lands on a real box; connect reaches it",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-hz-" });
    const backingHome = await Deno.makeTempDir({ prefix: "cbx-hz-backing-" });
    const local = createLocalProvider({
      home: backingHome,
      env: (k) => Deno.env.get(k),
      config: {},
      fetch,
      log: () => {},
    });
    // The crew key crabbox will use for the Hetzner lease is authorized on the backing box.
    const key = await ensureClientKey(home, { crew: "hz", leaseId: "cbx-000000000000" });
    const backing = await local.create({
      leaseId: "cbx-0000000000bb",
      crew: "backing",
      slug: "hz-box",
      role: "hz-box",
      expose: [],
      labels: encodeLabels({ leaseId: "cbx-0000000000bb", crew: "backing", slug: "hz-box" }),
      sshPublicKey: key.publicKey,
      sshKeyPath: key.keyPath,
    });
    await using fake = startFakeHetzner({ onCreate: () => ({ ipv4: backing.ssh!.host }) });
    const env = { HCLOUD_TOKEN: fake.token, CRABBOX_HETZNER_API_URL: fake.url };
    try {
      await startNameServer(
        { ...backing.ssh!, keyPath: key.keyPath },
        key.keyPath,
        8080,
        "hello-from-hetzner",
      );
      await Deno.writeTextFile(
        `${home}/config.yaml`,
        `hetzner:\n  sshPort: ${backing.ssh!.port}\n  location: fsn1\n`,
      );
      const warm = await crabbox(home, [
        "warmup",
        "--crew",
        "hz",
        "--slug",
        "api",
        "--provider",
        "hetzner",
        "--expose",
        "8080",
        "--json",
      ], env);
      assert.equal(warm.code, 0, warm.stderr);
      const lease = JSON.parse(warm.stdout);
      assert.equal(lease.provider, "hetzner");
      assert.equal(lease.ssh.host, backing.ssh!.host);
      assert.equal(fake.servers.size, 1);
      const server = [...fake.servers.values()][0];
      assert.equal(server.labels.crew, "hz");
      assert.equal(server.labels["crabbox-expose"], "8080");
      assert.ok(String(server.userData ?? "").startsWith("#cloud-config"));

      const list = await crabbox(home, ["list", "--crew", "hz", "--json"], env);
      assert.deepEqual(
        JSON.parse(list.stdout).map((
          l: { slug: string; provider: string },
        ) => [l.slug, l.provider]),
        [["api", "hetzner"]],
      );
      const run = await crabbox(home, ["run", "--id", "hz/api", "--", "hostname"], env);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), "crabbox-hz-box");

      const connect = await crabbox(home, ["crew", "connect", "hz", "--export"], env);
      assert.equal(connect.code, 0, connect.stderr);
      const m = /^export CRABBOX_CREW_API_8080=127\.0\.0\.1:(\d+)$/m.exec(connect.stdout);
      assert.ok(m, connect.stdout);
      assert.equal(await readPort(Number(m[1])), "hello-from-hetzner");
      const disc = await crabbox(home, ["crew", "disconnect", "hz"], env);
      assert.equal(disc.code, 0, disc.stderr);

      const rel = await crabbox(home, ["release", "--crew", "hz"], env);
      assert.equal(rel.code, 0, rel.stderr);
      assert.equal(fake.servers.size, 0, "server deleted at Hetzner");
      assert.equal(fake.sshKeys.size, 0, "crew SSH key removed with the last server");
    } finally {
      await crabbox(home, ["crew", "disconnect", "hz"], env).catch(() => {});
      await local.delete(backing);
      await Deno.remove(home, { recursive: true }).catch(() => {});
      await Deno.remove(backingHome, { recursive: true }).catch(() => {});
    }
  },
});
