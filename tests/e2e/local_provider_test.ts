/**
 * End-to-end tests of the `local` provider: real network namespaces, real
 * sshd, real ssh. Needs root and the local prerequisites; without them the
 * tests are skipped loudly (or fail with CRABBOX_E2E=required).
 */

import assert from "node:assert/strict";
import { CrabboxError } from "../../lib/core/errors.ts";
import { sshForwardArgs } from "../../lib/ssh/args.ts";
import { createLocalProvider, localBoxDir, type ProcRef } from "../../providers/local/mod.ts";
import type { ProviderLease, SshTarget } from "../../providers/types.ts";
import {
  boxSsh,
  killBoxSshd,
  type LocalFixture,
  localFixture,
  memberSpec,
  netnsNames,
  pidsMentioning,
  pinHostKey,
  requireE2E,
  restartBoxSshd,
  startNameServer,
} from "./_local.ts";
import { procAlive } from "../../lib/process/mod.ts";

const e2e = requireE2E();

/** Recorded pids of a box (sshd, relay), read from box.json. */
async function recordedProcs(fx: LocalFixture, lease: ProviderLease): Promise<ProcRef[]> {
  const box = JSON.parse(
    await Deno.readTextFile(`${localBoxDir(fx.home, lease.providerId)}/box.json`),
  );
  return [box.sshd, box.relay].filter(Boolean);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Assert a box left nothing behind: no netns, no recorded process, no process naming it, no dir. */
async function assertGone(fx: LocalFixture, leaseId: string, procs: ProcRef[]): Promise<void> {
  assert.ok(!(await netnsNames()).includes(leaseId), `netns ${leaseId} still exists`);
  for (const p of procs) assert.ok(!procAlive(p), `process ${p.pid} still runs`);
  assert.deepEqual(pidsMentioning(leaseId), [], `processes still mention ${leaseId}`);
  assert.ok(!(await exists(localBoxDir(fx.home, leaseId))), "box dir still exists");
}

/** Delete every box of the fixture and its home; never throws. */
async function cleanup(fx: LocalFixture): Promise<void> {
  try {
    for (const l of await fx.provider.list({})) await fx.provider.delete(l);
  } catch (e) {
    console.error(`cleanup of ${fx.home} failed: ${e}`);
  }
  await Deno.remove(fx.home, { recursive: true }).catch(() => {});
}

function freeLocalPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Read everything a TCP server on 127.0.0.1:port sends until it closes (or 5 s pass). */
async function readAll(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    const buf = new Uint8Array(1024);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
}

/** An `ssh -N -L` forward to a box's 127.0.0.1:remotePort, killed (by its own PID) on dispose. */
async function openForward(
  target: SshTarget,
  remotePort: number,
  knownHostsFile: string,
): Promise<{ port: number; child: Deno.ChildProcess } & AsyncDisposable> {
  await pinHostKey(target, knownHostsFile);
  const port = freeLocalPort();
  const child = new Deno.Command("ssh", {
    args: sshForwardArgs(target, [{ localPort: port, remotePort }], { knownHostsFile }),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    port,
    child,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      await child.status;
    },
  };
}

Deno.test({
  name: "local: two boxes have their own host names and loopbacks, list by crew, delete cleans",
  ignore: !e2e,
  async fn() {
    const fx = await localFixture("e2e-pair");
    try {
      const t0 = performance.now();
      const [a, b] = await Promise.all([
        fx.provider.create(memberSpec(fx, "api")),
        fx.provider.create(memberSpec(fx, "db")),
      ]);
      console.error(`  created 2 boxes in ${Math.round(performance.now() - t0)} ms`);
      assert.equal(a.state, "running");
      assert.notEqual(a.ssh!.host, b.ssh!.host);
      assert.match(a.ssh!.host, /^127\.77\.\d+\.\d+$/);
      assert.match(a.ssh!.hostKey!, /^ssh-ed25519 /);

      for (const [lease, name] of [[a, "crabbox-api"], [b, "crabbox-db"]] as const) {
        const r = await boxSsh(lease.ssh!, ["hostname"], fx.knownHostsFile);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), name);
      }

      // A service on box A's own 127.0.0.1:8080 is reachable through ssh -L to A ...
      await startNameServer(a.ssh!, fx.key.keyPath, 8080, "hello-from-api");
      {
        await using fwd = await openForward(a.ssh!, 8080, fx.knownHostsFile);
        assert.equal((await readAll(fwd.port)).trim(), "hello-from-api");
      }
      // ... but box B's 127.0.0.1:8080 is a different loopback: refused there,
      {
        const r = await boxSsh(b.ssh!, [
          "bash",
          "-c",
          "exec 3<>/dev/tcp/127.0.0.1/8080",
        ], fx.knownHostsFile);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /Connection refused/);
      }
      // and a forward to it yields nothing.
      {
        await using fwd = await openForward(b.ssh!, 8080, fx.knownHostsFile);
        assert.equal(await readAll(fwd.port), "");
      }

      const listed = await fx.provider.list({ crew: fx.crew });
      assert.deepEqual(listed.map((l) => l.leaseId).sort(), [a.leaseId, b.leaseId].sort());
      assert.ok(listed.every((l) => l.state === "running"));
      assert.deepEqual(await fx.provider.list({ crew: "someone-else" }), []);
      assert.equal((await fx.provider.get(a.providerId))?.labels.slug, "api");

      const procs = await recordedProcs(fx, a);
      assert.equal(procs.length, 2);
      assert.ok(procs.every(procAlive));
      await fx.provider.delete(a);
      await assertGone(fx, a.leaseId, procs);
      await fx.provider.delete(a); // twice is fine
      assert.equal(await fx.provider.get(a.providerId), undefined);
      assert.deepEqual((await fx.provider.list({ crew: fx.crew })).map((l) => l.leaseId), [
        b.leaseId,
      ]);
      const r = await boxSsh(b.ssh!, ["hostname"], fx.knownHostsFile);
      assert.equal(r.stdout.trim(), "crabbox-db", "deleting A must not touch B");
    } finally {
      await cleanup(fx);
    }
  },
});

