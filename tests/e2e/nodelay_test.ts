/**
 * End-to-end: crabbox's masters get sshd's `TCP_NODELAY` on a real box of
 * the `local` provider. OpenSSH's sshd sets it on a connection only once a
 * session has run there; a bare `ssh -N` never gets it, crabbox's masters do
 * through their warm-up session (`lib/mesh/warm.ts`) — after the first
 * connect, after a restart, and with `--export` daemons. The option is read
 * straight from the sshd process's socket (a duplicate taken with
 * `pidfd_getfd`, then `getsockopt`), not inferred from timings.
 */

import assert from "node:assert/strict";
import { leaseCrew } from "../../lib/lease/create.ts";
import { releaseCrew } from "../../lib/lease/release.ts";
import { connectCrew } from "../../lib/mesh/connect.ts";
import { disconnectCrew, startCrewDaemons } from "../../lib/mesh/daemon.ts";
import type { ConnectTiming } from "../../lib/mesh/plan.ts";
import { probeForward } from "../../lib/mesh/probe.ts";
import { output } from "../../lib/process/run.ts";
import { sshForwardArgs } from "../../lib/ssh/args.ts";
import { prepareKnownHosts } from "../../lib/ssh/known_hosts.ts";
import { requireE2E, startNameServer } from "./_local.ts";

const e2e = requireE2E();
const CREW = "nodelaye2e";
const dec = new TextDecoder();

/**
 * Prints `<pid> <fd> <local> <peer> <TCP_NODELAY>` for every connected TCP
 * socket of the given pids: each socket is duplicated into this process
 * with pidfd_getfd (Linux ≥ 5.6, needs ptrace rights: root) and asked.
 */
const READ_NODELAY = `
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
for pid in map(int, sys.argv[1:]):
    try:
        fds = sorted(map(int, os.listdir(f"/proc/{pid}/fd")))
    except FileNotFoundError:
        continue
    pidfd = libc.syscall(434, pid, 0)  # pidfd_open
    if pidfd < 0:
        continue
    for fd in fds:
        try:
            if not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                continue
        except FileNotFoundError:
            continue
        dup = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
        if dup < 0:
            continue
        s = socket.socket(fileno=dup)
        try:
            if s.family in (socket.AF_INET, socket.AF_INET6) and s.type == socket.SOCK_STREAM:
                try:
                    peer = s.getpeername()
                except OSError:
                    continue
                on = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                print(pid, fd, "%s:%d" % s.getsockname()[:2], "%s:%d" % peer[:2], on)
        finally:
            s.close()
    os.close(pidfd)
`;

/** TCP_NODELAY (0/1) of every client connection the box's sshd holds (its port-22 sockets). */
async function sshdNoDelay(leaseId: string): Promise<number[]> {
  const ns = await output("ip", { args: ["netns", "pids", leaseId], stdout: "piped" });
  const pids = dec.decode(ns.stdout).split(/\s+/).filter((p) => {
    try {
      return p !== "" && Deno.readTextFileSync(`/proc/${p}/comm`).trim() === "sshd";
    } catch {
      return false; // exited
    }
  });
  const out = await output("python3", {
    args: ["-c", READ_NODELAY, ...pids],
    stdout: "piped",
    stderr: "piped",
  });
  assert.ok(out.success, dec.decode(out.stderr));
  return dec.decode(out.stdout).trim().split("\n").filter(Boolean)
    .map((l) => l.split(" "))
    .filter(([, , local]) => local.endsWith(":22"))
    .map((f) => Number(f[4]));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 30_000;
  while (true) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The sshd connections once there are exactly `n` (an ended one may linger a moment). */
const connections = (leaseId: string, n: number) =>
  until(`${n} sshd connection(s)`, async () => {
    const v = await sshdNoDelay(leaseId);
    return v.length === n ? v : undefined;
  });

Deno.test({
  name: "e2e: crabbox's masters get sshd's TCP_NODELAY (a bare ssh -N does not)",
  ignore: !e2e,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const home = await Deno.makeTempDir({ prefix: "cbx-nodelay-e2e-" });
    const env = (k: string) =>
      ({ CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com" } as Record<string, string>)[k] ??
        Deno.env.get(k);
    const opts = { home, env };
    try {
      const crew = await leaseCrew(
        CREW,
        [{ slug: "svc", provider: "local", expose: [8080] }],
        opts,
      );
      const box = crew.members[0];
      await startNameServer(box.ssh!, box.ssh!.keyPath!, 8080, "svc");
      assert.deepEqual(await connections(box.id, 0), []);

      await t.step("a bare ssh -N -L: sshd leaves Nagle on (the reading can say 0)", async () => {
        const kh = `${home}/raw_known_hosts`;
        await prepareKnownHosts(box.ssh!, kh);
        const port = 54290;
        const raw = new Deno.Command("ssh", {
          args: sshForwardArgs(box.ssh!, [{ localPort: port, remotePort: 8080 }], {
            knownHostsFile: kh,
          }),
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        try {
          await until(
            "the raw forward",
            async () => (await probeForward(port, 2000)) === "data" ? true : undefined,
          );
          assert.deepEqual(await connections(box.id, 1), [0]);
        } finally {
          raw.kill("SIGTERM");
          await raw.status;
        }
        await connections(box.id, 0);
      });

      await t.step(
        "connectCrew: on once the warm-up session ran, and again after a restart",
        async () => {
          const warmed: ConnectTiming[] = [];
          const mesh = await connectCrew(CREW, {
            ...opts,
            backoff: { initialMs: 50 },
            onTiming: (x) => void (x.phase === "warm" && warmed.push(x)),
          });
          try {
            await until("the warm-up", () => Promise.resolve(warmed.length === 1 || undefined));
            assert.equal(warmed[0].peer, "svc");
            assert.deepEqual(await connections(box.id, 1), [1]);
            assert.equal(
              await probeForward(Number(mesh.address("svc", 8080).split(":")[1]), 2000),
              "data",
            );

            const pid = mesh.status()[0].pid!;
            Deno.kill(pid, "SIGKILL");
            await until(
              "the restart's warm-up",
              () => Promise.resolve(warmed.length === 2 || undefined),
            );
            assert.equal(mesh.status()[0].restarts, 1);
            assert.notEqual(mesh.status()[0].pid, pid);
            assert.deepEqual(await connections(box.id, 1), [1]);
          } finally {
            await mesh.close();
          }
          await connections(box.id, 0);
        },
      );

      await t.step("--export daemons: on when startCrewDaemons returns", async () => {
        await startCrewDaemons(CREW, opts);
        try {
          assert.deepEqual(await sshdNoDelay(box.id), [1]);
        } finally {
          await disconnectCrew(CREW, opts);
        }
      });
    } finally {
      await releaseCrew(CREW, opts).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});
