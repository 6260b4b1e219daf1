import assert from "node:assert/strict";
import {
  areaOf,
  cycles,
  layerProblems,
  lazyImportProblems,
  publicModules,
} from "../../tools/layers.ts";

Deno.test("areaOf maps paths to the layered areas", () => {
  assert.equal(areaOf("lib/process/identity.ts"), "process");
  assert.equal(areaOf("lib/runtime.ts"), "runtime");
  assert.equal(areaOf("providers/hetzner/api.ts"), "providers");
  assert.equal(areaOf("cli/crew.ts"), "cli");
  assert.equal(areaOf("mod.ts"), "mod");
  assert.equal(areaOf("tests/mesh/files_test.ts"), undefined);
});

Deno.test("an import from a lower area into a higher one is a problem", () => {
  const problems = layerProblems([{ from: "lib/lease/leases.ts", to: "lib/mesh/mod.ts" }]);
  assert.deepEqual(problems, [
    "upward import: lib/lease/leases.ts (lease) imports lib/mesh/mod.ts (mesh)",
  ]);
});

Deno.test("another area is imported through its mod.ts or a file its mod.ts re-exports", () => {
  const pub = publicModules(
    new Map([
      [
        "lib/core/mod.ts",
        'export * from "./fs.ts";\nexport { x } from "./names.ts";\n// "./no.ts"',
      ],
      ["providers/mod.ts", 'export type { T } from "./types.ts";'],
    ]),
  );
  assert.deepEqual([...pub].sort(), ["lib/core/fs.ts", "lib/core/names.ts", "providers/types.ts"]);
  assert.deepEqual(layerProblems([{ from: "lib/mesh/live.ts", to: "lib/core/mod.ts" }], pub), []);
  assert.deepEqual(layerProblems([{ from: "lib/mesh/live.ts", to: "lib/core/fs.ts" }], pub), []);
  assert.deepEqual(layerProblems([{ from: "cli/crew.ts", to: "lib/core/names.ts" }], pub), []);
  // A file its mod.ts does not re-export is private to its folder.
  assert.deepEqual(
    layerProblems([{ from: "lib/mesh/live.ts", to: "lib/core/config_cache.ts" }], pub),
    [
      "import of a private file: lib/mesh/live.ts imports lib/core/config_cache.ts (not re-exported by its mod.ts)",
    ],
  );
  assert.equal(layerProblems([{ from: "lib/mesh/live.ts", to: "lib/core/fs.ts" }]).length, 1);
  // A provider folder may use the seam's types; not another provider's files.
  assert.deepEqual(
    layerProblems([{ from: "providers/aws/provider.ts", to: "providers/types.ts" }]),
    [],
  );
  assert.equal(
    layerProblems([{ from: "providers/aws/provider.ts", to: "providers/hetzner/api.ts" }]).length,
    1,
  );
});

Deno.test("cycles are found, also inside one area", () => {
  const edges = [
    { from: "lib/mesh/a.ts", to: "lib/mesh/b.ts" },
    { from: "lib/mesh/b.ts", to: "lib/mesh/c.ts" },
    { from: "lib/mesh/c.ts", to: "lib/mesh/a.ts" },
    { from: "lib/mesh/c.ts", to: "lib/core/mod.ts" },
  ];
  assert.deepEqual(cycles(edges), [["lib/mesh/a.ts", "lib/mesh/b.ts", "lib/mesh/c.ts"]]);
  assert.deepEqual(layerProblems(edges), [
    "cycle among: lib/mesh/a.ts, lib/mesh/b.ts, lib/mesh/c.ts",
  ]);
});

Deno.test("await import is allowed only in cli/ and the provider registry", () => {
  const files = new Map([
    ["cli/crew.ts", 'const m = await import("../lib/mesh/mod.ts");'],
    ["providers/registry.ts", 'load: async () => (await import("./local/mod.ts")).x,'],
    ["lib/lease/leases.ts", 'const { x } = await import("../mesh/mod.ts");'],
    ["lib/mesh/live.ts", ' * const { x } = await import("./doc-example.ts");'],
    ["lib/core/config.ts", 'const YAML = await import("yaml");'],
  ]);
  assert.deepEqual(lazyImportProblems(files), [
    "await import outside cli/ and providers/registry.ts: lib/lease/leases.ts:1",
  ]);
});
