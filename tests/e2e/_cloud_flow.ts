/**
 * The e2e flow every cloud provider goes through on a real box: the
 * provider's fake API hands out the address of a real `local` box as the
 * VM's public IP (or, for providers reached another way, an endpoint the
 * fake builds in front of that box: a port relay, a token gateway, a CI
 * agent), then the real CLI runs `warmup` → `list` → `run` →
 * `doctor --online` → `crew connect --export` + a TCP round trip →
 * `release`, and the fake must hold nothing afterwards.
 *
 * @module
 */
import assert from "node:assert/strict";
import { encodeLabels } from "../../lib/core/labels.ts";
import { newLeaseId } from "../../lib/core/names.ts";
import { ensureClientKey } from "../../lib/ssh/mod.ts";
import { createLocalProvider } from "../../providers/local/mod.ts";
import type { SshTarget } from "../../providers/types.ts";
import { crabbox } from "./_cli.ts";
import { startNameServer } from "./_local.ts";
import { feedUserData, installStandins } from "./_standins.ts";

/** A provider's fake, started for one real backing box. */
export interface CloudFlowFake extends AsyncDisposable {
  /** Env that points the provider at the fake. */
  env: Record<string, string>;
  /** The provider's config section (YAML lines under `<provider>:`), besides `sshPort`/`sshUser`. */
  config?: string[];
  /** What the fake still holds. */
  held(): string[];
  /** Read-only calls the fake has answered (for `doctor --online`). */
  listCalls(): number;
  /** Provider-side checks on the one box it holds (user data, labels). */
  checkBox(): void;
  /**
   * The user-data of the one box it holds, once created (the box's stand-in
   * cloud-init applies it); absent for providers without cloud-init.
   */
  userData?(): string | undefined;
  /** The SSH endpoint the lease must get (default: the backing box's address). */
  endpoint?: { host: string; port: number; user: string };
  /** Extra checks after `run` (home, env). */
  afterRun?(home: string, env: Record<string, string>): Promise<void>;
  /** Extra checks after release (home). */
  afterRelease?(home: string): Promise<void>;
}

/** The real box behind a flow. */
export interface BackingBox {
  /** Its SSH endpoint (root, the crew key). */
  ssh: SshTarget;
  /** Its network namespace (for stand-ins inside it). */
  netns: string;
  /** Its hostname (`crabbox-<provider>-box`). */
  hostname: string;
}

/** One provider's e2e. */
export interface CloudFlow {
  /** Provider name. */
  provider: string;
  /** Crew name. */
  crew: string;
  /** Start the fake so that every new VM gets `backing`'s address. */
  startFake(backing: SshTarget, home: string, box: BackingBox): Promise<CloudFlowFake>;
  /** Whether the provider's config takes `sshPort`/`sshUser` (default true). */
  sshConfig?: boolean;
}