Deno.test({
  name: "local: --init runs inside the box; a failing init fails create and leaves nothing",
  ignore: !e2e,
  async fn() {
    const fx = await localFixture("e2e-init");
    try {
      const out = `${fx.home}/init-out`;
      const ok = await fx.provider.create(
        memberSpec(fx, "web", `set -e\nhostname > '${out}'\necho "$0" >> '${out}'\n`),
      );
      assert.equal(ok.state, "running");
      assert.deepEqual((await Deno.readTextFile(out)).trim().split("\n"), ["crabbox-web", "bash"]);

      const bad = memberSpec(fx, "broken", "echo about to fail >&2\nexit 7\n");
      await assert.rejects(fx.provider.create(bad), (e: unknown) => {
        assert.ok(e instanceof CrabboxError);
        assert.equal(e.code, "local_init_failed");
        assert.match(e.message, /exit status 7/);
        assert.match(e.message, /about to fail/);
        return true;
      });
      await assertGone(fx, bad.leaseId, []);
      assert.deepEqual((await fx.provider.list({})).map((l) => l.leaseId), [ok.leaseId]);
    } finally {
      await cleanup(fx);
    }
  },
});

Deno.test({
  name: "local: boxes outlive the process that created them; another process lists and deletes",
  ignore: !e2e,
  async fn() {
    const fx = await localFixture("e2e-survive");
    const spec = memberSpec(fx, "solo");
    try {
      // Create in a child process that must exit on its own while the box stays up.
      const script = `
        import { createLocalProvider } from ${
        JSON.stringify(import.meta.resolve("../../providers/local/mod.ts"))
      };
        const p = createLocalProvider({ home: Deno.args[0], env: () => undefined, config: {}, fetch, log: () => {} });
        const lease = await p.create(JSON.parse(Deno.args[1]));
        console.log(JSON.stringify(lease));
      `;
      const t0 = performance.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", script, fx.home, JSON.stringify(spec)],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).output();
      const dec = new TextDecoder();
      assert.equal(out.code, 0, dec.decode(out.stderr));
      console.error(
        `  child process created a box and exited in ${Math.round(performance.now() - t0)} ms`,
      );
      const created = JSON.parse(dec.decode(out.stdout)) as ProviderLease;

      const other = createLocalProvider({
        home: fx.home,
        env: () => undefined,
        config: {},
        fetch,
        log: () => {},
      });
      const [listed] = await other.list({ crew: fx.crew });
      assert.equal(listed?.leaseId, spec.leaseId);
      assert.equal(listed.state, "running");
      assert.deepEqual(listed.ssh, created.ssh);
      const r = await boxSsh(listed.ssh!, ["hostname"], fx.knownHostsFile);
      assert.equal(r.stdout.trim(), "crabbox-solo");

      const procs = await recordedProcs(fx, listed);
      await other.delete(listed);
      await assertGone(fx, spec.leaseId, procs);
    } finally {
      await cleanup(fx);
    }
  },
});

