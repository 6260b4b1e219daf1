/**
 * The provider conformance suite: one set of behaviours every provider must
 * show against its fake (or, for `local`/`ssh`, against real boxes).
 *
 * A provider's test file supplies a {@link ConformanceHarness} — how to start
 * its fake and build the provider against it, plus the fake-side views and
 * fault hooks — and calls {@link runProviderConformance}, which registers one
 * `Deno.test` per case:
 *
 * | case            | what must hold |
 * |-----------------|----------------|
 * | `lifecycle`     | create with reserved labels, `--expose`, user data and the crew key → list by crew returns exactly it → its labels give the same `Lease` (crew, slug, role, expose, lease id, owner) → the SSH endpoint is the one the fake handed out → the box got the user data and the key → a second box, delete the first → the second is untouched and shared resources stay → delete the last → list is empty and the fake holds nothing |
 * | `pagination`    | with the fake's page size 2, five boxes of a crew are all listed (and more than one page was read) |
 * | `owners`        | two crews with the same name but different owners: each box keeps its owner and its own key; deleting one leaves the other box and what it needs |
 * | `credentials`   | bad credentials → exit 9, the message names the variable and never the secret |
 * | `rate-limit`    | a 429 is waited out for what the provider's header says (bounded: a huge value waits at most 60 s); a provider whose throttling answer has no header (EC2) must back off, bounded |
 * | `capacity`      | a capacity/quota refusal → exit 4 with the provider's own words, nothing left |
 * | `half-way`      | a create that fails after making something leaves nothing behind, or its error names exactly what it left |
 *
 * "Empty" lists ignore boxes in state `deleting` (a provider may report a
 * deleted box until it is really gone); the fake's `held()` must be empty.
 *
 * A case a provider cannot have (no HTTP API → no 429) is listed in
 * `notApplicable` with the reason; it shows up as an ignored test whose name
 * carries that reason, never as a silent pass.
 *
 * @example
 * ```ts
 * import { runProviderConformance } from "./conformance.ts";
 * runProviderConformance({
 *   name: "hetzner",
 *   start: async (o) => {
 *     // start the fake with page size o.pageSize, build the provider with injected env,
 *     // fetch and sleep, return the rig (views + fault hooks)
 *     throw new Error("see tests/providers/hetzner/conformance_test.ts");
 *   },
 * });
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { CrabboxError } from "../../lib/core/errors.ts";
import { encodeLabels } from "../../lib/core/labels.ts";
import { newLeaseId, roleOf } from "../../lib/core/names.ts";
import { leaseFromProvider } from "../../lib/lease/leases.ts";
import type { CreateSpec, Provider, ProviderLease } from "../../providers/types.ts";
import { fakePublicKey } from "./cloud_helpers.ts";

/** The cases of the suite. */
export type ConformanceCase =
  | "lifecycle"
  | "pagination"
  | "owners"
  | "credentials"
  | "rate-limit"
  | "capacity"
  | "half-way";

/** Every case, in the order they run. */
export const CONFORMANCE_CASES: readonly ConformanceCase[] = [
  "lifecycle",
  "pagination",
  "owners",
  "credentials",
  "rate-limit",
  "capacity",
  "half-way",
];

/** A crew key for a box: the public line to authorize and the private key path. */
export interface ConformanceKey {
  /** `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
  /** Private key path. */
  keyPath: string;
}

/** What {@link ConformanceHarness.start} is asked for. */
export interface RigOptions {
  /** The fake's largest page (the suite uses 2 for `pagination`). */
  pageSize?: number;
  /** `"bad"`: build the provider with credentials the fake rejects. */
  credentials?: "good" | "bad";
}

/** A started fake plus the provider built against it. Disposing stops the fake. */
export interface ConformanceRig extends AsyncDisposable {
  /** The provider, built with injected env, fetch, sleep and SSH wait. */
  provider: Provider;
  /** Delays (ms) the provider asked its injected sleep for, in order. */
  sleeps: number[];
  /** A crew key for `owner` (cloud fakes: a random valid key; real boxes: a real key). */
  key(owner: string, crew: string): Promise<ConformanceKey>;
  /** What the fake still holds (one description per resource); `[]` when nothing. */
  held(): string[] | Promise<string[]>;
  /** The SSH endpoint the fake handed out for the box behind `lease`. */
  handedOut(
    lease: ProviderLease,
  ): { host: string; port: number } | Promise<{ host: string; port: number }>;
  /** What reached the box: user data (if the provider has cloud-init) and authorized keys. */
  delivered?(
    lease: ProviderLease,
  ):
    | { userData?: string; publicKeys: string[] }
    | Promise<{ userData?: string; publicKeys: string[] }>;
  /** How many list pages the fake has served so far (for `pagination`). */
  listPages?(): number;
  /** Variable a bad-credentials error must name (for `credentials`). */
  credentialsVariable?: string;
  /** The bad secret in use (must not appear in the error). */
  badSecret?: string;
  /** Answer the next list call with 429 asking to wait `seconds` the provider's way. */
  rateLimitNext?(seconds: number): void;
  /**
   * The header that carries the wait (`Retry-After`, `RateLimit-Reset`);
   * `undefined` when the provider's throttling answer has none (EC2's
   * `RequestLimitExceeded`), and then only a bounded backoff is checked.
   */
  rateLimitHeader?: string;
  /** Make the next create fail for capacity/quota; returns words of the provider's message. */
  capacityNext?(): string;
  /** Make the next create fail after it made some resource. */
  failHalfwayNext?(): void;
}

