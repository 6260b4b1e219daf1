import assert from "node:assert/strict";
import { cliArgv, cliEnv, crabbox } from "./_cli.ts";
import { requireE2E } from "./_local.ts";
import { pgrep, waitFor } from "./_e2e_util.ts";

const enabled = requireE2E();

async function netnsList(): Promise<string[]> {
  const out = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0]).filter(
    Boolean,
  );
}

async function boxRecords(home: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  try {
    for await (const e of Deno.readDir(`${home}/local`)) {
      if (!e.name.startsWith("cbx-")) continue;
      try {
        out.push(JSON.parse(await Deno.readTextFile(`${home}/local/${e.name}/box.json`)));
      } catch { /* not written yet */ }
    }
  } catch { /* no local dir yet */ }
  return out;
}

type Row = { id: string; slug: string; state: string };

async function assertGone(home: string, id: string): Promise<void> {
  assert.ok(!(await netnsList()).includes(id), `namespace ${id} left behind`);
  assert.deepEqual(await pgrep(id), [], `process mentioning ${id} left behind`);
  assert.equal(await Deno.stat(`${home}/local/${id}`).then(() => true, () => false), false);
  assert.equal(await Deno.stat(`${home}/claims/${id}.json`).then(() => true, () => false), false);
}

Deno.test({
  name:
    "e2e: warmup killed with SIGKILL mid-create stays listed (failed), fails doctor, release --crew removes netns, sshd, relay, claim",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-e2e-" });
    let id = "";
    try {
      // The --init script holds the create after sshd and relay run, so the kill lands mid-create.
      const init = `${home}/slow-init.sh`;
      await Deno.writeTextFile(init, "sleep 60\n");
      const child = new Deno.Command(Deno.execPath(), {
        args: cliArgv([
          "warmup",
          "--crew",
          "k",
          "--slug",
          "k1",
          "--expose",
          "80",
          "--provider",
          "local",
          "--init",
          init,
        ]),
        env: cliEnv(home),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const box = await waitFor(
        "sshd and relay of the new box",
        async () => (await boxRecords(home)).find((b) => b.sshd && b.relay && b.ready === false),
      );
      id = box.leaseId as string;
      child.kill("SIGKILL");
      await child.status;
      assert.ok((await netnsList()).includes(id), "the killed create left its namespace");

      const list = await crabbox(home, ["list", "--crew", "k", "--json"]);
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(
        JSON.parse(list.stdout).map((r: Row) => [r.id, r.slug, r.state]),
        [[id, "k1", "failed"]],
      );
      const doctor = await crabbox(home, ["doctor", "--crew", "k"]);
      assert.notEqual(doctor.code, 0, doctor.stdout);
      assert.match(doctor.stdout + doctor.stderr, new RegExp(`k1 \\(${id}\\) is failed`));

      const rel = await crabbox(home, ["release", "--crew", "k"]);
      assert.equal(rel.code, 0, rel.stderr);
      assert.match(rel.stdout, new RegExp(`^released ${id} \\(removed: local box ${id}, claim`));
      await assertGone(home, id);

      const again = await crabbox(home, [
        "warmup",
        "--crew",
        "k",
        "--slug",
        "k1",
        "--provider",
        "local",
      ]);
      assert.equal(again.code, 0, again.stderr);
      const rel2 = await crabbox(home, ["release", "--id", "k/k1"]);
      assert.equal(rel2.code, 0, rel2.stderr);
    } finally {
      await crabbox(home, ["release", "--crew", "k"]);
      if (id) assert.ok(!(await netnsList()).includes(id));
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "e2e: a member whose sshd died is listed unreachable and release --id removes it all",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-e2e-" });
    let id = "";
    try {
      const w = await crabbox(home, [
        "warmup",
        "--crew",
        "k",
        "--slug",
        "k2",
        "--provider",
        "local",
      ]);
      assert.equal(w.code, 0, w.stderr);
      id = w.stdout.trim();
      const box = JSON.parse(await Deno.readTextFile(`${home}/local/${id}/box.json`));
      Deno.kill(box.sshd.pid, "SIGKILL"); // the sshd this test's warmup started
      await waitFor(
        "sshd to be gone",
        async () =>
          (await Deno.readTextFile(`/proc/${box.sshd.pid}/stat`).catch(() => "")).length === 0
            ? true
            : undefined,
      );

      const list = await crabbox(home, ["list", "--json"]);
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(JSON.parse(list.stdout).map((r: Row) => [r.id, r.state]), [[
        id,
        "unreachable",
      ]]);
      const run = await crabbox(home, ["run", "--id", id, "--", "true"]);
      assert.equal(run.code, 5);
      assert.match(run.stderr, /is unreachable\nhint: release it with/);

      const rel = await crabbox(home, ["release", "--id", id]);
      assert.equal(rel.code, 0, rel.stderr);
      assert.match(rel.stdout, new RegExp(`^released ${id} \\(removed: local box ${id}, claim`));
      await assertGone(home, id);
    } finally {
      await crabbox(home, ["release", "--crew", "k"]);
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

async function alive(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return stat !== "" && state !== "Z";
}

Deno.test({
  name:
    "e2e: crew connect --export killed (SIGKILL) mid-start: disconnect finds and stops its recorded ssh, and removes its socket",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-e2e-" });
    const cmDir = `${home}/crew/km/cm/`;
    try {
      // Nothing listens on the member's 8080: the forward never verifies, so the start hangs.
      const w = await crabbox(home, [
        "warmup",
        "--crew",
        "km",
        "--slug",
        "a",
        "--expose",
        "8080",
        "--provider",
        "local",
      ]);
      assert.equal(w.code, 0, w.stderr);
      const child = new Deno.Command(Deno.execPath(), {
        args: cliArgv(["crew", "connect", "km", "--export"]),
        env: cliEnv(home),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      // Kill once the ssh runs and is recorded. SIGKILL: a SIGTERM is caught
      // and the connect stops its ssh itself (export_kill_test.ts tests that,
      // and kills inside the spawn→record window).
      const sshPids = await waitFor("the member's ssh, recorded", async () => {
        const pids = await pgrep(cmDir);
        if (pids.length === 0) return undefined;
        const state = await Deno.readTextFile(`${home}/crew/km/daemon.json`).catch(() => "");
        return pids.every((p) => state.includes(`"pid": ${p}`) || state.includes(`"pid":${p}`))
          ? pids
          : undefined;
      });
      child.kill("SIGKILL");
      await child.status;
      assert.ok(await alive(sshPids[0]), "the detached ssh outlived the killed connect");

      const d = await crabbox(home, ["crew", "disconnect", "km"]);
      assert.equal(d.code, 0, d.stderr);
      assert.match(d.stderr + d.stdout, /disconnected 1 SSH-mesh daemon/);
      for (const pid of sshPids) assert.equal(await alive(pid), false, `ssh ${pid} still runs`);
      assert.deepEqual(await pgrep(cmDir), []);
      const sockets = await Array.fromAsync(Deno.readDir(cmDir)).catch(() => []);
      assert.deepEqual(sockets.map((e) => e.name), [], "no stale ControlMaster socket");
      assert.equal(
        await Deno.stat(`${home}/crew/km/daemon.json`).then(() => true, () => false),
        false,
      );
    } finally {
      await crabbox(home, ["crew", "disconnect", "km"]);
      await crabbox(home, ["release", "--crew", "km"]);
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
