/**
 * An exe.dev lease over real SSH: the fake exe.dev API answers `new` with an
 * `ssh_dest` of `root@<a real local box>`, and the box authorizes only the
 * user's own key (what exe.dev's SSH router does with keys registered on the
 * account), not the crew key. `warmup --provider exe-dev` → `run` →
 * `crew connect --export` + a TCP round trip → `release`.
 */
import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { requireE2E, startNameServer } from "./_local.ts";
import { startFakeExedev } from "../fakes/exedev.ts";
import { createLocalProvider } from "../../providers/local/mod.ts";
import { ensureClientKey } from "../../lib/ssh/mod.ts";
import { encodeLabels, newLeaseId } from "../../lib/core/mod.ts";

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
    "e2e: warmup --provider exe-dev reaches ssh_dest with the user's own key; connect reaches it",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-exe-" });
    const userHome = await Deno.makeTempDir({ prefix: "cbx-exe-user-" });
    const local = createLocalProvider({
      home: userHome,
      env: (k) => Deno.env.get(k),
      config: {},
      fetch,
      log: () => {},
    });
    // "The user's own identity": a key that only the user has, registered with "exe.dev".
    const backingId = newLeaseId();
    const own = await ensureClientKey(userHome, { crew: "me", leaseId: backingId });
    const backing = await local.create({
      leaseId: backingId,
      crew: "me",
      slug: "exe-box",
      role: "exe-box",
      expose: [],
      labels: encodeLabels({ leaseId: backingId, crew: "me", slug: "exe-box" }),
      sshPublicKey: own.publicKey,
      sshKeyPath: own.keyPath,
    });
    await using fake = startFakeExedev({ sshDest: () => `root@${backing.ssh!.host}` });
    const env = { EXE_TOKEN: fake.token, CRABBOX_EXEDEV_API_URL: fake.url };
    try {
      await startNameServer(backing.ssh!, own.keyPath, 8080, "hello-from-exedev");
      await Deno.writeTextFile(
        `${home}/config.yaml`,
        `exe-dev:\n  sshPort: ${backing.ssh!.port}\n  identityFile: ${own.keyPath}\n`,
      );
      const warm = await crabbox(home, [
        "warmup",
        "--crew",
        "ex",
        "--slug",
        "api",
        "--provider",
        "exe-dev",
        "--expose",
        "8080",
        "--json",
      ], env);
      assert.equal(warm.code, 0, warm.stderr);
      const lease = JSON.parse(warm.stdout);
      assert.equal(lease.provider, "exe-dev");
      assert.equal(lease.ssh.host, backing.ssh!.host);
      assert.equal(fake.vms.size, 1);
      const vm = [...fake.vms.values()][0];
      assert.ok(vm.tags.includes("crabbox-crew-ex"), JSON.stringify(vm.tags));
      assert.doesNotMatch(vm.vm_name, /-[0-9]+$/);

      const run = await crabbox(home, ["run", "--id", "ex/api", "--", "hostname"], env);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), "crabbox-exe-box");

      const connect = await crabbox(home, ["crew", "connect", "ex", "--export"], env);
      assert.equal(connect.code, 0, connect.stderr);
      const m = /^export CRABBOX_CREW_API_8080=127\.0\.0\.1:(\d+)$/m.exec(connect.stdout);
      assert.ok(m, connect.stdout);
      assert.equal(await readPort(Number(m[1])), "hello-from-exedev");
      const disc = await crabbox(home, ["crew", "disconnect", "ex"], env);
      assert.equal(disc.code, 0, disc.stderr);

      const tail = await crabbox(home, [
        "warmup",
        "--crew",
        "ex",
        "--slug",
        "t",
        "--provider",
        "exe-dev",
        "--tailscale",
      ], env);
      assert.equal(tail.code, 2, tail.stderr);

      const rel = await crabbox(home, ["release", "--crew", "ex"], env);
      assert.equal(rel.code, 0, rel.stderr);
      assert.equal(fake.vms.size, 0, "VM removed at exe.dev");
    } finally {
      await crabbox(home, ["crew", "disconnect", "ex"], env).catch(() => {});
      await local.delete(backing);
      await Deno.remove(home, { recursive: true }).catch(() => {});
      await Deno.remove(userHome, { recursive: true }).catch(() => {});
    }
  },
});
