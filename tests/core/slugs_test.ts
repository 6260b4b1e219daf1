import assert from "node:assert/strict";
import { chooseSlugs } from "../../lib/core/slugs.ts";
import { normalizeSlug, roleOf } from "../../lib/core/names.ts";
import { CrabboxError } from "../../lib/core/errors.ts";

Deno.test("chooseSlugs: next free <role>-<n>, gaps filled first, never twice", () => {
  assert.deepEqual(
    chooseSlugs([{ role: "worker" }, { role: "worker" }, { role: "worker" }], new Set()),
    [
      "worker-1",
      "worker-2",
      "worker-3",
    ],
  );
  assert.deepEqual(
    chooseSlugs([{ role: "worker" }, { role: "worker" }], new Set(["worker-1", "worker-3", "api"])),
    ["worker-2", "worker-4"],
  );
  // Exact slugs are placed first in request order; a role request skips them.
  assert.deepEqual(chooseSlugs([{ slug: "worker-1" }, { role: "worker" }], new Set()), [
    "worker-1",
    "worker-2",
  ]);
});

Deno.test("chooseSlugs: a taken slug is exit 2 naming the holder's lease id", () => {
  assert.throws(
    () =>
      chooseSlugs([{ slug: "db" }], new Set(["db"]), {
        holders: new Map([["db", "cbx-0123456789ab"]]),
        scope: "crew pr-42",
      }),
    (e) => {
      assert.ok(e instanceof CrabboxError);
      assert.equal(e.exitStatus, 2);
      assert.equal(e.code, "slug_taken");
      assert.equal(e.message, "crew pr-42 already has a member db (cbx-0123456789ab)");
      return true;
    },
  );
  assert.throws(() => chooseSlugs([{ slug: "a" }, { slug: "a" }], new Set()), /given twice/);
});

Deno.test("chooseSlugs: generated names are readable, normalized, and avoid taken ones", () => {
  let i = 0;
  const seq = [0, 0, 0, 0, 0.5, 0.5];
  const random = () => seq[i++ % seq.length];
  const [first] = chooseSlugs([{ generated: true }], new Set(), { random });
  assert.match(first, /^[a-z]+-[a-z]+$/);
  assert.equal(normalizeSlug(first), first);
  assert.equal(roleOf(first), first);
  i = 0;
  const [again, other] = chooseSlugs([{ generated: true }, { generated: true }], new Set(), {
    random,
  });
  assert.equal(again, first);
  assert.notEqual(other, first);
  // Every pick taken: a number is added.
  const stuck = chooseSlugs([{ generated: true }], new Set([first]), { random: () => 0 });
  assert.deepEqual(stuck, [`${first}-1`]);
});

Deno.test("chooseSlugs: a role too long for a number is a usage error", () => {
  assert.throws(() => chooseSlugs([{ role: "w".repeat(40) }], new Set()), /no room/);
});
