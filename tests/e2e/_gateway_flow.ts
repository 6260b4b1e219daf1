/**
 * The e2e flow of providers whose boxes are not "root@public-ip:22" with the
 * crew key (exe.dev: the user's own key at a gateway; Sprites and Namespace:
 * a WebSocket proxy, the crew key put on the box by the provider). A real
 * `local` box stands behind the provider's fake and starts with one key of
 * its own only; the real CLI runs `warmup` → `run` → `crew connect --export`
 * + a TCP round trip → `run` again through the crew's ControlMaster →
 * `doctor --crew` → `warmup --tailscale` (refused) → `release`, and the fake
 * must hold nothing afterwards.
 *
 * @module
 */
import assert from "node:assert/strict";
import { encodeLabels, newLeaseId } from "../../lib/core/mod.ts";
import { ensureClientKey } from "../../lib/ssh/mod.ts";
import { createLocalProvider, localBoxDir } from "../../providers/local/mod.ts";
import type { SshTarget } from "../../providers/types.ts";
import { crabbox } from "./_cli.ts";
import { readPort } from "./_cloud_flow.ts";
import { startNameServer } from "./_local.ts";

/** The real box behind the fake. */
export interface BackingBox {
  /** Its sshd. */
  target: SshTarget;
  /** The one key it authorizes at first (a user's own key, or the box's). */
  keyPath: string;
  /** Its authorized_keys file (what a provider-side key install writes). */
  authorizedKeysFile: string;
}

/** A provider's fake, started for one backing box. */
export interface GatewayFake extends AsyncDisposable {
  /** Env that points the provider at the fake. */
  env: Record<string, string>;
  /** The token, which must never show in output. */
  secret: string;
  /** What the fake still holds. */
  held(): string[];
  /** Connections the fake's proxy has accepted (proxied providers). */
  proxyConnections?(): number;
  /** Provider-side checks on the one box it holds, after warmup. */
  checkBox(lease: { ssh: SshTarget }): void;
}

/** One provider's flow. */
export interface GatewayFlow {
  /** Provider name. */
  provider: string;
  /** Crew name. */
  crew: string;
  /** config.yaml for the lease. */
  config(box: BackingBox): string;
  /** Start the fake for the box. */
  startFake(box: BackingBox): Promise<GatewayFake>;
}

/** Run the flow (root + local-provider prerequisites). */
export async function runGatewayFlow(flow: GatewayFlow): Promise<void> {
  const { provider, crew } = flow;
  const home = await Deno.makeTempDir({ prefix: `cbx-${provider}-` });
  const backingHome = await Deno.makeTempDir({ prefix: `cbx-${provider}-backing-` });
  const local = createLocalProvider({
    home: backingHome,
    env: (k) => Deno.env.get(k),
    config: {},
    fetch,
    log: () => {},
  });
  const id = newLeaseId();
  const own = await ensureClientKey(backingHome, { crew: "backing", leaseId: id });
  const box = await local.create({
    leaseId: id,
    crew: "backing",
    slug: `${provider}-box`,
    role: `${provider}-box`,
    expose: [],
    labels: encodeLabels({ leaseId: id, crew: "backing", slug: `${provider}-box` }),
    sshPublicKey: own.publicKey,
    sshKeyPath: own.keyPath,
  });
  const backing: BackingBox = {
    target: box.ssh!,
    keyPath: own.keyPath,
    authorizedKeysFile: `${localBoxDir(backingHome, id)}/authorized_keys`,
  };
  const fake = await flow.startFake(backing);
  const env = fake.env;
  const noSecret = (r: { stdout: string; stderr: string }) =>
    assert.ok(!`${r.stdout}${r.stderr}`.includes(fake.secret), "the token never shows");
  try {
    await startNameServer(backing.target, own.keyPath, 8080, `hello-from-${provider}`);
    await Deno.writeTextFile(`${home}/config.yaml`, flow.config(backing));
    const warm = await crabbox(home, [
      "warmup",
      "--crew",
      crew,
      "--slug",
      "api",
      "--provider",
      provider,
      "--expose",
      "8080",
      "--json",
    ], env);
    assert.equal(warm.code, 0, warm.stderr);
    noSecret(warm);
    const lease = JSON.parse(warm.stdout);
    assert.equal(lease.provider, provider);
    fake.checkBox(lease);

    const run = await crabbox(home, ["run", "--id", `${crew}/api`, "--", "hostname"], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `crabbox-${provider}-box`);

    const connect = await crabbox(home, ["crew", "connect", crew, "--export"], env);
    assert.equal(connect.code, 0, connect.stderr);
    // ssh started from the claims and the provider's list confirmed them: nothing restarted
    assert.doesNotMatch(connect.stderr, /list other members/);
    const m = /^export CRABBOX_CREW_API_8080=127\.0\.0\.1:(\d+)$/m.exec(connect.stdout);
    assert.ok(m, connect.stdout);
    assert.equal(await readPort(Number(m[1])), `hello-from-${provider}`);
    // While crew connect holds the member's ControlMaster, run goes through it.
    const proxied = fake.proxyConnections?.();
    const again = await crabbox(home, ["run", "--id", `${crew}/api`, "--", "hostname"], env);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), `crabbox-${provider}-box`);
    if (proxied !== undefined) {
      assert.equal(fake.proxyConnections!(), proxied, "run reused the ControlMaster");
    }
    const doctor = await crabbox(home, ["doctor", "--crew", crew, "--json"], env);
    noSecret(doctor);
    const mesh = JSON.parse(doctor.stdout).checks.find((c: { name: string }) =>
      c.name === "crew-mesh"
    );
    assert.equal(mesh?.status, "ok", JSON.stringify(mesh));
    const disc = await crabbox(home, ["crew", "disconnect", crew], env);
    assert.equal(disc.code, 0, disc.stderr);

    const tail = await crabbox(home, [
      "warmup",
      "--crew",
      crew,
      "--slug",
      "ts",
      "--provider",
      provider,
      "--tailscale",
    ], env);
    assert.equal(tail.code, 2, tail.stderr);

    const rel = await crabbox(home, ["release", "--crew", crew], env);
    assert.equal(rel.code, 0, rel.stderr);
    assert.deepEqual(fake.held(), [], `${provider}: the fake holds nothing after release`);
  } finally {
    await crabbox(home, ["crew", "disconnect", crew], env).catch(() => {});
    await fake[Symbol.asyncDispose]();
    await local.delete(box);
    await Deno.remove(home, { recursive: true }).catch(() => {});
    await Deno.remove(backingHome, { recursive: true }).catch(() => {});
  }
}