/** Read everything a TCP service on 127.0.0.1:`port` sends. */
export async function readPort(port: number): Promise<string> {
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

/**
 * Run the flow.
 *
 * @example
 * ```ts
 * import { runCloudFlow } from "./_cloud_flow.ts";
 * // await runCloudFlow({ provider: "gcp", crew: "gc", startFake: async (b) => ({ ... }) });
 * ```
 */
export async function runCloudFlow(flow: CloudFlow): Promise<void> {
  const { provider, crew } = flow;
  const home = await Deno.makeTempDir({ prefix: `cbx-${provider}-` });
  const backingHome = await Deno.makeTempDir({ prefix: `cbx-${provider}-backing-` });
  const local = createLocalProvider({
    home: backingHome,
    env: (k) => Deno.env.get(k),
    // The backing box plays a VM: its own /etc, /usr/local, /var, /run for the stand-ins.
    config: { privateSystem: true },
    fetch,
    log: () => {},
  });
  // The crew key crabbox will use for the lease is authorized on the backing box.
  const key = await ensureClientKey(home, { crew, leaseId: "cbx-000000000000" });
  // A fresh lease id: the netns name is machine-wide, and other runs may be going on.
  const backingId = newLeaseId();
  const backing = await local.create({
    leaseId: backingId,
    crew: "backing",
    slug: `${provider}-box`,
    role: `${provider}-box`,
    expose: [],
    labels: encodeLabels({ leaseId: backingId, crew: "backing", slug: `${provider}-box` }),
    sshPublicKey: key.publicKey,
    sshKeyPath: key.keyPath,
  });
  const fake = await flow.startFake(backing.ssh!, home, {
    ssh: { ...backing.ssh!, keyPath: key.keyPath },
    netns: backing.providerId,
    hostname: `crabbox-${provider}-box`,
  }).catch(async (e) => {
    await local.delete(backing);
    throw e;
  });
  const env = fake.env;
  const userDataPath = `${backingHome}/user-data`;
  const feeding = new AbortController();
  try {
    const userData = fake.userData?.bind(fake);
    if (userData) {
      await installStandins(
        { ...backing.ssh!, keyPath: key.keyPath },
        `${backingHome}/test_known_hosts`,
        { userData: userDataPath },
      );
    }
    const fed = userData ? feedUserData(userData, userDataPath, feeding.signal) : undefined;
    await startNameServer(
      { ...backing.ssh!, keyPath: key.keyPath },
      key.keyPath,
      8080,
      `hello-from-${provider}`,
    );
    const config = [
      ...(flow.sshConfig === false ? [] : [`sshPort: ${backing.ssh!.port}`, "sshUser: root"]),
      ...(fake.config ?? []),
    ];
    // The section names the provider in config, so `doctor --online` checks it.
    await Deno.writeTextFile(
      `${home}/config.yaml`,
      config.length > 0
        ? [`${provider}:`, ...config.map((l) => `  ${l}`), ""].join("\n")
        : `${provider}: {}\n`,
    );
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
    if (fed) {
      await fed;
      // warmup returned after the box's first boot (the stand-in cloud-init) finished.
      assert.match(warm.stderr, /waiting for its first boot/);
    }
    const lease = JSON.parse(warm.stdout);
    assert.equal(lease.provider, provider);
    const endpoint = fake.endpoint ?? { host: backing.ssh!.host, port: backing.ssh!.port };
    assert.equal(lease.ssh.host, endpoint.host);
    assert.equal(lease.ssh.port, endpoint.port);
    if (fake.endpoint) assert.equal(lease.ssh.user, fake.endpoint.user);
    fake.checkBox();

    const list = await crabbox(home, ["list", "--crew", crew, "--json"], env);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).map((l: { slug: string; provider: string }) => [l.slug, l.provider]),
      [["api", provider]],
    );
    const run = await crabbox(home, ["run", "--id", `${crew}/api`, "--", "hostname"], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), `crabbox-${provider}-box`);
    await fake.afterRun?.(home, env);

    const before = fake.listCalls();
    const doctor = await crabbox(home, ["doctor", "--online", "--json"], env);
    const providers = JSON.parse(doctor.stdout).checks.find((c: { name: string }) =>
      c.name === "providers"
    );
    assert.match(
      JSON.stringify(providers),
      new RegExp(`"${provider}":"ok \\(online\\)"`),
      doctor.stdout,
    );
    assert.equal(fake.listCalls() - before, 1, "doctor --online makes one read-only list call");

    const connect = await crabbox(home, ["crew", "connect", crew, "--export"], env);
    assert.equal(connect.code, 0, connect.stderr);
    // ssh started from the claims and the provider's list confirmed them: nothing restarted
    assert.doesNotMatch(connect.stderr, /list other members/);
    const m = /^export CRABBOX_CREW_API_8080=127\.0\.0\.1:(\d+)$/m.exec(connect.stdout);
    assert.ok(m, connect.stdout);
    assert.equal(await readPort(Number(m[1])), `hello-from-${provider}`);
    const disc = await crabbox(home, ["crew", "disconnect", crew], env);
    assert.equal(disc.code, 0, disc.stderr);

    const rel = await crabbox(home, ["crew", "release", crew], env);
    assert.equal(rel.code, 0, rel.stderr);
    assert.deepEqual(fake.held(), [], `${provider}: the fake holds nothing after release`);
    await fake.afterRelease?.(home);
  } finally {
    feeding.abort();
    await crabbox(home, ["crew", "disconnect", crew], env).catch(() => {});
    await fake[Symbol.asyncDispose]();
    await local.delete(backing);
    await Deno.remove(home, { recursive: true }).catch(() => {});
    await Deno.remove(backingHome, { recursive: true }).catch(() => {});
  }
}
