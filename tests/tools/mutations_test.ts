import assert from "node:assert/strict";
import { MUTATIONS } from "../../tools/mutations.ts";
import { applyMutation } from "../../tools/mutate.ts";

const root = new URL("../../", import.meta.url);

Deno.test("every mutation still applies: its old text occurs exactly once, its test files exist", async () => {
  const names = new Set<string>();
  const stale: string[] = [];
  for (const m of MUTATIONS) {
    assert.ok(!names.has(m.name), `duplicate mutation name ${m.name}`);
    names.add(m.name);
    const text = await Deno.readTextFile(new URL(m.file, root));
    const applied = applyMutation(text, m);
    if (typeof applied !== "string") stale.push(`${m.name}: ${applied.error}`);
    else assert.notEqual(applied, text, `${m.name} changes nothing`);
    for (const t of m.tests) {
      assert.ok((await Deno.stat(new URL(t, root))).isFile, `${m.name}: no test file ${t}`);
    }
  }
  assert.deepEqual(stale, [], "update tools/mutations.ts to the code as it is now");
});
