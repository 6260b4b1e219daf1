/**
 * End-to-end tests of the SSH-mesh against real boxes of the `local`
 * provider (network namespace + sshd each, a name service on each box's own
 * 127.0.0.1): `crew connect --export`, foreground reconnects and signals,
 * `--json`, pid-reuse-safe `disconnect`, ControlMaster reuse, live forwards,
 * and readiness against a closed port.
 */

import assert from "node:assert/strict";
import { type Lease, updateClaim } from "../../lib/lease/claims.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { releaseCrew } from "../../lib/lease/release.ts";
import { leaseCrew } from "../../lib/lease/create.ts";
import { connectCrew } from "../../lib/mesh/connect.ts";
import { addLiveForward } from "../../lib/mesh/live.ts";
import type { ConnectTiming, MeshEvent } from "../../lib/mesh/plan.ts";
import { isLoopbackPortFree } from "../../lib/mesh/forwards.ts";
import { parseDaemonState, parseHostsFile } from "../../lib/mesh/files.ts";
import { processIdentity } from "../../lib/process/identity.ts";
import { runSsh, sshCommandArgs } from "../../lib/ssh/args.ts";
import type { SshTarget } from "../../providers/types.ts";
import {
  killBoxSshd,
  meshPids,
  meshTunnelPids,
  providerLease,
  requireE2E,
  restartBoxSshd,
} from "./_local.ts";
import { controlForLease } from "../../lib/ssh/control.ts";
import { meshPaths } from "../../lib/core/home.ts";
import { prepareKnownHosts } from "../../lib/ssh/known_hosts.ts";

const e2e = requireE2E();
const CREW = "meshe2e";
const dec = new TextDecoder();

const NAME_SERVER = `set -eu
port=$1; text=$2
setsid socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork SYSTEM:"echo $text" \\
  </dev/null >/dev/null 2>&1 &
for _ in $(seq 100); do
  if ss -Hltn "sport = :$port" | grep -q .; then echo "$!"; exit 0; fi
  sleep 0.05
done
exit 1
`;

/** A name service on the box's own 127.0.0.1:port answering `text`. */
async function serve(home: string, target: SshTarget, port: number, text: string): Promise<number> {
  const kh = `${home}/test_known_hosts`;
  await prepareKnownHosts(target, kh);
  const r = await runSsh(
    sshCommandArgs(target, ["bash", "-s", "--", String(port), text], { knownHostsFile: kh }),
    { stdin: NAME_SERVER },
  );
  assert.equal(r.code, 0, `name server ${text}: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** Read what a TCP service says first (the name servers answer and hang up). */
async function fetchName(address: string): Promise<string> {
  const [host, port] = address.split(":");
  const conn = await Deno.connect({ hostname: host, port: Number(port) });
  try {
    let text = "";
    const buf = new Uint8Array(256);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += dec.decode(buf.subarray(0, n));
    }
    return text.trim();
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/** Run `fn` while the claim of `lease` names a port nothing listens on (its box is unchanged). */
async function withStaleClaim(home: string, lease: Lease, fn: () => Promise<void>): Promise<void> {
  await updateClaim(home, lease.id, (l) => l && { ...l, ssh: { ...l.ssh!, port: 1 } });
  try {
    await fn();
  } finally {
    await updateClaim(home, lease.id, (l) => l && { ...l, ssh: lease.ssh });
  }
}

/** argv prefix of the crew CLI: `crabbox crew`. */
function crewCli(): string[] {
  return ["run", "--allow-all", new URL("../../cli.ts", import.meta.url).pathname, "crew"];
}

async function runCli(home: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...crewCli(), ...args],
    env: { CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com", NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A foreground `crew connect` subprocess with line-buffered stdout/stderr. */
class Foreground {
  child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  done: Promise<Deno.CommandStatus>;
  constructor(home: string, prefix: string[], args: string[]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: [...prefix, ...args],
      env: { CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (s: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
      for await (const chunk of s) this[key] += dec.decode(chunk);
    };
    const pumps = Promise.all([
      pump(this.child.stdout, "stdout"),
      pump(this.child.stderr, "stderr"),
    ]);
    this.done = pumps.then(() => this.child.status);
  }
  async ready(): Promise<Record<string, string>> {
    await waitFor(
      "ready",
      () => /SSH-mesh ready/.test(this.stdout) && /wrote .*env/.test(this.stdout),
      30_000,
    )
      .catch((e) => {
        throw new Error(`${e.message}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      });
    const env: Record<string, string> = {};
    for (const m of this.stdout.matchAll(/^export (\w+)=(\S+)$/gm)) env[m[1]] = m[2];
    return env;
  }
}

