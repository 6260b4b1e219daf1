/**
 * A Sprites lease over real SSH through the proxy seam: the fake Sprites API
 * runs the sshd install script over its exec WebSocket stand-in (which
 * authorizes the crew key on a real `local` box) and bridges its proxy
 * WebSocket to that box's sshd. `warmup --provider sprites` → `run` →
 * `crew connect --export` + a TCP round trip → `release` all go through
 * `crabbox proxy` as ssh's ProxyCommand.
 *
 * What this cannot exercise here: a real package install (sshd is already
 * on this machine, so the script skips apt-get), `sprite-env` (a recording
 * shim), and hibernation.
 */
import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { requireE2E, startNameServer } from "./_local.ts";
import { startFakeSprites } from "../fakes/sprites.ts";
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
    "e2e: warmup --provider sprites installs sshd over exec and reaches it through crabbox proxy",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-sp-" });
    const backingHome = await Deno.makeTempDir({ prefix: "cbx-sp-backing-" });
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
      slug: "sp-box",
      role: "sp-box",
      expose: [],
      labels: encodeLabels({ leaseId: backingId, crew: "backing", slug: "sp-box" }),
      sshPublicKey: backingKey.publicKey,
      sshKeyPath: backingKey.keyPath,
    });
    await using fake = startFakeSprites({
      bridge: () => ({ hostname: backing.ssh!.host, port: backing.ssh!.port }),
      authorizedKeysFile: () => `${localBoxDir(backingHome, backing.leaseId)}/authorized_keys`,
    });
    const env = { SPRITES_TOKEN: fake.token, CRABBOX_SPRITES_API_URL: fake.url };
    try {
      await startNameServer(backing.ssh!, backingKey.keyPath, 8080, "hello-from-sprites");
      await Deno.writeTextFile(`${home}/config.yaml`, "sprites:\n  sshUser: root\n");
      const warm = await crabbox(home, [
        "warmup",
        "--crew",
        "sp",
        "--slug",
        "api",
        "--provider",
        "sprites",
        "--expose",
        "8080",
        "--json",
      ], env);
      assert.equal(warm.code, 0, warm.stderr);
      const lease = JSON.parse(warm.stdout);
      assert.equal(lease.provider, "sprites");
      assert.equal(fake.sprites.size, 1);
      const sprite = [...fake.sprites.values()][0];
      assert.equal(sprite.execs.length, 1, "sshd installed through one exec");
      assert.deepEqual(sprite.services, ["sshd"]);
      assert.ok(fake.proxyHellos.length >= 1, "ssh went through the proxy");
      assert.ok(!warm.stdout.includes(fake.token) && !warm.stderr.includes(fake.token));

      const run = await crabbox(home, ["run", "--id", "sp/api", "--", "hostname"], env);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), "crabbox-sp-box");

      const connect = await crabbox(home, ["crew", "connect", "sp", "--export"], env);
      assert.equal(connect.code, 0, connect.stderr);
      const m = /^export CRABBOX_CREW_API_8080=127\.0\.0\.1:(\d+)$/m.exec(connect.stdout);
      assert.ok(m, connect.stdout);
      assert.equal(await readPort(Number(m[1])), "hello-from-sprites");
      // While crew connect holds the member's ControlMaster, run goes through it:
      // no new proxy connection is opened.
      const hellos = fake.proxyHellos.length;
      const again = await crabbox(home, ["run", "--id", "sp/api", "--", "hostname"], env);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout.trim(), "crabbox-sp-box");
      assert.equal(fake.proxyHellos.length, hellos, "run reused the ControlMaster");
      const doctor = await crabbox(home, ["doctor", "--crew", "sp", "--json"], env);
      assert.ok(!doctor.stdout.includes(fake.token) && !doctor.stderr.includes(fake.token));
      const mesh = JSON.parse(doctor.stdout).checks.find((c: { name: string }) =>
        c.name === "crew-mesh"
      );
      assert.equal(mesh?.status, "ok", JSON.stringify(mesh));
      const disc = await crabbox(home, ["crew", "disconnect", "sp"], env);
      assert.equal(disc.code, 0, disc.stderr);

      const rel = await crabbox(home, ["release", "--crew", "sp"], env);
      assert.equal(rel.code, 0, rel.stderr);
      assert.equal(fake.sprites.size, 0, "sprite deleted");
    } finally {
      await crabbox(home, ["crew", "disconnect", "sp"], env).catch(() => {});
      await local.delete(backing);
      await Deno.remove(home, { recursive: true }).catch(() => {});
      await Deno.remove(backingHome, { recursive: true }).catch(() => {});
    }
  },
});
