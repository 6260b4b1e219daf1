import assert from "node:assert/strict";
import { findProcesses, identityBackend } from "../../lib/process/find.ts";

const noProc = () => Promise.resolve(undefined);
const psMissing = () => Promise.resolve(false);

Deno.test("identityBackend: /proc, else ps, else none", async () => {
  assert.equal(await identityBackend(), "proc");
  assert.equal(await identityBackend(noProc, () => Promise.resolve(true)), "ps");
  assert.equal(await identityBackend(noProc, psMissing), "none");
});

Deno.test("findProcesses: this user's live process with exactly that argv (program by base name), through /proc", async () => {
  const marker = `cbx-find-${crypto.randomUUID()}`;
  const tagged = new Deno.Command("sh", { args: ["-c", "sleep 60", marker] }).spawn();
  try {
    const found = await findProcesses(["sh", "-c", "sleep 60", marker]);
    assert.deepEqual(found?.map((p) => p.pid), [tagged.pid]);
    assert.match(found![0].argv[0], /(^|\/)sh$/);
    assert.deepEqual(await findProcesses(["sh", "-c", "sleep 60", `${marker}-other`]), []);
    assert.deepEqual(await findProcesses(["bash", "-c", "sleep 60", marker]), []);
  } finally {
    tagged.kill();
    await tagged.status;
  }
  assert.deepEqual(
    await findProcesses(["sh", "-c", "sleep 60", marker]),
    [],
    "gone once it exited",
  );
});

Deno.test("findProcesses without /proc reads ps (pid, lstart, command) and matches the space-split argv", async () => {
  const rows = [
    {
      pid: 4242,
      line: "Sun Nov  9 15:52:41 2026 /usr/bin/ssh -N -o ControlPath=/h/crew/a/cm/cbx-1 -- root@h",
    },
    {
      pid: 4243,
      line: "Sun Nov  9 15:52:42 2026 /usr/bin/ssh -N -o ControlPath=/h/crew/a/cm/cbx-2 -- root@h",
    },
    { pid: 4244, line: "garbage" },
  ];
  const found = await findProcesses(
    ["ssh", "-N", "-o", "ControlPath=/h/crew/a/cm/cbx-1", "--", "root@h"],
    { read: noProc, ps: () => Promise.resolve(true), listPs: () => Promise.resolve(rows) },
  );
  assert.deepEqual(found, [{
    pid: 4242,
    startTime: "Sun Nov  9 15:52:41 2026",
    argv: ["/usr/bin/ssh", "-N", "-o", "ControlPath=/h/crew/a/cm/cbx-1", "--", "root@h"],
  }]);
});

Deno.test("findProcesses with neither /proc nor ps: undefined (cannot tell), never a guess", async () => {
  const listed: string[] = [];
  const found = await findProcesses(["ssh", "-N"], {
    read: noProc,
    ps: psMissing,
    listPs: () => {
      listed.push("ps");
      return Promise.resolve([]);
    },
    listProc: () => {
      listed.push("proc");
      return Promise.resolve([]);
    },
  });
  assert.equal(found, undefined);
  assert.deepEqual(listed, []);
});