Deno.test({
  name: "local: killing a box's sshd drops its tunnels; restart brings ssh back",
  ignore: !e2e,
  async fn() {
    const fx = await localFixture("e2e-restart");
    try {
      const box = await fx.provider.create(memberSpec(fx, "flaky"));
      await startNameServer(box.ssh!, fx.key.keyPath, 9000, "still-here");
      await using fwd = await openForward(box.ssh!, 9000, fx.knownHostsFile);
      assert.equal((await readAll(fwd.port)).trim(), "still-here");

      const killed = await killBoxSshd(box);
      assert.ok(killed.length >= 2, `expected listener and session sshd, got ${killed}`);
      const status = await fwd.child.status; // the tunnel's ssh exits
      assert.notEqual(status.code, 0);
      assert.equal((await fx.provider.get(box.providerId))?.state, "stopped");
      const down = await boxSsh(box.ssh!, ["true"], fx.knownHostsFile);
      assert.equal(down.code, 255);

      await restartBoxSshd(box);
      assert.equal((await fx.provider.get(box.providerId))?.state, "running");
      await using again = await openForward(box.ssh!, 9000, fx.knownHostsFile);
      assert.equal((await readAll(again.port)).trim(), "still-here", "service survived");
      const r = await boxSsh(box.ssh!, ["hostname"], fx.knownHostsFile);
      assert.equal(r.stdout.trim(), "crabbox-flaky");
    } finally {
      await cleanup(fx);
    }
  },
});

Deno.test({
  name: "local: 5 boxes concurrently get distinct addresses and all work",
  ignore: !e2e,
  async fn() {
    const fx = await localFixture("e2e-five");
    try {
      let t0 = performance.now();
      await fx.provider.create(memberSpec(fx, "first"));
      const one = Math.round(performance.now() - t0);
      t0 = performance.now();
      const leases = await Promise.all(
        [1, 2, 3, 4, 5].map((i) => fx.provider.create(memberSpec(fx, `worker-${i}`))),
      );
      const five = Math.round(performance.now() - t0);
      console.error(`  create: 1 box ${one} ms; 5 boxes concurrently ${five} ms`);
      assert.equal(new Set(leases.map((l) => `${l.ssh!.host}:${l.ssh!.port}`)).size, 5);
      const names = await Promise.all(
        leases.map((l) => boxSsh(l.ssh!, ["hostname"], fx.knownHostsFile)),
      );
      assert.deepEqual(
        names.map((r) => r.stdout.trim()),
        [1, 2, 3, 4, 5].map((i) => `crabbox-worker-${i}`),
      );
      assert.equal((await fx.provider.list({ crew: fx.crew })).length, 6);
      t0 = performance.now();
      await Promise.all(leases.map((l) => fx.provider.delete(l)));
      console.error(`  delete: 5 boxes concurrently ${Math.round(performance.now() - t0)} ms`);
      for (const l of leases) assert.ok(!(await netnsNames()).includes(l.leaseId));
    } finally {
      await cleanup(fx);
    }
  },
});
