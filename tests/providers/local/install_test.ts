/** First-run installer: the pure plan and its shell with a fake process runner (no real apt-get). */

import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/errors.ts";
import {
  ensurePackages,
  LOCAL_REQUIREMENTS,
  planInstall,
  type PrerequisiteProbe,
} from "../../../providers/local/mod.ts";
import { fakeProcess } from "../../fakes/process.ts";

Deno.test("planInstall: nothing missing → none", () => {
  assert.deepEqual(planInstall({ packages: [], root: false, aptGet: false }), { action: "none" });
});

Deno.test("planInstall: root with apt-get → apt-get update, then install the missing packages", () => {
  assert.deepEqual(planInstall({ packages: ["socat", "jq", "socat"], root: true, aptGet: true }), {
    action: "install",
    packages: ["socat", "jq"],
    commands: [
      ["apt-get", "update", "-qq"],
      ["apt-get", "install", "-y", "--no-install-recommends", "socat", "jq"],
    ],
  });
});

Deno.test("planInstall: not root or no apt-get → refuse with the exact command", () => {
  const command = "apt-get install -y --no-install-recommends openssh-server socat";
  assert.deepEqual(
    planInstall({ packages: ["openssh-server", "socat"], root: false, aptGet: true }),
    {
      action: "refuse",
      packages: ["openssh-server", "socat"],
      command,
      reason: "not running as root",
    },
  );
  assert.deepEqual(
    planInstall({ packages: ["openssh-server", "socat"], root: true, aptGet: false }),
    {
      action: "refuse",
      packages: ["openssh-server", "socat"],
      command,
      reason: "apt-get is not on PATH",
    },
  );
});

/** A probe where `present` holds the executables (a mutable set the fake apt-get fills). */
function probeOf(euid: number, present: Set<string>): PrerequisiteProbe {
  return {
    euid: () => euid,
    isExecutable: (p) => present.has(p),
    exists: (p) => present.has(p),
    path: () => "/usr/sbin:/usr/bin",
  };
}

/** Where each local requirement is found once installed. */
const EVERYTHING = LOCAL_REQUIREMENTS.map((r) => r.path ?? `/usr/bin/${r.name}`);

Deno.test("ensurePackages as root with apt-get runs the printed commands and creates /run/sshd", async () => {
  const present = new Set([
    "/usr/bin/apt-get",
    "/usr/sbin/ip",
    "/usr/bin/ssh",
    "/usr/bin/ssh-keygen",
  ]);
  const proc = fakeProcess({
    "apt-get": (call) => {
      if (call.args[0] === "install") { for (const p of EVERYTHING) present.add(p); }
      return {};
    },
  });
  const lines: string[] = [];
  const made: string[] = [];
  await ensurePackages(LOCAL_REQUIREMENTS, {
    probe: probeOf(0, present),
    process: proc,
    exists: () => Promise.resolve(false),
    mkdir: (p) => Promise.resolve(void made.push(p)),
    log: (l) => lines.push(l),
  });
  assert.deepEqual(proc.calls.map((c) => [c.program, ...c.args].join(" ")), [
    "apt-get update -qq",
    "apt-get install -y --no-install-recommends openssh-server socat util-linux",
  ]);
  assert.deepEqual(lines, [
    "crabbox: apt-get update -qq",
    "crabbox: installing missing packages: apt-get install -y --no-install-recommends " +
    "openssh-server socat util-linux",
    "crabbox: mkdir -p /run/sshd",
  ]);
  assert.deepEqual(made, ["/run/sshd"]);
});

Deno.test("ensurePackages not as root: exit 6 with the exact command, nothing started", async () => {
  const proc = fakeProcess({});
  const e = await ensurePackages(LOCAL_REQUIREMENTS, {
    probe: probeOf(
      1000,
      new Set(["/usr/bin/apt-get", ...EVERYTHING.filter((p) => !p.endsWith("socat"))]),
    ),
    process: proc,
    log: () => {},
  }).then(() => undefined, (e) => e);
  assert.ok(e instanceof CrabboxError);
  assert.equal(e.exitStatus, 6);
  assert.equal(
    e.message,
    "missing packages: socat (not running as root); " +
      "run as root: apt-get install -y --no-install-recommends socat",
  );
  assert.deepEqual(proc.calls, []);
});

Deno.test("ensurePackages: a failed apt-get install → exit 6 with the command; no apt-get → exit 6", async () => {
  const failing = fakeProcess({
    "apt-get": (call) => call.args[0] === "install" ? { code: 100 } : {},
  });
  const e = await ensurePackages(LOCAL_REQUIREMENTS, {
    probe: probeOf(
      0,
      new Set(["/usr/bin/apt-get", ...EVERYTHING.filter((p) => !p.endsWith("sshd"))]),
    ),
    process: failing,
    exists: () => Promise.resolve(true),
    log: () => {},
  }).then(() => undefined, (e) => e);
  assert.ok(e instanceof CrabboxError);
  assert.equal(e.exitStatus, 6);
  assert.match(
    e.message,
    /apt-get install -y --no-install-recommends openssh-server failed \(exit 100\)/,
  );
  assert.match(
    e.message,
    /run as root: apt-get install -y --no-install-recommends openssh-server$/,
  );

  const noApt = fakeProcess({});
  const e2 = await ensurePackages(LOCAL_REQUIREMENTS, {
    probe: probeOf(0, new Set(EVERYTHING.filter((p) => !p.endsWith("socat")))),
    process: noApt,
    log: () => {},
  }).then(() => undefined, (e) => e);
  assert.ok(e2 instanceof CrabboxError);
  assert.equal(e2.exitStatus, 6);
  assert.match(e2.message, /apt-get is not on PATH/);
  assert.deepEqual(noApt.calls, []);
});

Deno.test("ensurePackages: apt-get succeeded but a program is still missing → exit 6", async () => {
  const e = await ensurePackages(LOCAL_REQUIREMENTS, {
    probe: probeOf(
      0,
      new Set(["/usr/bin/apt-get", ...EVERYTHING.filter((p) => !p.endsWith("socat"))]),
    ),
    process: fakeProcess({ "apt-get": () => ({}) }),
    exists: () => Promise.resolve(true),
    log: () => {},
  }).then(() => undefined, (e) => e);
  assert.ok(e instanceof CrabboxError);
  assert.equal(e.exitStatus, 6);
  assert.match(e.message, /socat \(still missing after apt-get install\)/);
});

Deno.test("ensurePackages: nothing missing starts nothing", async () => {
  const proc = fakeProcess({});
  await ensurePackages(LOCAL_REQUIREMENTS, {
    probe: probeOf(0, new Set(EVERYTHING)),
    process: proc,
    exists: () => Promise.resolve(true),
    log: () => assert.fail("nothing to say"),
  });
  assert.deepEqual(proc.calls, []);
});