Deno.test({
  name: "e2e: SSH-mesh over 3 real members",
  ignore: !e2e,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const home = await Deno.makeTempDir({ prefix: "cbx-mesh-e2e-" });
    const env = (k: string) =>
      ({ CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com" } as Record<string, string>)[k] ??
        Deno.env.get(k);
    const opts = { home, env };
    const prefix = crewCli();
    try {
      const crew = await leaseCrew(CREW, [
        { slug: "api", provider: "local", expose: [8080] },
        { slug: "db", provider: "local", expose: [8080] },
        { slug: "web", provider: "local", expose: [8080, 9090] },
      ], opts);
      const m = (slug: string) => crew.member(slug);
      let [, , , web9090] = await Promise.all([
        serve(home, m("api").ssh!, 8080, "api"),
        serve(home, m("db").ssh!, 8080, "db"),
        serve(home, m("web").ssh!, 8080, "web"),
        serve(home, m("web").ssh!, 9090, "web-9090"),
      ]);
      const want: Record<string, string> = {
        CRABBOX_CREW_API_8080: "api",
        CRABBOX_CREW_DB_8080: "db",
        CRABBOX_CREW_WEB_8080: "web",
        CRABBOX_CREW_WEB_9090: "web-9090",
      };

      await t.step("peers: transport, endpoint, exposed ports and planes", async () => {
        const r = await runCli(home, ["peers", CREW, "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const { members } = JSON.parse(r.stdout);
        assert.deepEqual(
          members.map((
            p: { peer: string; transport: string; expose: number[]; planes: string[] },
          ) => [
            p.peer,
            p.transport,
            p.expose,
            p.planes,
          ]),
          [
            ["api", "ssh", [8080], ["ssh", "ssh-peer"]],
            ["db", "ssh", [8080], ["ssh", "ssh-peer"]],
            ["web", "ssh", [8080, 9090], ["ssh", "ssh-peer"]],
          ],
        );
        assert.equal(members[0].endpoint, `ssh://${m("api").ssh!.host}:22`);
        const text = await runCli(home, ["peers", CREW]);
        assert.match(text.stdout, /^PEER\s+LEASE\s+PROVIDER/);
      });

      await t.step("--json starts nothing and runs no ssh at all", async () => {
        const rec = `${home}/ssh_calls`;
        const wrapper = `${home}/ssh_wrapper.sh`;
        await Deno.writeTextFile(wrapper, `#!/bin/sh\necho "$@" >> ${rec}\nexec ssh "$@"\n`);
        await Deno.chmod(wrapper, 0o755);
        const r = await runCli(home, ["connect", CREW, "--json"], { CRABBOX_SSH: wrapper });
        assert.equal(r.code, 0, r.stderr);
        const j = JSON.parse(r.stdout);
        assert.deepEqual(Object.keys(j), ["hostsPath", "envPath", "exports", "forwards"]);
        assert.deepEqual(
          j.forwards.map((f: { peer: string; remotePort: number }) => `${f.peer}:${f.remotePort}`),
          ["api:8080", "db:8080", "web:8080", "web:9090"],
        );
        assert.equal(j.forwards[0].leaseId, m("api").id);
        assert.deepEqual(meshPids(home), []);
        await assert.rejects(Deno.stat(rec), Deno.errors.NotFound);
        await assert.rejects(Deno.stat(meshPaths(home, CREW).daemon), Deno.errors.NotFound);
      });

      await t.step("--export: every exported address answers with the right member", async () => {
        const r = await runCli(home, ["connect", "--export", CREW]);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.trim().split("\n");
        assert.ok(
          lines.every((l) => /^export CRABBOX_CREW_\w+=127\.0\.0\.1:\d+$/.test(l)),
          r.stdout,
        );
        // eval in a real shell, then fetch through every address
        const sh = await new Deno.Command("sh", {
          args: ["-c", `eval "$(cat)"; env | grep ^CRABBOX_CREW_ | sort`],
          stdin: "piped",
          stdout: "piped",
        }).spawn();
        const w = sh.stdin.getWriter();
        await w.write(new TextEncoder().encode(r.stdout));
        await w.close();
        const envOut = dec.decode((await sh.output()).stdout);
        const vars = Object.fromEntries(envOut.trim().split("\n").map((l) => l.split("=")));
        assert.deepEqual(Object.keys(vars).sort(), Object.keys(want).sort());
        for (const [k, name] of Object.entries(want)) {
          assert.equal(await fetchName(vars[k]), name, k);
        }
        const state = parseDaemonState(
          await Deno.readTextFile(meshPaths(home, CREW).daemon),
          "daemon.json",
        );
        assert.equal(state.processes.length, 3);
        assert.equal(meshTunnelPids(home).length, 3);
        const hosts = parseHostsFile(await Deno.readTextFile(meshPaths(home, CREW).hosts));
        assert.equal(hosts.length, 4);
        // the ssh processes are detached: own session
        for (const p of state.processes) {
          const stat = await Deno.readTextFile(`/proc/${p.pid}/stat`);
          const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
          assert.equal(Number(fields[3]), p.pid, "session id = pid (setsid)");
        }
      });

      await t.step("run/ssh reuse the member's ControlMaster", async () => {
        const api = m("api");
        const control = await controlForLease(home, api, { env });
        assert.equal(control.master, "no");
        // Without the key a fresh connection is refused; through the master it works.
        const noKey: SshTarget = { host: api.ssh!.host, port: api.ssh!.port, user: "root" };
        const kh = meshPaths(home, CREW).knownHosts;
        const via = await runSsh(
          sshCommandArgs(noKey, ["echo", "via-master"], { knownHostsFile: kh, control }),
        );
        assert.equal(via.code, 0, via.stderr);
        assert.equal(via.stdout.trim(), "via-master");
        const fresh = await runSsh(sshCommandArgs(noKey, ["true"], { knownHostsFile: kh }));
        assert.equal(fresh.code, 255);
        // crew member without a mesh process (not connected) → none
        assert.deepEqual(
          await controlForLease(home, { ...api, id: "cbx-000000000000" }, { env }),
          { master: "none" },
        );
      });

      await t.step("crabbox run --id on a connected member goes through its master", async () => {
        const api = m("api");
        const key = api.ssh!.keyPath!;
        // Hide the crew key: a fresh connection cannot authenticate, the master needs none.
        await Deno.rename(key, `${key}.hidden`);
        try {
          const main = new URL("../../cli.ts", import.meta.url).pathname;
          const out = await new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", main, "run", "--id", `${CREW}/api`, "--", "echo", "via-master"],
            env: { CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com", NO_COLOR: "1" },
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.equal(out.code, 0, dec.decode(out.stderr));
          assert.equal(dec.decode(out.stdout).trim(), "via-master");
        } finally {
          await Deno.rename(`${key}.hidden`, key);
        }
      });

      await t.step("exposePort on a connected member adds a live forward", async () => {
        const api = m("api");
        await serve(home, api.ssh!, 7070, "api-7070");
        const pidsBefore = meshPids(home);
        const f = await addLiveForward(home, api, 7070, { env });
        assert.ok(f);
        assert.equal(await fetchName(`127.0.0.1:${f.localPort}`), "api-7070");
        assert.deepEqual(meshPids(home), pidsBefore, "tunnel not restarted");
        const state = parseDaemonState(
          await Deno.readTextFile(meshPaths(home, CREW).daemon),
          "daemon.json",
        );
        const rec = state.processes.find((p) => p.leaseId === api.id)!;
        assert.deepEqual(rec.forwards.map((x) => x.remotePort), [8080, 7070]);
        const envText = await Deno.readTextFile(meshPaths(home, CREW).env);
        assert.match(
          envText,
          new RegExp(`^export CRABBOX_CREW_API_7070=127\\.0\\.0\\.1:${f.localPort}$`, "m"),
        );
        const again = await addLiveForward(home, api, 7070, { env });
        assert.equal(again?.localPort, f.localPort);
      });

      await t.step("disconnect kills nothing whose start time or argv does not match", async () => {
        const path = meshPaths(home, CREW).daemon;
        const original = await Deno.readTextFile(path);
        const state = parseDaemonState(original, path);
        const sleeper = new Deno.Command("sleep", { args: ["60"] }).spawn();
        try {
          const forged = structuredClone(state);
          forged.processes[0].pid = sleeper.pid; // a "reused" pid: unrelated process
          forged.processes[1].startTime = String(Number(forged.processes[1].startTime) + 1);
          forged.processes[2].argv = [...forged.processes[2].argv, "-v"];
          await Deno.writeTextFile(path, JSON.stringify(forged));
          const r = await runCli(home, ["disconnect", CREW]);
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, /disconnected 0 SSH-mesh daemon\(s\)/);
          assert.equal(meshPids(home).length, 3, "real daemons untouched");
          assert.ok(await processIdentity(sleeper.pid), "the unrelated process still runs");
        } finally {
          sleeper.kill("SIGKILL");
          await sleeper.status;
        }
        await Deno.writeTextFile(path, original);
        const r = await runCli(home, ["disconnect", CREW]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /disconnected 3 SSH-mesh daemon\(s\)/);
        await waitFor("no ssh left", () => meshPids(home).length === 0, 5000);
        const again = await runCli(home, ["disconnect", CREW]);
        assert.equal(again.code, 0);
        assert.match(again.stdout, /has no recorded SSH-mesh daemons/);
        assert.deepEqual(await controlForLease(home, m("api"), { env }), { master: "none" });
      });

      await t.step(
        "foreground: a member whose sshd dies comes back, the others never drop",
        async () => {
          const fg = new Foreground(home, prefix, ["connect", CREW]);
          try {
            const vars = await fg.ready();
            assert.equal(Object.keys(vars).length, 4, fg.stdout);
            let stop = false;
            const failures: string[] = [];
            let probes = 0;
            const loop = (async () => {
              while (!stop) {
                for (const k of ["CRABBOX_CREW_API_8080", "CRABBOX_CREW_DB_8080"]) {
                  try {
                    const got = await fetchName(vars[k]);
                    if (got !== want[k]) failures.push(`${k}: ${JSON.stringify(got)}`);
                  } catch (e) {
                    failures.push(`${k}: ${(e as Error).message}`);
                  }
                  probes++;
                }
                await new Promise((r) => setTimeout(r, 20));
              }
            })();
            const web = providerLease(m("web"));
            await killBoxSshd(web);
            await waitFor("web down", () => /web down/.test(fg.stderr), 20_000);
            await new Promise((r) => setTimeout(r, 700));
            await restartBoxSshd(web);
            await waitFor("web reconnected", () => /web reconnected/.test(fg.stderr), 40_000);
            assert.equal(await fetchName(vars.CRABBOX_CREW_WEB_8080), "web");
            assert.equal(await fetchName(vars.CRABBOX_CREW_WEB_9090), "web-9090");
            stop = true;
            await loop;
            assert.deepEqual(failures, [], `after ${probes} probes`);
            assert.ok(probes > 20);
          } finally {
            fg.child.kill("SIGINT");
          }
          const st = await fg.done;
          assert.equal(st.code, 0, fg.stderr);
          assert.deepEqual(meshPids(home), []);
        },
      );

      for (const sig of ["SIGINT", "SIGTERM", "SIGHUP", "SIGTSTP"] as const) {
        await t.step(`foreground: ${sig} tears down, exit 0, no ssh left`, async () => {
          const claimFiles = ["api", "db", "web"].map((s) => `${home}/claims/${m(s).id}.json`);
          const touchedAt = async () =>
            await Promise.all(
              claimFiles.map(async (f) =>
                Number(JSON.parse(await Deno.readTextFile(f)).labels["crabbox-touched"])
              ),
            );
          if (sig === "SIGTERM") {
            for (const f of claimFiles) {
              const c = JSON.parse(await Deno.readTextFile(f));
              c.labels["crabbox-touched"] = "1000";
              await Deno.writeTextFile(f, JSON.stringify(c));
            }
          }
          const fg = new Foreground(home, prefix, ["connect", CREW]);
          try {
            const vars = await fg.ready();
            assert.equal(await fetchName(vars.CRABBOX_CREW_DB_8080), "db");
            assert.equal(meshTunnelPids(home).length, 3);
            if (sig === "SIGTERM") {
              // A foreground connect marks every member as used (once it is ready).
              const since = Date.now() / 1000 - 60;
              await waitFor(
                "crew touched",
                async () => (await touchedAt()).every((x) => x > since),
              );
            }
            if (sig === "SIGINT") {
              // --json while a foreground connect runs reports its live table
              const j = await runCli(home, ["connect", CREW, "--json"]);
              assert.equal(j.code, 0, j.stderr);
              assert.deepEqual(
                JSON.parse(j.stdout).exports,
                fg.stdout.split("\n").filter((l) => l.startsWith("export ")),
              );
            }
          } finally {
            fg.child.kill(sig);
          }
          const st = await fg.done;
          assert.equal(st.code, 0, fg.stderr);
          assert.deepEqual(meshPids(home), [], `${sig}: ssh left`);
        });
      }

      await t.step("two foreground connects at once: one is ready, the other exits 7", async () => {
        // Run a few times: without a lock both could lose (each took a member first).
        for (let round = 0; round < 5; round++) {
          const both = [0, 1].map(() => new Foreground(home, prefix, ["connect", CREW]));
          try {
            await waitFor(
              "one ready and one refused",
              () =>
                both.some((f) => /SSH-mesh ready/.test(f.stdout)) &&
                both.some((f) => /already connected/.test(f.stderr)),
              30_000,
            ).catch((e) => {
              throw new Error(
                `${e.message}\n${both.map((f) => f.stdout + f.stderr).join("\n---\n")}`,
              );
            });
            const loser = both.find((f) => /already connected/.test(f.stderr))!;
            assert.equal((await loser.done).code, 7, loser.stderr);
            const winner = both.find((f) => f !== loser)!;
            const vars = await winner.ready();
            assert.equal(await fetchName(vars.CRABBOX_CREW_API_8080), "api");
            assert.equal(meshTunnelPids(home).length, 3);
          } finally {
            for (const f of both) {
              try {
                f.child.kill("SIGINT");
              } catch { /* exited */ }
            }
          }
          for (const f of both) await f.done;
          assert.deepEqual(meshPids(home), []);
        }
      });

      await t.step("foreground: even SIGKILL of the CLI leaves no ssh behind", async () => {
        const fg = new Foreground(home, prefix, ["connect", CREW]);
        await fg.ready();
        assert.equal(meshTunnelPids(home).length, 3);
        fg.child.kill("SIGKILL");
        await fg.done;
        await waitFor("orphans stopped", () => meshPids(home).length === 0, 5000);
      });

      await t.step(
        "library: 'Address already in use' on -L moves to the next free port",
        async () => {
          const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
          const held = (holder.addr as Deno.NetAddr).port;
          try {
            // The probe says "free" (as after a TIME_WAIT race) but ssh's bind fails.
            await using mesh = await connectCrew(CREW, {
              ...opts,
              members: [m("api")],
              portRange: { first: held, last: held + 50 },
              isPortFree: (p) => p === held || isLoopbackPortFree(p),
            });
            const port = Number(mesh.address("api", 8080).split(":")[1]);
            assert.notEqual(port, held);
            assert.equal(await fetchName(mesh.address("api", 8080)), "api");
          } finally {
            holder.close();
          }
          assert.deepEqual(meshPids(home), []);
        },
      );

      await t.step(
        "library: readiness fails clearly on a closed remote port; nothing left",
        async () => {
          const web = m("web");
          const closed: Lease = { ...web, expose: [8080, 9999] };
          const events: MeshEvent[] = [];
          const err = await connectCrew(CREW, {
            ...opts,
            members: [closed],
            // The deadline is what ends this connect (an open failure is retried until
            // then); 2.5 s was once too short for ssh to authenticate under a full CI load.
            readyTimeoutMs: 5000,
            onEvent: (e) => events.push(e),
          }).then(() => undefined, (e) => e);
          assert.ok(err instanceof CrabboxError, String(err));
          assert.equal(err.kind, "ssh");
          assert.match(err.message, /member web .*cannot be reached: .*-> web:9999: open failed/);
          assert.deepEqual(meshPids(home), []);
        },
      );

      await t.step("library: connectCrew handle, await using, status and address", async () => {
        const events: MeshEvent[] = [];
        const timings: ConnectTiming[] = [];
        {
          await using mesh = await connectCrew(CREW, {
            ...opts,
            onEvent: (e) => events.push(e),
            onTiming: (t) => timings.push(t),
          });
          // every phase once, sockets and probes once per member, all within the connect
          const of = (phase: string) => timings.filter((x) => x.phase === phase);
          // "confirm": ssh started from this machine's claims, then the provider confirmed them
          for (const phase of ["plan", "spawn", "confirm", "files"]) {
            assert.equal(of(phase).length, 1, phase);
            assert.equal(of(phase)[0].peer, undefined);
          }
          for (const phase of ["sockets", "probes"]) {
            assert.deepEqual(of(phase).map((x) => x.peer).sort(), ["api", "db", "web"], phase);
          }
          assert.ok(
            timings.every((x) => Number.isFinite(x.ms) && x.ms >= 0),
            JSON.stringify(timings),
          );
          assert.equal(
            events.filter((e) => e.state === "starting").length,
            3,
            "each member started once: the provider confirmed what the claims said",
          );
          assert.equal(await fetchName(mesh.address("web", 9090)), "web-9090");
          assert.deepEqual(mesh.status().map((s) => [s.peer, s.state]), [
            ["api", "up"],
            ["db", "up"],
            ["web", "up"],
          ]);
          assert.equal(mesh.env.CRABBOX_CREW_DB_8080, mesh.address("db", 8080));
          assert.equal(meshTunnelPids(home).length, 3);
          assert.ok((await mesh.check()).every((h) => h.ok));
          // A member's service goes away: ssh still runs, only a check through the forward sees it.
          const web = m("web");
          const kh = `${home}/test_known_hosts`;
          const stop = await runSsh(
            sshCommandArgs(web.ssh!, ["kill", String(web9090)], { knownHostsFile: kh }),
          );
          assert.equal(stop.code, 0, stop.stderr);
          const health = await mesh.check();
          const bad = health.filter((h) => !h.ok);
          assert.ok(
            bad.some((h) => h.peer === "web" && h.remotePort === 9090),
            JSON.stringify(health),
          );
          assert.match(bad[0].reason ?? "", /open failed/);
          assert.ok(health.find((h) => h.peer === "api")!.ok);
          assert.equal(mesh.status().find((s) => s.peer === "web")!.state, "up");
          web9090 = await serve(home, web.ssh!, 9090, "web-9090");
        }
        assert.deepEqual(meshPids(home), []);
        assert.deepEqual(
          [...new Set(events.map((e) => e.state))].sort(),
          ["starting", "stopped", "up"],
        );
      });

      await t.step(
        "a stale claim: ssh starts from the claims, the provider's target wins",
        async () => {
          // The claim of api names a port nothing listens on; the local provider lists the real one.
          await withStaleClaim(home, m("api"), async () => {
            const logs: string[] = [];
            const events: MeshEvent[] = [];
            {
              await using mesh = await connectCrew(CREW, {
                ...opts,
                log: (x) => logs.push(x),
                onEvent: (e) => events.push(e),
              });
              assert.ok(logs.some((x) => /list other members than/.test(x)), logs.join("\n"));
              assert.equal(await fetchName(mesh.address("api", 8080)), "api");
              assert.equal(await fetchName(mesh.address("db", 8080)), "db");
              // each member started twice (claims, then the provider's list), one ssh each now
              const starts = events.filter((e) => e.state === "starting").map((e) => e.peer).sort();
              assert.deepEqual(starts, ["api", "api", "db", "db", "web", "web"]);
              assert.equal(meshTunnelPids(home).length, 3);
            }
            assert.deepEqual(meshPids(home), []);
          });
        },
      );

      await t.step(
        "--export with a stale claim: the provider's target wins, daemon.json holds only it",
        async () => {
          await withStaleClaim(home, m("api"), async () => {
            const r = await runCli(home, ["connect", CREW, "--export"]);
            assert.equal(r.code, 0, r.stderr);
            assert.match(r.stderr, /list other members than this machine's claims/);
            const addr = /^export CRABBOX_CREW_API_8080=(127\.0\.0\.1:\d+)$/m.exec(r.stdout);
            assert.ok(addr, r.stdout);
            assert.equal(await fetchName(addr[1]), "api");
            const state = parseDaemonState(
              await Deno.readTextFile(`${home}/crew/${CREW}/daemon.json`),
              "daemon.json",
            );
            assert.equal(state.processes.length, 3);
            assert.equal(state.starting, undefined);
            assert.equal(meshTunnelPids(home).length, 3);
            const d = await runCli(home, ["disconnect", CREW]);
            assert.equal(d.code, 0, d.stderr);
            assert.deepEqual(meshPids(home), []);
          });
        },
      );

      await t.step("release disconnects daemons and releases every lease", async () => {
        const r0 = await runCli(home, ["connect", CREW, "--export"]);
        assert.equal(r0.code, 0, r0.stderr);
        const r = await runCli(home, ["release", CREW]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(
          r.stdout.trim().split("\n").filter((l) => l.startsWith("released ")).length,
          3,
        );
        assert.deepEqual(meshPids(home), []);
      });
    } finally {
      for (const pid of meshPids(home)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await releaseCrew(CREW, opts).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
