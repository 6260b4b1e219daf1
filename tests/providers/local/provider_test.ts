/** Unit tests of the local provider's pure parts (no root needed). */

import assert from "node:assert/strict";
import { CrabboxError, ExitStatus } from "../../../lib/core/errors.ts";
import {
  boxHostname,
  checkLocalPrerequisites,
  localPrerequisiteError,
  loopbackAddressFor,
  type PrerequisiteProbe,
  relayArgv,
  renderSshdConfig,
} from "../../../providers/local/mod.ts";
import { procStartTime } from "../../../lib/process/mod.ts";
import { createLocalProvider } from "../../../providers/local/provider.ts";

function probe(euid: number, present: string[]): PrerequisiteProbe {
  return {
    euid: () => euid,
    isExecutable: (p) => present.includes(p),
    path: () => "/usr/sbin:/usr/bin",
  };
}

const ALL = [
  "/usr/sbin/ip",
  "/usr/sbin/sshd",
  "/usr/bin/socat",
  "/usr/bin/unshare",
  "/usr/bin/setsid",
  "/usr/bin/ssh",
  "/usr/bin/ssh-keygen",
];

Deno.test("checkLocalPrerequisites lists root and missing programs", () => {
  assert.deepEqual(checkLocalPrerequisites(probe(0, ALL)), []);
  assert.deepEqual(
    checkLocalPrerequisites(probe(1000, ALL.filter((p) => !p.endsWith("socat")))),
    ["root", "socat"],
  );
  assert.deepEqual(checkLocalPrerequisites(probe(0, [])), [
    "ip",
    "sshd",
    "socat",
    "unshare",
    "setsid",
    "ssh",
    "ssh-keygen",
  ]);
});

Deno.test("the prerequisite error says exactly what to run", () => {
  const e = localPrerequisiteError(["root", "socat", "sshd"]);
  assert.ok(e instanceof CrabboxError);
  assert.equal(e.kind, "prerequisite");
  assert.equal(e.exitStatus, ExitStatus.prerequisite);
  assert.equal(e.exitStatus, 6);
  assert.equal(
    e.message,
    "local provider needs root and: apt-get install -y openssh-server socat " +
      "(missing: root, socat, sshd)",
  );
  assert.equal(
    e.hint,
    "local provider needs root and: " +
      "apt-get install -y openssh-server openssh-client iproute2 socat util-linux",
  );
  assert.equal(
    localPrerequisiteError(["unshare", "setsid"]).message,
    "local provider needs apt-get install -y util-linux (missing: unshare, setsid)",
  );
  assert.match(localPrerequisiteError(["root"]).message, /^local provider needs root \(run/);
});

Deno.test("loopbackAddressFor is stable, in 127.77/16 and skips used addresses", async () => {
  const id = "cbx-0123456789ab";
  const first = await loopbackAddressFor(id, new Set());
  assert.match(first, /^127\.77\.\d{1,3}\.\d{1,3}$/);
  assert.equal(await loopbackAddressFor(id, new Set()), first);
  const last = Number(first.split(".")[3]);
  assert.ok(last >= 1 && last <= 254);
  const second = await loopbackAddressFor(id, new Set([first]));
  assert.notEqual(second, first);
});

Deno.test("renderSshdConfig pins everything the box needs and rejects unsafe paths", () => {
  const text = renderSshdConfig("/root/.crabbox/local/cbx-0123456789ab");
  for (
    const line of [
      "ListenAddress 127.0.0.1:22",
      'AuthorizedKeysFile "/root/.crabbox/local/cbx-0123456789ab/authorized_keys"',
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "AllowTcpForwarding yes",
      "MaxStartups 100:30:200",
      "MaxSessions 50",
      "Subsystem sftp internal-sftp",
    ]
  ) assert.ok(text.split("\n").includes(line), line);
  for (const bad of ["relative/dir", '/tmp/a"b', "/tmp/100%", "/tmp/a\nHostKey /x"]) {
    assert.throws(() => renderSshdConfig(bad), CrabboxError);
  }
});

Deno.test("relayArgv escapes the inner socat address and validates its inputs", () => {
  assert.deepEqual(relayArgv("cbx-0123456789ab", "127.77.3.4", 22), [
    "socat",
    "TCP-LISTEN:22,bind=127.77.3.4,reuseaddr,fork,backlog=512,nodelay",
    "EXEC:ip netns exec cbx-0123456789ab socat STDIO TCP\\:127.0.0.1\\:22\\,nodelay",
  ]);
  assert.throws(() => relayArgv("cbx-x y", "127.77.3.4", 22), CrabboxError);
  assert.throws(() => relayArgv("cbx-0123456789ab", "10.0.0.1", 22), CrabboxError);
});

Deno.test("boxHostname and procStartTime", () => {
  assert.equal(boxHostname("worker-2"), "crabbox-worker-2");
  assert.throws(() => boxHostname("Bad Slug"), CrabboxError);
  assert.match(procStartTime(Deno.pid) ?? "", /^\d+$/);
  assert.equal(procStartTime(0x7ffffffe), undefined);
});

Deno.test("list: a crew selector returns exactly the crew's boxes; a record-less box dir only unfiltered", async () => {
  const home = await Deno.makeTempDir({ prefix: "cbx-local-list-" });
  try {
    const box = (leaseId: string, crew: string) => ({
      version: 1,
      leaseId,
      slug: `s${leaseId.slice(-2)}`,
      hostname: `crabbox-s${leaseId.slice(-2)}`,
      labels: { crabbox: "true", "crabbox-lease": leaseId, crew },
      createdAt: "2026-01-01T00:00:00.000Z",
      ready: true,
      loopback: { ip: "127.77.0.9", port: 22 },
      keyPath: "/nonexistent/key",
      creator: { pid: 1, startTime: "0" },
    });
    const records = {
      "cbx-0000000000a1": box("cbx-0000000000a1", "a"),
      "cbx-0000000000b1": box("cbx-0000000000b1", "b"),
      "cbx-0000000000a2": box("cbx-0000000000a2", "a"),
    };
    for (const [id, rec] of Object.entries(records)) {
      await Deno.mkdir(`${home}/local/${id}`, { recursive: true });
      await Deno.writeTextFile(`${home}/local/${id}/box.json`, JSON.stringify(rec));
    }
    await Deno.mkdir(`${home}/local/cbx-0000000000c1`); // a create that crashed before its record
    const local = createLocalProvider({
      home,
      env: () => undefined,
      config: {},
      fetch,
      log: () => {},
    });
    const ids = (ls: { leaseId: string }[]) => ls.map((l) => l.leaseId).sort();
    const a = await local.list({ crew: "a" });
    assert.deepEqual(ids(a), ["cbx-0000000000a1", "cbx-0000000000a2"]);
    assert.ok(a.every((l) => l.state === "stopped" && l.labels.crew === "a"));
    assert.deepEqual(ids(await local.list({ crew: "b" })), ["cbx-0000000000b1"]);
    assert.deepEqual(ids(await local.list({ crew: "none" })), []);
    assert.deepEqual(ids(await local.list({})), [
      "cbx-0000000000a1",
      "cbx-0000000000a2",
      "cbx-0000000000b1",
      "cbx-0000000000c1",
    ]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