/** How a provider plugs into the suite. */
export interface ConformanceHarness {
  /** Provider name (as in the registry). */
  name: string;
  /** Start the fake and build the provider. */
  start(options: RigOptions): Promise<ConformanceRig>;
  /** Cases that cannot apply, each with the reason. */
  notApplicable?: Partial<Record<ConformanceCase, string>>;
  /** Register the tests as ignored (e.g. e2e prerequisites missing). */
  ignore?: boolean;
  /** Test timeouts are the runner's; real boxes disable op/resource sanitizers. */
  sanitize?: boolean;
}

/** A create spec for the suite: reserved labels for `owner`, expose and user data. */
export function conformanceSpec(
  slug: string,
  crew: string,
  owner: string,
  key: ConformanceKey,
  expose: number[] = [5432, 8080],
): CreateSpec {
  const leaseId = newLeaseId();
  return {
    leaseId,
    crew,
    slug,
    role: roleOf(slug),
    expose,
    labels: encodeLabels({ leaseId, crew, slug, expose, owner }),
    sshPublicKey: key.publicKey,
    sshKeyPath: key.keyPath,
    userData: `#cloud-config\nruncmd:\n  - echo ${slug}-${leaseId}\n`,
  };
}

/** A random valid key for cloud fakes (nothing connects with it). */
export function fakeConformanceKey(owner: string): Promise<ConformanceKey> {
  return Promise.resolve({
    publicKey: fakePublicKey(`crabbox-${owner}`),
    keyPath: `/tmp/cbx-conformance/${owner}/id_ed25519`,
  });
}

const keyBlob = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(" ");

async function expectError(p: Promise<unknown>): Promise<CrabboxError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CrabboxError, `expected a CrabboxError, got ${e}`);
    return e;
  }
  assert.fail("expected the call to fail");
}

async function withRig(
  h: ConformanceHarness,
  o: RigOptions,
  fn: (rig: ConformanceRig) => Promise<void>,
) {
  const rig = await h.start(o);
  try {
    await fn(rig);
  } finally {
    await rig[Symbol.asyncDispose]();
  }
}

/**
 * The boxes of a list that are not on their way out: a provider may still
 * report a deleted box for a while in state `deleting` (EC2's
 * `shutting-down`); that is not a leftover.
 */
function live(leases: ProviderLease[]): ProviderLease[] {
  return leases.filter((l) => l.state !== "deleting");
}

async function deleteAll(rig: ConformanceRig, crew: string) {
  for (const l of live(await rig.provider.list({ crew }))) await rig.provider.delete(l);
}

