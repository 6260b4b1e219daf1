import assert from "node:assert/strict";
import { type Lease, loadClaim, saveClaim } from "../../lib/lease/claims.ts";
import { sshTargetExpired, withFreshSsh } from "../../lib/lease/refresh.ts";
import { resolveRuntime } from "../../lib/runtime.ts";
import { planCrew } from "../../lib/mesh/plan.ts";
import { runDoctor } from "../../lib/doctor/checks.ts";
import { parseConfig } from "../../lib/core/config.ts";
import { encodeLabels } from "../../lib/core/labels.ts";
import { ownerFor } from "../../lib/core/names.ts";
import type { Provider, SshTarget } from "../../providers/types.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

function lease(
  id: string,
  provider: string,
  slug: string,
  ssh: SshTarget,
  owner: string,
): Lease {
  return {
    id,
    provider,
    providerId: `p-${slug}`,
    crew: "gw",
    slug,
    role: slug,
    owner,
    labels: encodeLabels({ leaseId: id, crew: "gw", slug, expose: [8080], owner }),
    expose: [8080],
    ssh,
    tailscale: false,
    createdAt: new Date().toISOString(),
    state: "active",
  };
}

async function fixture() {
  const home = await Deno.makeTempDir({ prefix: "cbx-refresh-" });
  const refreshed: string[] = [];
  const gw = memoryProvider("gateway", ["ssh"]);
  const gateway: Provider = {
    ...gw,
    name: "gateway",
    refreshSsh(l) {
      refreshed.push(l.leaseId);
      return Promise.resolve({
        ...l.ssh!,
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      });
    },
  };
  const noFwd = memoryProvider("proxied", ["ssh", "no-port-forward"]);
  const env = (k: string) => (k === "CRABBOX_OWNER" ? "alice@example.com" : undefined);
  const owner = await ownerFor({ env });
  const options = {
    home,
    env,
    config: await parseConfig("", `${home}/config.yaml`, () => undefined, {}),
    providers: { gateway, proxied: noFwd },
    log: () => {},
  };
  const old = new Date(Date.now() - 1000).toISOString();
  const a = lease("cbx-00000000000a", "gateway", "api", {
    host: "127.0.0.1",
    port: 2222,
    user: "",
    userFile: `${home}/keys/cbx-00000000000a/ssh_user.conf`,
    expiresAt: old,
  }, owner);
  const b = lease("cbx-00000000000b", "proxied", "db", {
    host: "127.0.0.1",
    port: 22,
    user: "root",
  }, owner);
  await saveClaim(home, a);
  await saveClaim(home, b);
  for (const [p, l] of [[gw, a], [noFwd, b]] as const) {
    p.boxes.set(l.providerId, {
      providerId: l.providerId,
      leaseId: l.id,
      labels: l.labels,
      state: "running",
    });
  }
  return {
    home,
    options,
    refreshed,
    a,
    b,
    [Symbol.asyncDispose]: () => Deno.remove(home, { recursive: true }),
  };
}

Deno.test("expiring SSH targets are renewed through the provider and the claim keeps the new target", async () => {
  await using t = await fixture();
  assert.equal(sshTargetExpired(t.a.ssh, Date.now()), true);
  assert.equal(sshTargetExpired(t.b.ssh, Date.now()), false);
  const rt = await resolveRuntime(t.options);
  const fresh = await withFreshSsh(t.a, rt);
  assert.deepEqual(t.refreshed, [t.a.id]);
  assert.ok(Date.parse(fresh.ssh!.expiresAt!) > Date.now() + 3_000_000);
  assert.equal((await loadClaim(t.home, t.a.id))!.ssh!.expiresAt, fresh.ssh!.expiresAt);
  assert.equal(await withFreshSsh(t.b, rt), t.b, "a target without expiry is left alone");
});

Deno.test("crew connect plan and doctor name members whose SSH path cannot forward ports", async () => {
  await using t = await fixture();
  const plan = await planCrew("gw", t.options);
  assert.deepEqual(plan.members.map((m) => m.lease.slug), ["api"]);
  assert.equal(plan.skipped.length, 1);
  assert.equal(plan.skipped[0].lease.slug, "db");
  assert.match(plan.skipped[0].reason, /proxied's SSH path cannot forward ports/);
  assert.ok(t.refreshed.includes(t.a.id), "planning renewed the expired gateway target");
  const report = await runDoctor({ ...t.options, crew: "gw" });
  const rows = report.members!;
  assert.deepEqual(rows.map((r) => [r.slug, r.portForward]), [["api", true], ["db", false]]);
  const check = report.checks.find((c) => c.name === "port-forward")!;
  assert.equal(check.status, "warn");
  assert.match(check.message, /db \(proxied\): SSH path cannot forward ports/);
});
