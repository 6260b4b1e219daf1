import assert from "node:assert/strict";
import { crabboxHome, readJsonFile, withLock, writeFileAtomic } from "../../lib/core/fs.ts";
import {
  listClaims,
  loadClaim,
  reserveClaim,
  saveClaim,
  updateClaim,
} from "../../lib/lease/claims.ts";
import type { Lease } from "../../lib/lease/claims.ts";
import { CrabboxError } from "../../lib/core/errors.ts";

function lease(id: string, slug: string, crew = "t1"): Lease {
  return {
    id,
    provider: "local",
    providerId: id,
    crew,
    slug,
    role: slug,
    owner: "user",
    labels: { crabbox: "true", "crabbox-lease": id },
    expose: [],
    tailscale: false,
    createdAt: new Date().toISOString(),
    state: "active",
  };
}

Deno.test("crabboxHome prefers CRABBOX_HOME, then ~/.crabbox", () => {
  assert.equal(crabboxHome((k) => ({ CRABBOX_HOME: "/x", HOME: "/h" })[k]), "/x");
  assert.equal(crabboxHome((k) => ({ HOME: "/h" })[k]), "/h/.crabbox");
  assert.throws(() => crabboxHome(() => undefined), CrabboxError);
});

Deno.test("writeFileAtomic makes 0600 files under 0700 dirs and leaves no temp files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a/b/file.json`;
    await writeFileAtomic(path, "one\n");
    await writeFileAtomic(path, "two\n");
    assert.equal(await Deno.readTextFile(path), "two\n");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/a/b`)).mode! & 0o777, 0o700);
    const names = [...Deno.readDirSync(`${dir}/a/b`)].map((e) => e.name);
    assert.deepEqual(names, ["file.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic replaces the file (a hard link to the old one keeps the old bytes)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.json`;
    await Deno.writeTextFile(path, "old\n", { mode: 0o644 });
    await Deno.link(path, `${dir}/reader-view`);
    const before = await Deno.stat(path);
    await writeFileAtomic(path, "new\n");
    assert.equal(await Deno.readTextFile(path), "new\n");
    assert.equal(await Deno.readTextFile(`${dir}/reader-view`), "old\n");
    const after = await Deno.stat(path);
    assert.notEqual(after.ino, before.ino, "a new inode was renamed into place");
    assert.equal(after.mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Bytes whose second write fails, like a disk that fills up half-way. */
class FailingBytes extends Uint8Array {
  override subarray(begin?: number): Uint8Array<ArrayBuffer> {
    if ((begin ?? 0) > 0) throw new Error("No space left on device (os error 28)");
    return new Uint8Array(this.buffer, this.byteOffset, 1);
  }
}

Deno.test("writeFileAtomic: a failed write or rename leaves the old content and no temp file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.json`;
    await writeFileAtomic(path, "old\n");
    const failing = new FailingBytes(new TextEncoder().encode("new content\n"));
    await assert.rejects(writeFileAtomic(path, failing), /No space left/);
    assert.equal(await Deno.readTextFile(path), "old\n");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["state.json"]);
    // Rename onto a non-empty directory fails: nothing is left behind either.
    await Deno.mkdir(`${dir}/taken/x`, { recursive: true });
    await assert.rejects(writeFileAtomic(`${dir}/taken`, "x"));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["state.json", "taken"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ensurePrivateDir creates 0700 dirs and never tightens existing ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.chmod(dir, 0o755);
    await writeFileAtomic(`${dir}/file`, "x");
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o755, "existing parent untouched");
    await writeFileAtomic(`${dir}/new/deeper/file`, "x");
    assert.equal((await Deno.stat(`${dir}/new`)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${dir}/new/deeper`)).mode! & 0o777, 0o700);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readJsonFile: missing → undefined, corrupt → state error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await readJsonFile(`${dir}/none.json`), undefined);
    await Deno.writeTextFile(`${dir}/bad.json`, "{not json");
    await assert.rejects(readJsonFile(`${dir}/bad.json`), (e: unknown) => {
      assert.ok(e instanceof CrabboxError);
      assert.equal(e.exitStatus, 7);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("claims: save, load, update, list order, slug reservation", async () => {
  const home = await Deno.makeTempDir();
  try {
    await saveClaim(home, lease("cbx-00000000000b", "web"));
    await saveClaim(home, lease("cbx-00000000000a", "api"));
    assert.deepEqual((await listClaims(home)).map((c) => c.slug), ["api", "web"]);
    await updateClaim(home, "cbx-00000000000a", (c) => c && { ...c, expose: [80] });
    assert.deepEqual((await loadClaim(home, "cbx-00000000000a"))?.expose, [80]);
    await assert.rejects(
      reserveClaim(home, lease("cbx-00000000000c", "api")),
      /already has a member api/,
    );
    await reserveClaim(home, lease("cbx-00000000000c", "api", "other"));
    await updateClaim(home, "cbx-00000000000c", () => undefined);
    assert.equal(await loadClaim(home, "cbx-00000000000c"), undefined);
    await assert.rejects(loadClaim(home, "../../etc/passwd"), /not a lease id/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("claims: a failed claim frees its slug; creating, active and releasing ones hold it", async () => {
  const home = await Deno.makeTempDir();
  try {
    const states = ["creating", "active", "releasing", "failed"] as const;
    for (const [i, state] of states.entries()) {
      await saveClaim(home, { ...lease(`cbx-00000000001${i}`, `m${i}`), state });
    }
    for (const [i, state] of states.entries()) {
      const again = reserveClaim(home, lease(`cbx-00000000002${i}`, `m${i}`));
      if (state === "failed") await again;
      else await assert.rejects(again, (e) => e instanceof CrabboxError && e.code === "slug_taken");
    }
    assert.equal((await loadClaim(home, "cbx-000000000023"))?.slug, "m3");
    assert.equal(await loadClaim(home, "cbx-000000000020"), undefined);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("withLock serializes critical sections across real processes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const counter = `${dir}/counter`;
    await Deno.writeTextFile(counter, "0");
    const script = `
      import { withLock } from "${new URL("../../lib/core/fs.ts", import.meta.url).href}";
      for (let i = 0; i < 20; i++) {
        await withLock("${dir}/.lock", async () => {
          const n = Number(await Deno.readTextFile("${counter}"));
          await new Promise((r) => setTimeout(r, 1));
          await Deno.writeTextFile("${counter}", String(n + 1));
        });
      }`;
    const procs = Array.from({ length: 4 }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", script],
        stdout: "null",
        stderr: "inherit",
      }).output());
    for (const r of await Promise.all(procs)) assert.equal(r.code, 0);
    assert.equal(await Deno.readTextFile(counter), "80");
    await withLock(`${dir}/.lock`, () => Promise.resolve());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
