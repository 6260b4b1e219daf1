import assert from "node:assert/strict";
import { watchSockets } from "../../lib/mesh/socket_watch.ts";

const pending = Symbol("pending");
/** What a promise settled to within `ms` (or `pending`). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof pending> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof pending>((r) => (timer = setTimeout(() => r(pending), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("watchSockets wakes the waiter of a path that appears, not others", async () => {
  const dir = await Deno.makeTempDir();
  const watch = watchSockets([dir]);
  assert.ok(watch, "a watcher starts on Linux");
  try {
    const a = watch.next(`${dir}/cbx-00000000000a`);
    const b = watch.next(`${dir}/cbx-00000000000b`);
    assert.equal(watch.next(`${dir}/cbx-00000000000a`), a, "one pending promise per path");
    const l = Deno.listen({ transport: "unix", path: `${dir}/cbx-00000000000a` });
    try {
      assert.equal(await within(a, 5000), undefined);
      assert.equal(await within(b, 200), pending);
    } finally {
      l.close();
    }
  } finally {
    watch.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watchSockets: close resolves every pending waiter", async () => {
  const dir = await Deno.makeTempDir();
  const watch = watchSockets([dir, dir])!;
  const a = watch.next(`${dir}/never`);
  watch.close();
  assert.equal(await within(a, 2000), undefined);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("watchSockets: a directory that does not exist gives no watch (callers poll)", () => {
  assert.equal(watchSockets(["/nonexistent/cbx-dir"]), undefined);
});
