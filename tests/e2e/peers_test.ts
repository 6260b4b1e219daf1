/**
 * End-to-end test of the ssh-peer plane (`crew connect --peers`) on real
 * sshd boxes of the `local` provider: from inside every member, every other
 * member answers by `<slug>.cbx:<port>` and `<role>.cbx:<port>`; a member
 * whose sshd is killed and restarted gets its peers back; close leaves no
 * crabbox line in any box's /etc/hosts and no ssh process; the host's own
 * /etc/hosts is never written.
 */

import assert from "node:assert/strict";
import { releaseCrew } from "../../lib/lease/leases.ts";
import { leaseCrew } from "../../lib/lease/create.ts";
import { connectCrew } from "../../lib/mesh/connect.ts";
import type { Lease } from "../../lib/lease/claims.ts";
import type { ProviderLease } from "../../providers/types.ts";
import { boxSsh, pidsMentioning, requireE2E, restartBoxSshd, startNameServer } from "./_local.ts";

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

function meshPids(home: string): number[] {
  return pidsMentioning(`${home}/crew/`).filter((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0")[0].endsWith("ssh");
    } catch {
      return false;
    }
  });
}

function providerLease(l: Lease): ProviderLease {
  return {
    providerId: l.providerId,
    leaseId: l.id,
    labels: l.labels,
    state: "running",
    ssh: l.ssh,
    data: l.data,
  };
}

Deno.test({
  name: "e2e: ssh-peer plane — 3 members reach each other by <slug>.cbx and <role>.cbx",
  ignore: !e2e,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const hostHostsBefore = await sha256("/etc/hosts");
    const home = await Deno.makeTempDir({ prefix: "cbx-peer-e2e-" });
    const kh = `${home}/test_known_hosts`;
    const env = (k: string) =>
      ({ CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com" } as Record<string, string>)[k] ??
        Deno.env.get(k);
    const logs: string[] = [];
    const opts = { home, env, log: (m: string) => logs.push(m) };
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
      const mesh = await connectCrew(CREW, { ...opts, peers: true, backoff: { initialMs: 100 } });
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
