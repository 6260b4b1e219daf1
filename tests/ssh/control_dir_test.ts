import assert from "node:assert/strict";
import { controlDirProblem, ensureControlDir, sshAnswers } from "../../lib/ssh/control.ts";
import { CrabboxError } from "../../lib/core/errors.ts";

const uid = Deno.uid() ?? 0;
const fresh = () => `/tmp/cbx-cm-test-${crypto.randomUUID().slice(0, 8)}`;
const refused = (what: RegExp) => (e: unknown) =>
  e instanceof CrabboxError && e.exitStatus === 7 && what.test(e.message);

Deno.test("the /tmp ControlMaster dir: created 0700; a symlink, a wrong mode or a file is refused (exit 7)", async () => {
  const made = fresh();
  const target = await Deno.makeTempDir();
  const link = fresh();
  const loose = fresh();
  const file = fresh();
  try {
    await ensureControlDir(made);
    const info = await Deno.lstat(made);
    assert.ok(info.isDirectory);
    assert.equal((info.mode ?? 0) & 0o777, 0o700);
    await ensureControlDir(made); // reused as is

    await Deno.chmod(target, 0o700);
    await Deno.symlink(target, link);
    await assert.rejects(ensureControlDir(link), refused(/is a symbolic link$/));

    await Deno.mkdir(loose, { mode: 0o700 });
    await Deno.chmod(loose, 0o777);
    await assert.rejects(ensureControlDir(loose), refused(/has mode 777, not 700$/));

    await Deno.writeTextFile(file, "");
    await assert.rejects(ensureControlDir(file), refused(/is not a directory$/));
  } finally {
    for (const p of [made, link, loose, file]) await Deno.remove(p).catch(() => {});
    await Deno.remove(target).catch(() => {});
  }
});

Deno.test("controlDirProblem names another owner", () => {
  const info = { isDirectory: true, isSymlink: false, uid: uid + 1, mode: 0o40700 };
  assert.equal(
    controlDirProblem(info as Deno.FileInfo, uid),
    `is owned by uid ${uid + 1}, not ${uid}`,
  );
  assert.equal(controlDirProblem({ ...info, uid } as Deno.FileInfo, uid), undefined);
});

Deno.test("sshAnswers: a master that accepts the check and never replies counts as not answering (the check is killed, not waited on)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cbx-cm-stuck-" });
  const path = `${dir}/cm`;
  // A wedged master: its socket accepts, reads ssh's mux hello and never answers.
  const listener = Deno.listen({ transport: "unix", path });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) held.push(c);
  })();
  try {
    let guard: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<"hung">((r) => (guard = setTimeout(() => r("hung"), 20_000)));
    const answered = await Promise.race([
      sshAnswers(() => undefined, path, "root@127.0.0.1", undefined, 300),
      hung,
    ]);
    clearTimeout(guard);
    assert.equal(answered, false);
    assert.ok(held.length >= 1, "ssh -O check reached the socket");
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const c of held) c.close();
    await Deno.remove(dir, { recursive: true });
  }
});