const CASES: Record<ConformanceCase, (h: ConformanceHarness) => Promise<void>> = {
  lifecycle: (h) =>
    withRig(h, {}, async (rig) => {
      const p = rig.provider;
      const crew = "conf-life";
      const key = await rig.key("alice", crew);
      const spec = conformanceSpec("api-1", crew, "alice", key);
      const created = await p.create(spec);
      const listed = await p.list({ crew });
      assert.deepEqual(
        listed.map((l) => l.providerId),
        [created.providerId],
        "list by crew returns exactly it",
      );
      assert.deepEqual(await p.list({ crew: "conf-other" }), [], "another crew sees nothing");
      const lease = leaseFromProvider(h.name, listed[0]);
      assert.ok(lease, "the listed box carries crabbox's labels");
      assert.equal(lease.id, spec.leaseId);
      assert.equal(lease.crew, crew);
      assert.equal(lease.slug, "api-1");
      assert.equal(lease.role, "api");
      assert.deepEqual(lease.expose, [5432, 8080]);
      assert.equal(lease.owner, "alice");
      assert.equal(lease.providerId, created.providerId);
      const handed = await rig.handedOut(listed[0]);
      assert.equal(listed[0].ssh?.host, handed.host, "listed SSH host is what the fake handed out");
      assert.equal(listed[0].ssh?.port, handed.port);
      assert.equal(created.ssh?.host, handed.host, "created SSH host is what the fake handed out");
      // A connect starts ssh from the claim (create's target) while list
      // confirms it, so both must name the same target. The key path aside:
      // list derives the crew key's path, and this spec's key lives elsewhere.
      const target = (t: unknown) => ({ ...JSON.parse(JSON.stringify(t ?? {})), keyPath: "" });
      assert.deepEqual(
        target(listed[0].ssh),
        target(created.ssh),
        "list reports the SSH target create returned",
      );
      if (rig.delivered) {
        const got = await rig.delivered(listed[0]);
        if (p.features.has("cloud-init")) {
          assert.equal(got.userData, spec.userData, "user data reached the box");
        }
        assert.ok(
          got.publicKeys.map(keyBlob).includes(keyBlob(key.publicKey)),
          "the crew key is authorized",
        );
      }
      assert.equal((await p.get(created.providerId))?.leaseId, spec.leaseId, "get finds it");

      const second = await p.create(conformanceSpec("web", crew, "alice", key, []));
      await p.delete(listed[0]);
      assert.deepEqual(
        live(await p.list({ crew })).map((l) => l.providerId),
        [second.providerId],
        "only the second box is left",
      );
      const gone = await p.get(created.providerId);
      assert.ok(
        gone === undefined || gone.state === "deleting",
        "a deleted box is gone (or going)",
      );
      assert.notDeepEqual(
        await rig.held(),
        [],
        "the remaining box and its shared resources are kept",
      );
      await p.delete(live(await p.list({ crew }))[0]);
      assert.deepEqual(live(await p.list({ crew })), [], "list is empty after the last delete");
      assert.deepEqual(await rig.held(), [], "shared resources went with the crew's last box");
      await p.delete(listed[0]); // deleting a gone box succeeds
    }),

  pagination: (h) =>
    withRig(h, { pageSize: 2 }, async (rig) => {
      const crew = "conf-pages";
      const key = await rig.key("alice", crew);
      const ids: string[] = [];
      for (let i = 1; i <= 5; i++) {
        ids.push(
          (await rig.provider.create(conformanceSpec(`n-${i}`, crew, "alice", key))).leaseId,
        );
      }
      const before = rig.listPages?.() ?? 0;
      const listed = await rig.provider.list({ crew });
      assert.deepEqual(
        listed.map((l) => l.leaseId).sort(),
        [...ids].sort(),
        "all five boxes are listed, each once",
      );
      if (rig.listPages) {
        assert.ok(
          rig.listPages() - before >= 3,
          `5 boxes at 2 per page need 3 pages, read ${rig.listPages() - before}`,
        );
      }
      await deleteAll(rig, crew);
      assert.deepEqual(await rig.held(), []);
    }),

  owners: (h) =>
    withRig(h, {}, async (rig) => {
      const p = rig.provider;
      const crew = "conf-same";
      const aliceKey = await rig.key("alice", crew);
      const bobKey = await rig.key("bob", crew);
      const a = await p.create(conformanceSpec("db", crew, "alice", aliceKey));
      const b = await p.create(conformanceSpec("db", crew, "bob", bobKey));
      assert.notEqual(a.providerId, b.providerId);
      const leases = (await p.list({ crew })).map((l) => leaseFromProvider(h.name, l)!);
      const byId = new Map(leases.map((l) => [l.id, l]));
      assert.equal(byId.size, 2);
      assert.equal(byId.get(a.leaseId)?.owner, "alice");
      assert.equal(byId.get(b.leaseId)?.owner, "bob");
      if (rig.delivered) {
        const keysA = (await rig.delivered(a)).publicKeys.map(keyBlob);
        const keysB = (await rig.delivered(b)).publicKeys.map(keyBlob);
        assert.ok(
          keysA.includes(keyBlob(aliceKey.publicKey)) && !keysA.includes(keyBlob(bobKey.publicKey)),
          "alice's box has only alice's key",
        );
        assert.ok(
          keysB.includes(keyBlob(bobKey.publicKey)) && !keysB.includes(keyBlob(aliceKey.publicKey)),
          "bob's box has only bob's key",
        );
      }
      const bEndpoint = await rig.handedOut(b);
      await p.delete(a);
      const left = live(await p.list({ crew }));
      assert.deepEqual(
        left.map((l) => l.leaseId),
        [b.leaseId],
        "bob's box survives alice's release",
      );
      assert.equal(left[0].ssh?.host, bEndpoint.host);
      if (rig.delivered) {
        assert.ok(
          (await rig.delivered(left[0])).publicKeys.map(keyBlob).includes(
            keyBlob(bobKey.publicKey),
          ),
        );
      }
      assert.notDeepEqual(await rig.held(), []);
      await p.delete(left[0]);
      assert.deepEqual(await rig.held(), []);
    }),

  credentials: (h) =>
    withRig(h, { credentials: "bad" }, async (rig) => {
      assert.ok(rig.credentialsVariable, "the rig names the credentials variable");
      for (
        const call of [() => rig.provider.list({}), async () =>
          rig.provider.create(
            conformanceSpec("x", "conf-cred", "alice", await rig.key("alice", "conf-cred")),
          )]
      ) {
        const e = await expectError(call());
        assert.equal(e.exitStatus, 9, `exit 9 expected, got ${e.exitStatus}: ${e.message}`);
        assert.ok(
          e.message.includes(rig.credentialsVariable!),
          `"${e.message}" names ${rig.credentialsVariable}`,
        );
        if (rig.badSecret) {
          assert.ok(
            !`${e.message} ${e.hint ?? ""}`.includes(rig.badSecret),
            "the secret is not echoed",
          );
        }
      }
      assert.deepEqual(await rig.held(), []);
    }),

  "rate-limit": (h) =>
    withRig(h, {}, async (rig) => {
      assert.ok(rig.rateLimitNext, "the rig can inject a 429");
      rig.rateLimitNext(3);
      await rig.provider.list({});
      if (rig.rateLimitHeader) {
        assert.ok(
          rig.sleeps.some((d) => d >= 2000 && d <= 4000),
          `a wait of about 3 s (${rig.rateLimitHeader}) was expected, got ${
            JSON.stringify(rig.sleeps)
          }`,
        );
      } else assert.ok(rig.sleeps.length > 0, "it backed off before retrying");
      rig.sleeps.length = 0;
      rig.rateLimitNext(3600);
      await rig.provider.list({}).catch((e) => assert.ok(e instanceof CrabboxError));
      assert.ok(rig.sleeps.length > 0, "it waited");
      assert.ok(
        Math.max(...rig.sleeps) <= 60_000,
        `waits are bounded, got ${JSON.stringify(rig.sleeps)}`,
      );
    }),

  capacity: (h) =>
    withRig(h, {}, async (rig) => {
      assert.ok(rig.capacityNext, "the rig can inject a capacity refusal");
      const words = rig.capacityNext();
      const crew = "conf-cap";
      const e = await expectError(
        rig.provider.create(conformanceSpec("big", crew, "alice", await rig.key("alice", crew))),
      );
      assert.equal(e.exitStatus, 4, `exit 4 expected, got ${e.exitStatus}: ${e.message}`);
      assert.ok(
        e.message.includes(words),
        `"${e.message}" carries the provider's words "${words}"`,
      );
      assert.deepEqual(live(await rig.provider.list({ crew })), []);
      assert.deepEqual(await rig.held(), [], "nothing left after a refused create");
    }),

  "half-way": (h) =>
    withRig(h, {}, async (rig) => {
      assert.ok(rig.failHalfwayNext, "the rig can fail a create half-way");
      rig.failHalfwayNext();
      const crew = "conf-half";
      const e = await expectError(
        rig.provider.create(conformanceSpec("half", crew, "alice", await rig.key("alice", crew))),
      );
      const held = await rig.held();
      if (held.length > 0) {
        for (const item of held) {
          assert.ok(e.message.includes(item), `left ${item} without saying so: ${e.message}`);
        }
      }
      assert.deepEqual(live(await rig.provider.list({ crew })), []);
    }),
};

/**
 * Register the conformance cases for a provider as `Deno.test`s named
 * `conformance <provider>: <case>`.
 *
 * @example
 * ```ts
 * import { runProviderConformance } from "./conformance.ts";
 * runProviderConformance({ name: "x", start: () => Promise.reject(new Error("no fake")), ignore: true });
 * ```
 */
export function runProviderConformance(h: ConformanceHarness): void {
  for (const c of CONFORMANCE_CASES) {
    const na = h.notApplicable?.[c];
    Deno.test({
      name: `conformance ${h.name}: ${c}${na ? ` (not applicable: ${na})` : ""}`,
      ignore: h.ignore || na !== undefined,
      sanitizeOps: h.sanitize ?? true,
      sanitizeResources: h.sanitize ?? true,
      fn: () => CASES[c](h),
    });
  }
}
