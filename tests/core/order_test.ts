import assert from "node:assert/strict";
import { compareText } from "../../lib/core/order.ts";
import { compareLeases, type Lease } from "../../lib/lease/claims.ts";

Deno.test("compareText: code-unit order, the same in every locale", () => {
  assert.deepEqual(["db", "api-2", "api", "api2", "B", "a"].sort(compareText), [
    "B",
    "a",
    "api",
    "api-2",
    "api2",
    "db",
  ]);
  assert.equal(compareText("x", "x"), 0);
  assert.ok(compareText("2026-01-02", "2026-01-10") < 0); // ISO dates sort by time
});

Deno.test("compareLeases: by crew (none first), then slug, then id", () => {
  const l = (crew: string | undefined, slug: string, id: string) =>
    ({ crew, slug, id }) as unknown as Lease;
  const sorted = [
    l("pr-9", "api", "cbx-000000000002"),
    l("pr-10", "db", "cbx-000000000001"),
    l(undefined, "zed", "cbx-000000000009"),
    l("pr-10", "api", "cbx-000000000003"),
    l("pr-10", "api", "cbx-000000000001"),
  ].sort(compareLeases);
  assert.deepEqual(sorted.map((x) => `${x.crew ?? "-"}/${x.slug}/${x.id.slice(-1)}`), [
    "-/zed/9",
    "pr-10/api/1",
    "pr-10/api/3",
    "pr-10/db/1",
    "pr-9/api/2",
  ]);
});

Deno.test("no localeCompare in crabbox's code: its first call loads an ICU collator (~7 ms of start-up)", async () => {
  const root = new URL("../../", import.meta.url).pathname;
  const hits: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (p.endsWith(".ts") && (await Deno.readTextFile(p)).includes(".localeCompare(")) {
        hits.push(p.slice(root.length));
      }
    }
  };
  for (const d of ["lib", "cli", "providers"]) await walk(`${root}${d}`);
  for (const f of ["cli.ts", "mod.ts"]) {
    if ((await Deno.readTextFile(`${root}${f}`)).includes(".localeCompare(")) hits.push(f);
  }
  assert.deepEqual(hits, [], "use compareText (lib/core/order.ts)");
});
