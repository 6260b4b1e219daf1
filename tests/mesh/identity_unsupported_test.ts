// Issue 10: where neither /proc nor ps exists, --export, disconnect and
// doctor's daemon check say so plainly (exit 6) instead of a misleading
// "ssh for X exited right away" or "ssh gone".
import assert from "node:assert/strict";
import { disconnectCrew, startCrewDaemons } from "../../lib/mesh/daemon.ts";
import { runDoctor } from "../../lib/doctor/checks.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { daemonFixture } from "./_daemon_fixture.ts";

const none = () => Promise.resolve("none" as const);
const LINE =
  /^(crew connect --export|crew disconnect|the crew connect daemon check) is not supported on this OS: needs \/proc or ps$/;

function fixture() {
  // A recorded daemon (a pid that is surely not ours: pid 1 with another start time).
  return daemonFixture("ni", (paths) => ({
    version: 1,
    crew: "ni",
    startedAt: new Date().toISOString(),
    processes: [{
      leaseId: "cbx-000000000001",
      peer: "api",
      pid: 1,
      startTime: "1",
      argv: ["ssh", "-N"],
      controlPath: `${paths.dir}/cm/cbx-000000000001`,
      logFile: `${paths.dir}/log/cbx-000000000001.log`,
      forwards: [{ localPort: 51820, remotePort: 8080 }],
    }],
  }));
}

async function rejectsUnsupported(p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof CrabboxError, String(e));
    assert.equal(e.exitStatus, 6);
    assert.equal(e.message, `${what} is not supported on this OS: needs /proc or ps`);
    assert.match(e.message, LINE);
    return true;
  });
}

Deno.test("no /proc and no ps: crew connect --export refuses plainly (exit 6) before starting anything", async () => {
  await using f = await fixture();
  const before = await Deno.readTextFile(f.paths.daemon);
  await rejectsUnsupported(
    startCrewDaemons("ni", { ...f.options, identityBackend: none }),
    "crew connect --export",
  );
  assert.equal(await Deno.readTextFile(f.paths.daemon), before, "daemon.json untouched");
});

Deno.test("no /proc and no ps: crew disconnect refuses plainly (exit 6) and keeps daemon.json", async () => {
  await using f = await fixture();
  await rejectsUnsupported(
    disconnectCrew("ni", { ...f.options, identityBackend: none }),
    "crew disconnect",
  );
  assert.ok(await Deno.stat(f.paths.daemon), "daemon.json kept for a system that can tell");
});

Deno.test("no /proc and no ps: doctor's crew-mesh check fails saying so (not 'ssh gone')", async () => {
  await using f = await fixture();
  const report = await runDoctor({ ...f.options, crew: "ni", identityBackend: none });
  const mesh = report.checks.find((c) => c.name === "crew-mesh")!;
  assert.equal(mesh.status, "fail");
  assert.equal(
    mesh.message,
    "the crew connect daemon check is not supported on this OS: needs /proc or ps",
  );
});
