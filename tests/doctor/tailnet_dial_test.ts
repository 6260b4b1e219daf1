/** doctor --online's measured tailnet matrix: probe argv, parsing, and the fan-out. */

import assert from "node:assert/strict";
import type { Lease } from "../../lib/lease/claims.ts";
import { dialProbeArgs, measureTailnet, parseDialProbe } from "../../lib/doctor/tailnet_dial.ts";

function member(slug: string, ip: string | undefined, expose: number[] = []): Lease {
  return {
    id: `cbx-00000000000${slug.length}`,
    provider: "hetzner",
    providerId: "1",
    crew: "tn",
    slug,
    role: slug.replace(/-\d+$/, ""),
    owner: "alice",
    labels: {},
    expose,
    tailscale: true,
    tailnet: ip ? { ipv4: ip } : undefined,
    createdAt: "2026-01-01T00:00:00Z",
    state: "active",
  };
}

Deno.test("dialProbeArgs: validated quadruples; hostile values left out", () => {
  assert.deepEqual(
    dialProbeArgs([
      { slug: "db", role: "db", ip: "10.1.2.3", ports: [5432] },
      { slug: "worker-1", role: "worker", ip: "10.1.2.4", ports: [] },
      { slug: "x;reboot", role: "x", ip: "10.1.2.5", ports: [1] },
      { slug: "y", role: "y", ip: "10.1.2.300", ports: [1] },
    ]),
    ["db", "db", "10.1.2.3", "5432", "worker-1", "worker", "10.1.2.4", "-"],
  );
});

Deno.test("parseDialProbe: ok only when hosts.cbx, both names and every port hold", () => {
  const peers = [
    { slug: "db", role: "db", ip: "10.1.2.3", ports: [5432] },
    { slug: "worker-1", role: "worker", ip: "10.1.2.4", ports: [8080] },
  ];
  const out = [
    "hosts db 10.1.2.3",
    "resolve db.cbx 10.1.2.3 ",
    "resolve db.cbx 10.1.2.3 ",
    "tcp db 5432 ok",
    "hosts worker-1 -",
    "resolve worker-1.cbx ",
    "resolve worker.cbx 10.1.2.4 10.1.2.9 ",
    "tcp worker-1 8080 fail",
  ].join("\n");
  const [db, worker] = parseDialProbe("api", peers, out);
  assert.deepEqual(db, {
    from: "api",
    to: "db",
    hosts: true,
    resolves: true,
    role: true,
    ports: [{ port: 5432, ok: true }],
    verdict: "ok",
    reason: "",
  });
  assert.equal(worker.verdict, "no");
  assert.equal(worker.role, true);
  assert.equal(
    worker.reason,
    "/etc/hosts.cbx has - for worker-1.cbx; worker-1.cbx does not resolve to 10.1.2.4; tcp worker-1.cbx:8080 failed",
  );
});

Deno.test("measureTailnet: every joined member probes the others; pending members are left out; a failed probe is a no with its reason", async () => {
  const members = [
    member("api", "10.0.0.2"),
    member("db", "10.0.0.3", [5432]),
    member("new", undefined),
  ];
  const calls: string[] = [];
  const cells = await measureTailnet(members, (m, args) => {
    calls.push(`${m.slug}: ${args.join(" ")}`);
    if (m.slug === "db") {
      return Promise.resolve({ code: 255, stdout: "", stderr: "ssh: connect refused" });
    }
    return Promise.resolve({
      code: 0,
      stdout:
        "hosts db 10.0.0.3\nresolve db.cbx 10.0.0.3\nresolve db.cbx 10.0.0.3\ntcp db 5432 ok\n",
      stderr: "",
    });
  });
  assert.deepEqual(calls.sort(), ["api: db db 10.0.0.3 5432", "db: api api 10.0.0.2 -"]);
  assert.deepEqual(cells.map((c) => [c.from, c.to, c.verdict]), [["api", "db", "ok"], [
    "db",
    "api",
    "no",
  ]]);
  assert.equal(cells[1].reason, "probe on db failed: ssh: connect refused");
});
