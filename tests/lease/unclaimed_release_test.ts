// Issue 10: a box this home has no claim for (lost, or created by another
// machine of the same owner) is still found by id and by crew through every
// provider whose credentials are present; a provider without credentials is
// never asked, and a not-found says which ones were not.
import assert from "node:assert/strict";
import { findLease, listLeasesReport } from "../../lib/lease/leases.ts";
import { releaseCrew, releaseLease } from "../../lib/lease/release.ts";
import { leaseBox } from "../../lib/lease/create.ts";
import { parseConfig } from "../../lib/core/config.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";
import type { Provider } from "../../providers/types.ts";

/** A provider that fails the test if it is asked anything. */
function untouchable(name: string): Provider & { calls: string[] } {
  const calls: string[] = [];
  const no = (what: string) => {
    calls.push(what);
    return Promise.reject(new Error(`${name}.${what} must not be called without credentials`));
  };
  return {
    name,
    features: new Set(["cloud-init"]),
    calls,
    create: () => no("create"),
    list: () => no("list"),
    get: () => no("get"),
    delete: () => no("delete"),
    sshTarget: () => undefined,
  };
}

async function fixture() {
  const home = await Deno.makeTempDir({ prefix: "cbx-unclaimed-" });
  await Deno.chmod(home, 0o700);
  // hetzner's credentials are present, aws's are not.
  const vars: Record<string, string> = {
    CRABBOX_OWNER: "alice@example.com",
    HOME: home,
    HCLOUD_TOKEN: "test-token",
  };
  const hetzner = memoryProvider("hetzner");
  const aws = untouchable("aws");
  const options = {
    home,
    env: (k: string) => vars[k],
    config: await parseConfig("", `${home}/config.yaml`, () => undefined, {}),
    providers: { hetzner, aws },
    log: () => {},
  };
  return {
    home,
    options,
    hetzner,
    aws,
    [Symbol.asyncDispose]: () => Deno.remove(home, { recursive: true }),
  };
}

Deno.test("claim deleted: release --id finds the box at a provider with credentials and releases it; aws (no credentials) is never asked", async () => {
  await using f = await fixture();
  const lease = await leaseBox({ slug: "api", provider: "hetzner" }, {
    ...f.options,
    crew: "lost",
  });
  await Deno.remove(`${f.home}/claims/${lease.id}.json`);
  const found = await findLease(lease.id, f.options);
  assert.equal(found.id, lease.id);
  assert.equal(found.provider, "hetzner");
  const bySlug = await findLease("lost/api", f.options);
  assert.equal(bySlug.id, lease.id);
  await releaseLease(found, f.options);
  assert.equal(f.hetzner.boxes.size, 0, "the box was deleted at its provider");
  assert.deepEqual(f.aws.calls, []);
});

Deno.test("claims deleted: release --crew finds and releases every member; list shows them; aws is never asked", async () => {
  await using f = await fixture();
  const a = await leaseBox({ slug: "a", provider: "hetzner" }, { ...f.options, crew: "lost2" });
  const b = await leaseBox({ slug: "b", provider: "hetzner" }, { ...f.options, crew: "lost2" });
  await Deno.remove(`${f.home}/claims`, { recursive: true });
  const listed = await listLeasesReport({}, f.options);
  assert.deepEqual(listed.leases.map((l) => l.id).sort(), [a.id, b.id].sort());
  assert.ok(listed.unqueried.some((u) => u.provider === "aws"));
  assert.ok(!listed.unqueried.some((u) => u.provider === "hetzner" || u.provider === "local"));
  const r = await releaseCrew("lost2", f.options);
  assert.deepEqual(r.released.sort(), [a.id, b.id].sort());
  assert.deepEqual(r.failed, []);
  assert.equal(f.hetzner.boxes.size, 0);
  assert.deepEqual(f.aws.calls, []);
});

Deno.test("not found: the hint names the providers not queried for lack of credentials", async () => {
  await using f = await fixture();
  await assert.rejects(findLease("cbx-0123456789ab", f.options), (e) => {
    assert.ok(e instanceof CrabboxError);
    assert.equal(e.exitStatus, 3);
    assert.equal(e.message, 'no active lease "cbx-0123456789ab"');
    assert.match(e.hint ?? "", /^not queried for lack of credentials: .*\baws\b/);
    assert.doesNotMatch(e.hint ?? "", /\bhetzner\b|\blocal\b/);
    return true;
  });
  const r = await releaseCrew("nobody", f.options);
  assert.deepEqual(r.released, []);
  assert.ok(r.unqueried?.some((u) => u.provider === "aws"));
  assert.deepEqual(f.aws.calls, []);
});
