import assert from "node:assert/strict";
import { parseCrewManifest, validateCrewManifest } from "../../lib/mesh/manifest.ts";
import { planCrewUp } from "../../lib/mesh/crew_plan.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import type { Lease } from "../../lib/lease/claims.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

const providers = {
  memory: memoryProvider("memory"),
  plain: memoryProvider("plain", []),
  hetzner: memoryProvider("hetzner"),
};

Deno.test("crew file: slugs and role + count expand in order; defaults flow to members", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cbx-manifest-" });
  try {
    await Deno.writeTextFile(`${dir}/worker.sh`, "#!/bin/sh\necho hi\n");
    const text = [
      "crew: PR 42",
      "provider: memory",
      "ttl: 2h",
      "members:",
      "  - slug: db",
      "    expose: [5432]",
      "  - role: worker",
      "    count: 3",
      "    expose: 8080,9090",
      "    init: worker.sh",
      "    ttl: 0",
      "    idleTimeout: 10m",
      "  - slug: edge",
      "    provider: plain",
      "",
    ].join("\n");
    const m = await parseCrewManifest(text, `${dir}/crew.yaml`, { providers });
    assert.equal(m.crew, "pr-42");
    assert.deepEqual(m.members.map((x) => [x.slug, x.role, x.provider, x.expose, x.ttl]), [
      ["db", "db", "memory", [5432], 7200],
      ["worker-1", "worker", "memory", [8080, 9090], 0],
      ["worker-2", "worker", "memory", [8080, 9090], 0],
      ["worker-3", "worker", "memory", [8080, 9090], 0],
      ["edge", "edge", "plain", [], 7200],
    ]);
    assert.equal(m.members[1].init, "#!/bin/sh\necho hi\n");
    assert.equal(m.members[1].idleTimeout, 600);
    assert.equal(m.members[1].at, `${dir}/crew.yaml:7`);
    assert.equal(m.members[4].at, `${dir}/crew.yaml:13`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("crew file: every problem is reported at once with file:line; nothing passes", async () => {
  const text = [
    "crew: ok",
    "colour: blue",
    "members:",
    "  - slug: api",
    "    expose: [80, 99999]",
    "    size: big",
    "  - role: w",
    "    count: 0",
    "  - slug: a",
    "    role: b",
    "  - {}",
    "  - slug: api",
    "  - slug: x",
    "    provider: nope",
    "  - slug: y",
    "    provider: plain",
    "    tailscale: true",
    "  - slug: z",
    "    init: missing.sh",
    "    ttl: forever",
    "",
  ].join("\n");
  await assert.rejects(parseCrewManifest(text, "crew.yaml", { providers }), (e) => {
    assert.ok(e instanceof CrabboxError);
    assert.equal(e.exitStatus, 2);
    assert.equal(e.code, "bad_manifest");
    const errors = e.details?.errors as string[];
    const expected: [string, RegExp][] = [
      ["crew.yaml:2", /unknown key "colour"/],
      ["crew.yaml:5", /--expose "99999"|99999/],
      ["crew.yaml:6", /unknown key "size"/],
      ["crew.yaml:8", /count must be a whole number from 1 to 100/],
      ["crew.yaml:9", /give slug or role/],
      ["crew.yaml:11", /needs a slug, or a role/],
      ["crew.yaml:12", /member api is declared twice \(first at crew\.yaml:4\)/],
      ["crew.yaml:14", /unknown provider "nope"/],
      ["crew.yaml:17", /provider plain cannot join a tailnet/],
      ["crew.yaml:19", /init file missing\.sh cannot be read/],
      ["crew.yaml:20", /ttl "forever" is not a duration/],
    ];
    for (const [where, what] of expected) {
      assert.ok(
        errors.some((x) => x.startsWith(`${where}: `) && what.test(x)),
        `${where} ${what}\n${errors.join("\n")}`,
      );
    }
    assert.equal(errors.length, expected.length, errors.join("\n"));
    assert.match(e.message, /^11 problems:\n {2}crew\.yaml:2: /);
    return true;
  });
});

Deno.test("crew file: YAML errors, a missing crew and empty members name the file", async () => {
  const cases: [string, RegExp][] = [
    ["crew: a\n  bad: [\n", /^c\.yaml:\d+: /],
    ["- a\n- b\n", /^c\.yaml:1: must be a mapping/],
    ["crew: a\ncrew: b\nmembers: [{slug: x}]\n", /^c\.yaml:2: .*[Mm]ap keys must be unique/],
    ["members: [{slug: x}]\n", /crew must be a name/],
    ["crew: a\nmembers: []\n", /c\.yaml:2: members must be a non-empty list/],
  ];
  for (const [text, re] of cases) {
    await assert.rejects(parseCrewManifest(text, "c.yaml", { providers }), (e) => {
      assert.ok(e instanceof CrabboxError && e.exitStatus === 2, String(e));
      assert.match(e.message, re, text);
      return true;
    });
  }
});

Deno.test("crew manifest as an object validates the same way", async () => {
  const m = await validateCrewManifest({
    crew: "ci",
    members: [{ slug: "db" }, { role: "worker", count: 2, expose: [8080] }],
  }, { providers });
  assert.deepEqual(m.members.map((x) => x.slug), ["db", "worker-1", "worker-2"]);
  await assert.rejects(
    validateCrewManifest({ crew: "ci", members: [{ role: 3 }] }),
    /manifest: members\.0\.role: role must be a name/,
  );
});

function lease(slug: string, over: Partial<Lease> = {}): Lease {
  return {
    id: `cbx-0000000000${slug.length.toString(16).padStart(2, "0")}`,
    provider: "memory",
    providerId: slug,
    crew: "ci",
    slug,
    role: slug,
    owner: "tester",
    labels: {},
    expose: [],
    tailscale: false,
    createdAt: new Date(0).toISOString(),
    state: "active",
    ...over,
  };
}

Deno.test("planCrewUp: create what is missing, keep matches, report drift and extras", async () => {
  const m = await validateCrewManifest({
    crew: "ci",
    members: [
      { slug: "db", expose: 5432 },
      { slug: "api", expose: [8080] },
      { slug: "cache", provider: "plain" },
      { slug: "new" },
    ],
  }, { providers });
  const plan = planCrewUp(m, [
    lease("db", { expose: [5432] }),
    lease("api", { expose: [9090], tailscale: true }),
    lease("cache"),
    lease("stray"),
  ], "memory");
  assert.deepEqual(plan.create.map((x) => x.slug), ["new"]);
  assert.deepEqual(plan.keep.map((x) => x.lease.slug), ["db"]);
  assert.deepEqual(plan.drift.map((d) => [d.lease.slug, d.differences]), [
    ["api", ["expose: 9090, declared 8080", "tailscale: true, declared false"]],
    ["cache", ["provider: memory, declared plain"]],
  ]);
  assert.deepEqual(plan.extra.map((l) => l.slug), ["stray"]);
  // Nothing declared exists yet: everything is created.
  assert.equal(planCrewUp(m, [], "memory").create.length, 4);
});

Deno.test("crew file: shape keys are checked against the member's provider; shape drift is reported", async () => {
  const m = await validateCrewManifest({
    crew: "ci",
    members: [{ slug: "db", provider: "hetzner", type: "cpx32", location: "hel1" }],
  }, { providers });
  assert.deepEqual(m.members[0].shape, { type: "cpx32", location: "hel1" });
  await assert.rejects(
    validateCrewManifest(
      { crew: "ci", members: [{ slug: "x", provider: "memory", type: "big" }] },
      {
        providers,
      },
    ),
    /manifest: members\.0\.type: --type is not supported by provider memory/,
  );
  await assert.rejects(
    validateCrewManifest({
      crew: "ci",
      members: [{ slug: "x", provider: "hetzner", location: "mars" }],
    }, {
      providers,
    }),
    /members\.0\.location: --location "mars" is not a hetzner location/,
  );
  const plan = planCrewUp(m, [
    lease("db", { provider: "hetzner", labels: { "crabbox-type": "cpx22" } }),
  ], "local");
  assert.deepEqual(plan.drift[0].differences, [
    "type: cpx22, declared cpx32",
    "location: default, declared hel1",
  ]);
});
