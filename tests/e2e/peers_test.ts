/**
 * End-to-end test of the ssh-peer plane (`crew connect --peers`) on real
 * sshd boxes of the `local` provider: from inside every member, every other
 * member answers by `<slug>.cbx:<port>` and `<role>.cbx:<port>`; a member
 * whose sshd is killed and restarted gets its peers back; close leaves no
 * crabbox line in any box's /etc/hosts and no ssh process; the host's own
 * /etc/hosts is never written.
 */

import assert from "node:assert/strict";
import { releaseCrew, releaseLease } from "../../lib/lease/release.ts";
import { leaseBox, leaseCrew } from "../../lib/lease/create.ts";
import { runDoctor } from "../../lib/doctor/checks.ts";
import { connectCrew } from "../../lib/mesh/connect.ts";
import type { Lease } from "../../lib/lease/claims.ts";
import {
  boxSsh,
  meshPids,
  providerLease,
  requireE2E,
  restartBoxSshd,
  startNameServer,
} from "./_local.ts";

const e2e = requireE2E();
const CREW = "peere2e";

async function sha256(path: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What `host:port` answers when asked from inside `from` (socat in the box). */
async function askFrom(from: Lease, kh: string, host: string, port: number): Promise<string> {
  const r = await boxSsh(from.ssh!, ["socat", "-T", "3", "-", `TCP:${host}:${port}`], kh, "");
  return r.code === 0 ? r.stdout.trim() : `error ${r.code}: ${r.stderr.trim()}`;
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A temp home, a known_hosts for test ssh calls, and library options that collect log lines. */
async function fixture() {
  const home = await Deno.makeTempDir({ prefix: "cbx-peer-e2e-" });
  const env = (k: string) =>
    ({ CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com" } as Record<string, string>)[k] ??
      Deno.env.get(k);
  const logs: string[] = [];
  return {
    home,
    kh: `${home}/test_known_hosts`,
    logs,
    opts: { home, env, log: (m: string) => logs.push(m) },
  };
}

Deno.test({
  name: "e2e: ssh-peer plane — 3 members reach each other by <slug>.cbx and <role>.cbx",
  ignore: !e2e,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const hostHostsBefore = await sha256("/etc/hosts");
    const { home, kh, logs, opts } = await fixture();
    try {
      const crew = await leaseCrew(CREW, [
        { slug: "api-1", provider: "local", expose: [8080] },
        { slug: "db", provider: "local", expose: [5432] },
        { slug: "web", provider: "local", expose: [8080] },
      ], opts);
      const members = ["api-1", "db", "web"].map((s) => crew.member(s));
      const [api, db, web] = members;
      await Promise.all([
        startNameServer(api.ssh!, api.ssh!.keyPath!, 8080, "api-1"),
        startNameServer(db.ssh!, db.ssh!.keyPath!, 5432, "db"),
        startNameServer(web.ssh!, web.ssh!.keyPath!, 8080, "web"),
      ]);
      const served: [Lease, string, number][] = [[api, "api-1", 8080], [db, "db", 5432], [
        web,
        "web",
        8080,
      ]];
      const mesh = await connectCrew(CREW, {
        ...opts,
        peers: true,
        peerPollMs: 300,
        backoff: { initialMs: 100 },
      });
      try {
        await t.step("every member reaches every other by <slug>.cbx:<port>", async () => {
          for (const from of members) {
            for (const [to, name, port] of served) {
              if (to.id === from.id) continue;
              assert.equal(
                await askFrom(from, kh, `${name}.cbx`, port),
                name,
                `${from.slug}→${name}`,
              );
            }
          }
        });

        await t.step("the role alias: api.cbx is api-1 from every other member", async () => {
          assert.equal(await askFrom(db, kh, "api.cbx", 8080), "api-1");
          assert.equal(await askFrom(web, kh, "api.cbx", 8080), "api-1");
        });

        await t.step(
          "hosts block, env file and peer table on each member",
          async () => {
            const tables = mesh.peers();
            assert.equal(tables.length, 3);
            for (const tab of tables) {
              assert.equal(tab.error, undefined, `${tab.peer}: ${tab.error}`);
              assert.equal(tab.peers.length, 2);
              assert.ok(tab.peers.every((p) => p.mode === "address"), JSON.stringify(tab));
            }
            const r = await boxSsh(db.ssh!, ["cat", "/etc/hosts", "/run/crabbox/crew.env"], kh);
            assert.equal(r.code, 0, r.stderr);
            const block = r.stdout.split("\n");
            const begin = block.indexOf("# crabbox ssh-peer hosts begin");
            const end = block.indexOf("# crabbox ssh-peer hosts end");
            assert.ok(begin >= 0 && end === begin + 3, r.stdout);
            assert.match(block[begin + 1], /^127\.0\.0\.\d+ api-1\.cbx api\.cbx$/);
            assert.match(block[begin + 2], /^127\.0\.0\.\d+ web\.cbx$/);
            assert.match(r.stdout, /^export CRABBOX_CREW_API_1_8080=127\.0\.0\.\d+:8080$/m);
            assert.match(r.stdout, /^export CRABBOX_CREW_WEB_8080=127\.0\.0\.\d+:8080$/m);
            const mine = await boxSsh(api.ssh!, ["cat", "/etc/hosts"], kh);
            assert.doesNotMatch(mine.stdout, /api-1\.cbx/, "a member does not list itself");
            assert.equal(await sha256("/etc/hosts"), hostHostsBefore, "host /etc/hosts untouched");
          },
        );

        await t.step(
          "a member whose sshd is killed and restarted gets its peers back",
          async () => {
            await restartBoxSshd(providerLease(db));
            await waitFor("db up again", () => {
              const s = mesh.status().find((x) => x.leaseId === db.id)!;
              return Promise.resolve(s.state === "up" && s.restarts > 0);
            });
            await waitFor(
              "db reaches api-1.cbx again",
              async () => (await askFrom(db, kh, "api-1.cbx", 8080)) === "api-1",
            );
            assert.equal(await askFrom(db, kh, "web.cbx", 8080), "web");
            assert.equal(await askFrom(web, kh, "db.cbx", 5432), "db");
            assert.equal(await askFrom(api, kh, "db.cbx", 5432), "db");
          },
        );

        await t.step("doctor measures the ssh-peer cells from inside each member", async () => {
          const report = await runDoctor({ ...opts, crew: CREW });
          const cells = report.matrix!.filter((c) => c.reason.startsWith("ssh-peer"));
          assert.equal(cells.length, 6, JSON.stringify(report.matrix));
          for (const c of cells) assert.equal(c.verdict, "ok", `${c.from}→${c.to}: ${c.reason}`);
          const apiToDb = cells.find((c) => c.from === "api-1" && c.to === "db")!;
          assert.match(apiToDb.reason, /measured inside api-1\): db\.cbx:5432 ok/);
        });

        await t.step("a member joining and leaving updates every other member", async () => {
          const cache = await leaseBox({ slug: "cache", provider: "local", expose: [6379] }, {
            ...opts,
            crew: CREW,
          });
          await startNameServer(cache.ssh!, cache.ssh!.keyPath!, 6379, "cache");
          for (const from of members) {
            await waitFor(
              `${from.slug} reaches cache.cbx`,
              async () => (await askFrom(from, kh, "cache.cbx", 6379)) === "cache",
            );
          }
          assert.equal(
            await askFrom(cache, kh, "db.cbx", 5432),
            "db",
            "the newcomer reaches the others",
          );
          assert.equal(await askFrom(cache, kh, "api.cbx", 8080), "api-1");
          await releaseLease(cache, opts);
          await waitFor(
            "cache gone from the mesh",
            () => Promise.resolve(!mesh.status().some((s) => s.leaseId === cache.id)),
          );
          for (const from of members) {
            await waitFor(`${from.slug} forgets cache.cbx`, async () => {
              const r = await boxSsh(from.ssh!, ["cat", "/etc/hosts"], kh);
              return r.code === 0 && !/cache\.cbx/.test(r.stdout);
            });
          }
          assert.equal(
            await askFrom(web, kh, "db.cbx", 5432),
            "db",
            "the others still reach each other",
          );
        });
      } finally {
        await mesh.close();
      }

      await t.step(
        "close: no crabbox line in any box's /etc/hosts, no env file, no ssh",
        async () => {
          for (const m of members) {
            const r = await boxSsh(m.ssh!, ["sh", "-c", "cat /etc/hosts; ls /run/crabbox"], kh);
            assert.equal(r.code, 0, r.stderr);
            assert.doesNotMatch(r.stdout, /crabbox ssh-peer|\.cbx/, `${m.slug}: ${r.stdout}`);
            assert.doesNotMatch(r.stdout, /crew\.env/, `${m.slug}: env file left`);
          }
          assert.deepEqual(meshPids(home), []);
          assert.equal(await sha256("/etc/hosts"), hostHostsBefore, "host /etc/hosts untouched");
        },
      );

      await t.step(
        "--export --peers: daemons carry the plane; disconnect removes every block",
        async () => {
          const cli = (args: string[]) =>
            new Deno.Command(Deno.execPath(), {
              args: [
                "run",
                "--allow-all",
                new URL("../../cli.ts", import.meta.url).pathname,
                ...args,
              ],
              env: { CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com", NO_COLOR: "1" },
              stdin: "null",
              stdout: "piped",
              stderr: "piped",
            }).output();
          const up = await cli(["crew", "connect", CREW, "--export", "--peers"]);
          assert.equal(up.code, 0, new TextDecoder().decode(up.stderr));
          assert.equal(await askFrom(web, kh, "db.cbx", 5432), "db");
          assert.equal(await askFrom(db, kh, "api.cbx", 8080), "api-1");
          const json = await cli(["crew", "connect", CREW, "--json", "--peers"]);
          const d = JSON.parse(new TextDecoder().decode(json.stdout));
          assert.equal(d.peersPlanned, false, "the live table of the daemons");
          assert.equal(d.peers.length, 3);
          const down = await cli(["crew", "disconnect", CREW]);
          assert.equal(down.code, 0, new TextDecoder().decode(down.stderr));
          await waitFor("no ssh left", () => Promise.resolve(meshPids(home).length === 0), 5000);
          for (const m of members) {
            const r = await boxSsh(m.ssh!, ["cat", "/etc/hosts"], kh);
            assert.doesNotMatch(r.stdout, /crabbox ssh-peer|\.cbx/, `${m.slug}: ${r.stdout}`);
          }
          assert.equal(await sha256("/etc/hosts"), hostHostsBefore, "host /etc/hosts untouched");
        },
      );
    } finally {
      await releaseCrew(CREW, opts).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
      if (logs.length) console.error(logs.join("\n"));
    }
  },
});

Deno.test({
  name:
    "e2e: ssh-peer plane without GatewayPorts clientspecified falls back to 127.0.0.1:<allocated> and says so; GatewayPorts yes keeps the plane off",
  ignore: !e2e,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { home, kh, logs, opts } = await fixture();
    const crewName = "peerfb";
    try {
      const crew = await leaseCrew(crewName, [
        { slug: "a", provider: "local", expose: [] },
        { slug: "b", provider: "local", expose: [7070] },
      ], opts);
      const [a, b] = [crew.member("a"), crew.member("b")];
      await startNameServer(b.ssh!, b.ssh!.keyPath!, 7070, "b");
      // a's sshd as a static host's would be: no GatewayPorts line (sshd's default: no).
      const cfg = `${a.data!.boxDir}/sshd_config`;
      const text = await Deno.readTextFile(cfg);
      assert.match(text, /^GatewayPorts clientspecified$/m);
      await Deno.writeTextFile(cfg, text.replace(/^GatewayPorts clientspecified\n/m, ""));
      await restartBoxSshd(providerLease(a));
      const mesh = await connectCrew(crewName, { ...opts, peers: true, peerPollMs: 0 });
      try {
        const table = mesh.peers().find((m) => m.peer === "a")!;
        assert.equal(table.peers.length, 1);
        const p = table.peers[0];
        assert.equal(p.mode, "fallback");
        assert.match(p.reason!, /GatewayPorts/);
        assert.match(p.address, /^127\.0\.0\.1:\d+$/);
        assert.ok(
          logs.some((l) => /a: sshd lacks GatewayPorts clientspecified/.test(l)),
          logs.join("\n"),
        );
        const r = await boxSsh(a.ssh!, ["cat", "/etc/hosts", "/run/crabbox/crew.env"], kh);
        assert.doesNotMatch(r.stdout, /b\.cbx/, "no hosts line without an address of its own");
        assert.match(
          r.stdout,
          new RegExp(`^export CRABBOX_CREW_B_7070=${p.address.replace(/\./g, "\\.")}$`, "m"),
        );
        const port = Number(p.address.split(":")[1]);
        assert.equal(await askFrom(a, kh, "127.0.0.1", port), "b");
      } finally {
        await mesh.close();
      }
      assert.deepEqual(meshPids(home), []);
      // GatewayPorts yes would put peers on every interface of a: the plane stays off there.
      await Deno.writeTextFile(
        cfg,
        text.replace(/^GatewayPorts clientspecified$/m, "GatewayPorts yes"),
      );
      await restartBoxSshd(providerLease(a));
      const again = await connectCrew(crewName, { ...opts, peers: true, peerPollMs: 0 });
      try {
        const tab = again.peers().find((m) => m.peer === "a")!;
        assert.deepEqual(tab.peers, []);
        assert.match(tab.skipped[0].reason, /every interface/);
        const r = await boxSsh(a.ssh!, ["cat", "/proc/net/tcp"], kh);
        const wild = r.stdout.split("\n").filter((l) =>
          / 00000000:[0-9A-F]{4} 00000000:0000 0A /.test(l)
        );
        assert.deepEqual(wild, [], "nothing listens on a's wildcard address");
      } finally {
        await again.close();
      }
    } finally {
      await releaseCrew(crewName, opts).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
