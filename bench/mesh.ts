/**
 * SSH-mesh benchmark: crabbox against the same work done by hand with raw
 * `ssh`, in one run on the same `local` members (root + local-provider
 * prerequisites needed). Prints a table of medians and ratios.
 *
 * ```sh
 * deno run -A bench/mesh.ts            # 1, 5, 20, 50, 100 members; median of 5; 512 MiB
 * BENCH_REPS=3 BENCH_MIB=256 deno run -A bench/mesh.ts
 * BENCH_SIZES=1 deno run -A bench/mesh.ts  # only the 1-member crew (plus throughput/proxy rows)
 * BENCH_SECTIONS=peers BENCH_SIZES=5,20 deno run -A bench/mesh.ts   # only the ssh-peer plane rows
 * ```
 *
 * The raw baseline is measured twice: as a person would start it from one
 * shell (every ssh in that shell's session), and with each ssh in a session
 * of its own (`setsid`), which is how crabbox starts them — on Linux each
 * session is its own scheduling group (autogroup), which decides how much
 * CPU the ssh handshakes get against the members' sshd sessions. A third
 * one is for the CLI: the same by-hand connect as a small script in a fresh
 * Deno process (start-up, first spawn and cold code included, crabbox's
 * work not), so "CLI vs that script" is crabbox's own cost in a fresh
 * process.
 *
 * Every connect row has a breakdown of crabbox's own time (`plan` / `spawn`
 * / `confirm` / `sockets` / `probes` / `files`, from `ConnectOptions.onTiming`;
 * `confirm` runs while the ssh processes start; sockets and probes are the
 * slowest member's), and the CLI's row the CLI's own
 * (its `CRABBOX_TIMING=1` line: boot, argument parsing, imports, then the
 * same phases, cold). Crews of up to 5 members also connect through a
 * provider whose list answers 150 ms late, as a cloud API's round trip
 * does: ssh starts from the claims meanwhile, so that row shows how much
 * of the list's time a connect still waits for. The CLI's goal adds Deno's start-up: an empty
 * `deno run` with the repo's `deno.json`, measured in the same run. The largest crew also reports the
 * CLI's own peak RSS and CPU time at ready, that every member has one ssh,
 * and `crew peers --json` and `crew connect --json` (the forward table,
 * planned: nothing runs) against `list --json` of the same crew.
 *
 * The last rows compare a proxied member with a direct one: the same box,
 * once straight to its sshd and once the way Sprites/Namespace members are
 * reached — ssh's ProxyCommand `crabbox proxy` → a WebSocket proxy (the fake
 * Sprites API on 127.0.0.1) → sshd. A new channel is timed on forwards that
 * hold a session (sshd then sets TCP_NODELAY), on crabbox's own forwards
 * (`connectCrew`, once its master's warm-up session has ended: `warm.ts`),
 * and on bare `ssh -N` forwards made by hand, which run no session and where
 * sshd's Nagle adds 0 or ~40 ms to a channel, direct or proxied alike (see
 * `withSession`); the hand-made ssh-peer path holds sessions too.
 *
 * Sections (`BENCH_SECTIONS`, comma-separated, default all): `connect`
 * (connect→ready vs raw ssh), `throughput` (operator→member, run step),
 * `proxy` (a proxied member vs a direct one: the same box, once straight to
 * its sshd and once the way Sprites/Namespace members are reached — ssh's
 * ProxyCommand `crabbox proxy` → a WebSocket proxy (the fake Sprites API on
 * 127.0.0.1) → sshd), `peers` (the ssh-peer plane: member→member latency and
 * throughput through the hub vs the same path built by hand with raw
 * `ssh -L` + `ssh -R`, and connect→ready with `--peers` vs without for the
 * 5 and 20 member crews).
 *
 * @module
 */

import type { Lease } from "../lib/lease/claims.ts";
import { listLeases } from "../lib/lease/leases.ts";
import { releaseCrew } from "../lib/lease/release.ts";
import { leaseCrew } from "../lib/lease/create.ts";
import { connectCrew } from "../lib/mesh/connect.ts";
import { probeForward, type ProbeResult } from "../lib/mesh/probe.ts";
import { parseProcStat, readProc } from "../lib/process/identity.ts";
import { sleep } from "../lib/core/async.ts";
import { runSsh, sshCommandArgs, sshForwardArgs, type SshTarget } from "../lib/ssh/args.ts";
import { checkLocalPrerequisites, createLocalProvider } from "../providers/local/mod.ts";
import { controlForLease } from "../lib/ssh/control.ts";
import { meshPaths } from "../lib/core/home.ts";
import { prepareKnownHosts } from "../lib/ssh/known_hosts.ts";
import { proxyArgv } from "../lib/ssh/proxy_command.ts";

const REPS = Number(Deno.env.get("BENCH_REPS") ?? 5);
const MIB = Number(Deno.env.get("BENCH_MIB") ?? 512);
const SECTIONS = new Set(
  (Deno.env.get("BENCH_SECTIONS") ?? "connect,throughput,proxy,peers").split(",").map((x) =>
    x.trim()
  ),
);
const SIZES = (Deno.env.get("BENCH_SIZES") ?? "1,5,20,50,100").split(",").map(Number);
/** How late the slow provider of the connect rows answers its list (ms). */
const SLOW_LIST_MS = 150;
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const DENO_JSON = new URL("../deno.json", import.meta.url).pathname;
const dec = new TextDecoder();

const missing = checkLocalPrerequisites();
if (missing.length > 0) {
  console.error(`mesh bench needs the local provider: missing ${missing.join(", ")}`);
  Deno.exit(1);
}

const reuse = Deno.env.get("BENCH_HOME") || undefined; // empty: a fresh home, never ""
const home = reuse ?? await Deno.makeTempDir({ prefix: "cbx-bench-" });
const env = (k: string) =>
  ({ CRABBOX_HOME: home, CRABBOX_OWNER: "bench@example.com" } as Record<string, string>)[k] ??
    Deno.env.get(k);
const opts = { home, env };
const childEnv = { CRABBOX_HOME: home, CRABBOX_OWNER: "bench@example.com", NO_COLOR: "1" };

const SERVICES = `set -eu
setsid socat TCP-LISTEN:8080,bind=127.0.0.1,reuseaddr,fork SYSTEM:"echo $1" </dev/null >/dev/null 2>&1 &
setsid socat TCP-LISTEN:9000,bind=127.0.0.1,reuseaddr,fork SYSTEM:"head -c $2 /dev/zero" </dev/null >/dev/null 2>&1 &
setsid socat TCP-LISTEN:7070,bind=127.0.0.1,reuseaddr,fork SYSTEM:"dd bs=2 count=1 iflag=fullblock 2>/dev/null" </dev/null >/dev/null 2>&1 &
for _ in $(seq 100); do
  if ss -Hltn "sport = :9000" | grep -q . && ss -Hltn "sport = :8080" | grep -q . &&
    ss -Hltn "sport = :7070" | grep -q .; then exit 0; fi
  sleep 0.05
done
exit 1
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${x.toFixed(0)} ms`;
/** A difference in ms with its sign: `+12 ms`, `-3 ms`. */
const signedMs = (x: number) => `${x >= 0 ? "+" : ""}${ms(x)}`;

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * Read a service's first bytes through 127.0.0.1:port within `timeoutMs`
 * (connect included); true when it said something. The same bounded probe
 * crabbox's readiness uses, so both sides of a ratio wait for the same thing.
 */
async function answers(port: number, timeoutMs = 2000): Promise<boolean> {
  return (await probeForward(port, timeoutMs)) === "data";
}

/**
 * Through 127.0.0.1:port (a service that answers its first 2 bytes): write one
 * byte, 2 ms later a second, and time until the answer — two small writes in
 * a row, as a request written in parts is. Both sockets of the bench have
 * TCP_NODELAY; what is measured is whether a hop holds the second write.
 */
async function writeWriteRead(port: number): Promise<number> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    c.setNoDelay(true);
    await sleep(20); // the channel is open
    const t0 = performance.now();
    await c.write(Uint8Array.of(97));
    await sleep(2);
    await c.write(Uint8Array.of(98));
    const buf = new Uint8Array(2);
    for (let got = 0; got < 2;) {
      const n = await c.read(buf.subarray(got));
      if (n === null) throw new Error(`the service on ${port} hung up`);
      got += n;
    }
    return performance.now() - t0;
  } finally {
    c.close();
  }
}

/** Read everything through 127.0.0.1:port; returns bytes. */
async function drain(port: number): Promise<number> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const buf = new Uint8Array(1 << 20);
  let total = 0;
  try {
    for (let n = await c.read(buf); n !== null; n = await c.read(buf)) total += n;
  } finally {
    try {
      c.close();
    } catch { /* closed */ }
  }
  return total;
}

// ---------------------------------------------------------------------------
// raw ssh, the way a person would do it by hand

function rawArgs(l: Lease, forwards: [number, number][]): string[] {
  const t = l.ssh!;
  return [
    "-F",
    "none",
    "-i",
    t.keyPath!,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=accept-new",
    "-o",
    `UserKnownHostsFile=${home}/raw_known_hosts`,
    "-p",
    String(t.port),
    "-N",
    "-o",
    "ExitOnForwardFailure=yes",
    ...forwards.flatMap(([local, remote]) => ["-L", `127.0.0.1:${local}:127.0.0.1:${remote}`]),
    `${t.user}@${t.host}`,
  ];
}

/**
 * The same ssh holding a session (a remote `cat` on a stdin that is never
 * written) instead of `-N`. OpenSSH's sshd sets TCP_NODELAY on a connection
 * only once a session runs on it: on a bare `-N` connection its channel-open
 * confirmation and the service's first bytes are two small writes, and the
 * second waits for the client's delayed ACK (0 or ~40 ms, a race). crabbox's
 * masters with `--peers` have run a session (the peer-table script), so a
 * fair hand-made path runs one too; the proxy rows measure both ways.
 */
function withSession(args: string[]): string[] {
  return [...args.filter((a) => a !== "-N"), "cat"];
}

let rawPort = 53100;
function nextRawPort(): number {
  const p = rawPort++;
  if (rawPort > 53900) rawPort = 53100;
  return p;
}

/** A process's kernel state for a diagnostic: its `/proc/<pid>/stat` state letter and wchan. */
async function procState(pid: number): Promise<string> {
  const state = parseProcStat((await readProc(`/proc/${pid}/stat`)) ?? "")?.state ?? "?";
  return `state ${state}, wchan ${(await readProc(`/proc/${pid}/wchan`))?.trim() || "-"}`;
}

/** Whether `p` settles within `ms` (the timer is cleared either way). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  const done = new AbortController();
  try {
    return await Promise.race([
      p.then(() => true),
      sleep(ms, done.signal, { resolveOnAbort: true }).then(() => false),
    ]);
  } finally {
    done.abort();
  }
}

/**
 * Stop raw ssh processes: SIGTERM, and SIGKILL for any still running 5 s
 * later — said loudly with its kernel state, since an ssh that ignores
 * SIGTERM would otherwise hold the bench forever. Throws when even SIGKILL
 * does not end one within 5 s.
 */
async function stopRaw(children: readonly { c: Deno.ChildProcess; what: string }[]): Promise<void> {
  for (const { c } of children) {
    try {
      c.kill("SIGTERM");
    } catch { /* exited */ }
  }
  const stuck: string[] = [];
  await Promise.all(children.map(async ({ c, what }) => {
    if (await within(c.status, 5000)) return;
    const state = await procState(c.pid);
    console.error(
      `bench: raw ssh pid ${c.pid} (${what}) ignored SIGTERM for 5 s (${state}); SIGKILL`,
    );
    try {
      c.kill("SIGKILL");
    } catch { /* exited */ }
    if (!(await within(c.status, 5000))) stuck.push(`pid ${c.pid} (${what})`);
  }));
  if (stuck.length > 0) throw new Error(`raw ssh survived SIGKILL: ${stuck.join(", ")}`);
}

/**
 * Start one `ssh -N -L` per member in parallel and probe each port until the
 * member answers; an ssh that dies (e.g. its port was taken) is started
 * again on the next port, as one would by hand. Every probe is bounded and
 * the deadline is checked before every spawn and probe: a member that does
 * not answer in time fails the bench with its port, its ssh and what the last
 * probe saw, after every ssh started here is stopped.
 */
async function rawConnect(
  members: Lease[],
  ownSessions = false,
): Promise<() => Promise<void>> {
  const children: { c: Deno.ChildProcess; what: string }[] = [];
  const stopAll = () => stopRaw(children);
  const limitMs = 60_000;
  const deadline = Date.now() + limitMs;
  let failed = false;
  const results = await Promise.allSettled(members.map(async (l) => {
    let last = "no ssh started yet";
    while (true) {
      if (failed) return; // another member failed: stop here, the bench fails with its reason
      if (Date.now() > deadline) {
        failed = true;
        throw new Error(
          `raw ssh -L to ${l.slug} never answered within ${limitMs / 1000} s (${last})`,
        );
      }
      const port = nextRawPort();
      const c = new Deno.Command("ssh", {
        args: rawArgs(l, [[port, 8080]]),
        stdin: "null",
        stdout: "null",
        stderr: "null",
        detached: ownSessions, // setsid: a session (and a Linux scheduling group) per ssh
      }).spawn();
      children.push({ c, what: `${l.slug} 127.0.0.1:${port}` });
      let exit: number | undefined;
      c.status.then((s) => (exit = s.code));
      let seen: ProbeResult = "refused";
      while (exit === undefined && !failed && Date.now() <= deadline) {
        seen = await probeForward(port, Math.min(2000, Math.max(1, deadline - Date.now())));
        if (seen === "data") return;
        await sleep(5);
      }
      const state = exit === undefined ? await procState(c.pid) : "";
      last = exit === undefined
        ? `ssh pid ${c.pid} still running (${state}), its 127.0.0.1:${port} last probe: ${seen}`
        : `ssh pid ${c.pid} for 127.0.0.1:${port} exited with status ${exit}`;
    }
  }));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failures.length > 0) {
    await stopAll();
    throw new Error(failures.map((f) => (f.reason as Error).message).join("; "));
  }
  return stopAll;
}

/**
 * The ssh processes whose argv names this crew's known_hosts file (one per
 * member when connected), not counting the short warm-up sessions
 * (`… 'exit 0'`) the masters run once ready.
 */
async function crewSshCount(crew: string): Promise<number> {
  const marker = `UserKnownHostsFile=${meshPaths(home, crew).knownHosts}`;
  let n = 0;
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const argv = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).split("\0");
      if (argv[0].endsWith("ssh") && argv.includes(marker) && argv.at(-2) !== "exit 0") n++;
    } catch { /* exited */ }
  }
  return n;
}

/** Peak RSS (MiB) and CPU time (ms, user + system) of a running process. */
async function usage(pid: number): Promise<{ rssMiB: number; cpuMs: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  const stat = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]); // utime, stime (fields 14, 15)
  return { rssMiB: hwm / 1024, cpuMs: ticks * 10 }; // CLK_TCK is 100 on Linux
}

/**
 * The by-hand connect as a fresh Deno process: what a person's own small
 * Deno script would do — one `ssh -N -L` per member (each in its own
 * session, like the faster raw baseline), then probe every port until the
 * member answers, print "ready"; an ssh that exits (its port was taken:
 * ports in this range are also ephemeral source ports) is started again on
 * its next port, as {@link rawConnect} does. It pays the same Deno start-up,
 * first process spawn and cold code as the CLI, and none of crabbox's work,
 * so the CLI against it is crabbox's own cost in a fresh process.
 */
const RAW_DENO_SCRIPT = `const jobs = JSON.parse(Deno.args[0]);
const deadline = Date.now() + 60000;
const kids = [];
const start = (j) => {
  const a = j.tries.shift();
  if (!a) return undefined;
  const k = new Deno.Command("ssh", {
    args: a.args, stdin: "null", stdout: "null", stderr: "null", detached: true,
  }).spawn();
  kids.push(k);
  const run = { port: a.port, exited: false };
  k.status.then(() => (run.exited = true));
  return run;
};
async function answers(port) {
  let c;
  try { c = await Deno.connect({ hostname: "127.0.0.1", port }); } catch { return false; }
  const t = setTimeout(() => { try { c.close(); } catch {} }, 2000);
  try { const n = await c.read(new Uint8Array(64)); return n !== null && n > 0; }
  catch { return false; }
  finally { clearTimeout(t); try { c.close(); } catch {} }
}
const runs = jobs.map(start);
await Promise.all(jobs.map(async (j, i) => {
  while (!(await answers(runs[i].port))) {
    if (runs[i].exited) runs[i] = start(j) ?? runs[i];
    if (Date.now() > deadline) { console.error("never answered: " + runs[i].port); Deno.exit(1); }
    await new Promise((r) => setTimeout(r, 5));
  }
}));
console.log("ready");
for await (const _ of Deno.stdin.readable) { /* until closed */ }
for (const k of kids) { try { k.kill("SIGTERM"); } catch { /* gone */ } }
await Promise.all(kids.map((k) => k.status));
`;
const rawDenoScript = `${home}/raw_deno_connect.js`;
await Deno.writeTextFile(rawDenoScript, RAW_DENO_SCRIPT);

/** {@link RAW_DENO_SCRIPT} until "ready"; returns a stopper. */
async function rawDenoConnect(members: Lease[]): Promise<() => Promise<void>> {
  const jobs = members.map((l) => ({
    tries: [0, 1, 2].map(() => {
      const port = nextRawPort();
      return { args: rawArgs(l, [[port, 8080]]), port };
    }),
  }));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", rawDenoScript, JSON.stringify(jobs)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the raw Deno script exited before ready: ${out}`);
    out += value;
  }
  return async () => {
    await child.stdin.close();
    while (!(await reader.read()).done) { /* drain */ }
    await child.status;
  };
}

/**
 * Foreground `crew connect` until "ready"; returns a stopper, which resolves
 * with the CLI's own breakdown (its `CRABBOX_TIMING=1` line, see
 * `cli/timing.ts`: step → ms).
 */
async function cliConnect(
  crew: string,
  atReady?: (pid: number) => Promise<void>,
): Promise<() => Promise<Record<string, number>>> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "crew", "connect", crew],
    env: { ...childEnv, CRABBOX_TIMING: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errText = new Response(child.stderr).text();
  let out = "";
  const reader = child.stdout.getReader();
  while (!/wrote .*\/env/.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`crew connect ${crew} exited: ${out} ${await errText}`);
    out += dec.decode(value);
  }
  await atReady?.(child.pid);
  return async () => {
    child.kill("SIGINT");
    const drainRest = (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    await Promise.all([drainRest, child.status]);
    const line = /timing: (.*) ms$/m.exec(await errText)?.[1] ?? "";
    return Object.fromEntries(
      line.split(" | ").map((p) => /^(.*) ([\d.]+)$/.exec(p)).filter((m) => m !== null)
        .map((m) => [m![1], Number(m![2])]),
    );
  };
}

// ---------------------------------------------------------------------------
// the ssh-peer plane: member → operator → member

/** Run inside a member: N connects (lat) or one full read (tp) of host:port; prints "bytes ns". */
const PEER_PROBE = `set -eu
h=$1; p=$2; mode=$3; n=$4
t0=$(date +%s%N)
if [ "$mode" = lat ]; then
  i=0
  while [ $i -lt $n ]; do socat -u TCP:$h:$p - >/dev/null; i=$((i + 1)); done
  b=0
else
  b=$(socat -u TCP:$h:$p - | wc -c)
fi
t1=$(date +%s%N)
echo "$b $((t1 - t0))"
`;

const LAT_N = 30;

/** Time, from inside `from`, LAT_N connects or one full read of host:port (ms, bytes). */
async function insideMember(
  from: Lease,
  host: string,
  port: number,
  mode: "lat" | "tp",
): Promise<{ ms: number; bytes: number }> {
  const kh = `${home}/svc_known_hosts`;
  await prepareKnownHosts(from.ssh!, kh);
  const r = await runSsh(
    sshCommandArgs(from.ssh!, ["bash", "-s", "--", host, String(port), mode, String(LAT_N)], {
      knownHostsFile: kh,
    }),
    { stdin: PEER_PROBE },
  );
  if (r.code !== 0) throw new Error(`probe ${host}:${port} from ${from.slug}: ${r.stderr}`);
  const [bytes, ns] = r.stdout.trim().split(" ").map(Number);
  return { ms: ns / 1e6, bytes };
}

/** The same path by hand: ssh -L to the server member, ssh -R on the client member onto it. */
async function rawPeerPath(
  server: Lease,
  client: Lease,
): Promise<{ lat: number; tp: number; stop: () => Promise<void> }> {
  const [l8080, l9000, r8080, r9000] = [53970, 53971, 53972, 53973];
  const left = new Deno.Command("ssh", {
    args: withSession(rawArgs(server, [[l8080, 8080], [l9000, 9000]])),
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  while (!(await answers(l8080))) await sleep(5);
  const rArgs = rawArgs(client, []);
  const dest = rArgs.pop()!;
  const right = new Deno.Command("ssh", {
    args: withSession([
      ...rArgs,
      "-R",
      `127.0.0.1:${r8080}:127.0.0.1:${l8080}`,
      "-R",
      `127.0.0.1:${r9000}:127.0.0.1:${l9000}`,
      dest,
    ]),
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 30_000;
  while (
    (await insideMember(client, "127.0.0.1", r8080, "lat").catch(() => undefined)) === undefined
  ) {
    if (Date.now() > deadline) throw new Error("raw -R path never answered");
    await sleep(50);
  }
  return {
    lat: r8080,
    tp: r9000,
    stop: async () => {
      for (const c of [left, right]) {
        try {
          c.kill("SIGTERM");
        } catch { /* exited */ }
      }
      await Promise.all([left.status, right.status]);
    },
  };
}

/** The ssh-peer rows: connect→ready with/without --peers, member→member vs raw. */
async function peerRows(row: (...c: string[]) => void): Promise<void> {
  for (const n of SIZES.filter((x) => x >= 5)) {
    const plain: number[] = [], peered: number[] = [];
    for (let r = 0; r < REPS; r++) {
      let mesh!: Awaited<ReturnType<typeof connectCrew>>;
      plain.push(await timeIt(async () => (mesh = await connectCrew(`bench${n}`, opts))));
      await mesh.close();
      peered.push(
        await timeIt(async () => (mesh = await connectCrew(`bench${n}`, { ...opts, peers: true }))),
      );
      const bad = mesh.peers().filter((m) => m.error || m.peers.length !== n - 1);
      await mesh.close();
      if (bad.length > 0) throw new Error(`peer tables incomplete: ${JSON.stringify(bad[0])}`);
    }
    const [mp, mq] = [median(plain), median(peered)];
    row(`connect→ready ${n} members: connectCrew()`, ms(mp), "", "");
    row(
      `  connectCrew({ peers: true }): +${n * (n - 1)} -R, ${n} hosts blocks`,
      ms(mq),
      `${(mq / mp).toFixed(2)}×`,
      signedMs(mq - mp),
    );
  }
  const server = crews[0].find((x) => x.slug === "bulk")!;
  const client = crews[0].find((x) => x.slug === "client")!;
  const mesh = await connectCrew("benchtp", { ...opts, peers: true });
  const raw = await rawPeerPath(server, client);
  try {
    const latRaw: number[] = [], latCbx: number[] = [], tpRaw: number[] = [], tpCbx: number[] = [];
    const want = MIB * 1024 * 1024;
    for (let r = 0; r < REPS; r++) {
      latRaw.push((await insideMember(client, "127.0.0.1", raw.lat, "lat")).ms / LAT_N);
      latCbx.push((await insideMember(client, "bulk.cbx", 8080, "lat")).ms / LAT_N);
      const a = await insideMember(client, "127.0.0.1", raw.tp, "tp");
      if (a.bytes !== want) throw new Error(`raw member→member got ${a.bytes} bytes`);
      tpRaw.push(a.ms);
      const b = await insideMember(client, "bulk.cbx", 9000, "tp");
      if (b.bytes !== want) throw new Error(`ssh-peer member→member got ${b.bytes} bytes`);
      tpCbx.push(b.ms);
    }
    const [lr, lc] = [median(latRaw), median(latCbx)];
    row(
      `member→member connect+answer: raw ssh -L + ssh -R by hand (holding sessions)`,
      `${lr.toFixed(1)} ms`,
      "",
      "",
    );
    row(
      `  ssh-peer plane (client → bulk.cbx:8080)`,
      `${lc.toFixed(1)} ms`,
      `${(lc / lr).toFixed(2)}×`,
      "",
    );
    const rawMBs = MIB / (median(tpRaw) / 1000), cbxMBs = MIB / (median(tpCbx) / 1000);
    row(
      `member→member ${MIB} MiB: raw ssh -L + ssh -R by hand`,
      `${rawMBs.toFixed(0)} MiB/s`,
      "",
      "",
    );
    row(
      `  ssh-peer plane (client → bulk.cbx:9000)`,
      `${cbxMBs.toFixed(0)} MiB/s`,
      `${(cbxMBs / rawMBs).toFixed(2)}×`,
      "",
    );
  } finally {
    await raw.stop();
    await mesh.close();
  }
}

// ---------------------------------------------------------------------------

const crews: Record<number, Lease[]> = {};
try {
  console.error(`leasing ${SIZES.reduce((a, b) => a + b, 1)} local boxes in ${home} …`);
  for (const n of SIZES) {
    if (reuse) {
      crews[n] = await listLeases({ crew: `bench${n}` }, opts);
      continue;
    }
    const crew = await leaseCrew(
      `bench${n}`,
      Array.from({ length: n }, (_, i) => ({
        slug: `m${i}`,
        provider: "local",
        expose: [8080],
      })),
      { ...opts, concurrency: 8 },
    );
    crews[n] = [...crew.members];
    await Promise.all(crews[n].map(async (l) => {
      const kh = `${home}/svc_known_hosts`;
      await prepareKnownHosts(l.ssh!, kh);
      const r = await runSsh(
        sshCommandArgs(l.ssh!, ["bash", "-s", "--", l.slug, String(MIB * 1024 * 1024)], {
          knownHostsFile: kh,
        }),
        { stdin: SERVICES },
      );
      if (r.code !== 0) throw new Error(`services on ${l.slug}: ${r.stderr}`);
    }));
  }
  // throughput member: its own crew, so connect timings never probe the bulk service
  if (reuse) {
    crews[0] = await listLeases({ crew: "benchtp" }, opts);
  } else {
    crews[0] = [
      ...(await leaseCrew("benchtp", [
        { slug: "bulk", provider: "local", expose: [9000, 8080] },
        { slug: "client", provider: "local", expose: [] },
      ], opts)).members,
    ];
  }
  {
    const l = crews[0].find((x) => x.slug === "bulk")!;
    const kh = `${home}/svc_known_hosts`;
    await prepareKnownHosts(l.ssh!, kh);
    const r = await runSsh(
      sshCommandArgs(l.ssh!, ["bash", "-s", "--", l.slug, String(MIB * 1024 * 1024)], {
        knownHostsFile: kh,
      }),
      { stdin: SERVICES },
    );
    if (r.code !== 0) throw new Error(`services on ${l.slug}: ${r.stderr}`);
  }
  // warm caches (page cache, first known_hosts writes) once per crew
  for (const n of SIZES) {
    await (await rawConnect(crews[n]))();
    await (await connectCrew(`bench${n}`, opts)).close();
  }

  const rows: string[][] = [];
  const row = (...c: string[]) => {
    rows.push(c);
    console.error(c.join("  ")); // progress: the table comes at the end
  };

  // The machine's load says how much the ratios can be trusted: report it around the rows.
  const loadavg = () =>
    Deno.readTextFile("/proc/loadavg").then((t) => t.split(" ").slice(0, 3).join(" "), () => "?");
  const loadBefore = await loadavg();

  // Deno start-up: an empty `deno run` with the repo's deno.json (what #17 calls Deno
  // start-up; the CLI's goal adds this), and `crabbox crew --help` for comparison.
  const emptyScript = `${home}/empty.ts`;
  await Deno.writeTextFile(emptyScript, "");
  const startOf = async (args: string[]) =>
    median(
      await Array.fromAsync(
        { length: REPS + 2 },
        () =>
          timeIt(() =>
            new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "null" }).output()
          ),
      ),
    );
  const denoStart = await startOf(["run", "-A", "--config", DENO_JSON, emptyScript]);
  row("Deno start-up (deno run of an empty file, repo's deno.json)", ms(denoStart), "", "");
  const helpStart = await startOf(["run", "-A", CLI, "crew", "--help"]);
  row("  crabbox crew --help", ms(helpStart), signedMs(helpStart - denoStart), "");

  // A provider whose list answers SLOW_LIST_MS late (a cloud API's round
  // trip): the local provider itself, its list delayed. A connect starts ssh
  // from the claims and asks the list meanwhile; asking first would add it.
  const local = createLocalProvider({ home, env, config: {}, fetch, log: () => {} });
  const slowLocal = {
    ...local,
    list: async (...a: Parameters<typeof local.list>) => {
      await sleep(SLOW_LIST_MS);
      return await local.list(...a);
    },
  };

  // connect → ready
  const PHASES = ["plan", "spawn", "confirm", "sockets", "probes", "files"] as const;
  const largest = Math.max(...SIZES);
  for (const n of SECTIONS.has("connect") ? SIZES : []) {
    const raw: number[] = [], rawOwn: number[] = [], lib: number[] = [], cli: number[] = [];
    const rawDeno: number[] = [], slow: number[] = [];
    const phases: Record<string, number[]> = Object.fromEntries(PHASES.map((p) => [p, []]));
    const cliUse: { rssMiB: number; cpuMs: number }[] = [];
    const cliSteps: Record<string, number>[] = [];
    let sshPerMember = "";
    for (let r = 0; r < REPS; r++) {
      let stop!: () => Promise<void>;
      raw.push(await timeIt(async () => (stop = await rawConnect(crews[n]))));
      await stop();
      rawOwn.push(await timeIt(async () => (stop = await rawConnect(crews[n], true))));
      await stop();
      rawDeno.push(await timeIt(async () => (stop = await rawDenoConnect(crews[n]))));
      await stop();
      let mesh!: Awaited<ReturnType<typeof connectCrew>>;
      const seen: Record<string, number[]> = Object.fromEntries(PHASES.map((p) => [p, []]));
      lib.push(
        await timeIt(async () => (mesh = await connectCrew(`bench${n}`, {
          ...opts,
          onTiming: (t) => seen[t.phase]?.push(t.ms), // "warm" comes after ready
        }))),
      );
      // per-member phases run in parallel: the slowest member is what the wall clock sees
      for (const p of PHASES) phases[p].push(Math.max(0, ...seen[p]));
      if (n === largest && r === 0) {
        const pids = new Set(mesh.status().map((m) => m.pid).filter((p) => p !== undefined));
        const procs = await crewSshCount(`bench${n}`);
        sshPerMember = `${pids.size} ssh pids, ${procs} ssh processes for ${n} members → ${
          pids.size === n && procs === n ? "one each" : "MISMATCH"
        }`;
      }
      await mesh.close();
      if (n <= 5) {
        slow.push(
          await timeIt(async () => (mesh = await connectCrew(`bench${n}`, {
            ...opts,
            providers: { local: slowLocal },
          }))),
        );
        await mesh.close();
      }
      let stopCli!: () => Promise<Record<string, number>>;
      const took = await timeIt(async () =>
        stopCli = await cliConnect(
          `bench${n}`,
          n === largest ? async (pid) => void cliUse.push(await usage(pid)) : undefined,
        )
      );
      cli.push(took);
      const steps = await stopCli();
      // What the runtime did before its clock started, and the printing after ready.
      steps["before the runtime + output"] = took - (steps["ready at"] ?? took);
      cliSteps.push(steps);
    }
    const [mr, ml, mc, mo] = [median(raw), median(lib), median(cli), median(rawOwn)];
    // Goals are judged against the faster raw baseline: no credit for scheduling alone.
    const base = Math.min(mr, mo);
    row(`connect→ready ${n} member(s): raw ssh -N -L + probe`, ms(mr), "", "");
    row(
      `  raw, each ssh in its own session (setsid, as crabbox starts them)`,
      ms(mo),
      `${(mo / mr).toFixed(2)}×`,
      "",
    );
    row(
      `  crabbox connectCrew() (library)`,
      ms(ml),
      `${(ml / mr).toFixed(2)}× / ${(ml / mo).toFixed(2)}×`,
      `goal ≤ 1.05× the faster raw → ${ml / base <= 1.05 ? "met" : "MISSED"} (${
        signedMs(ml - base)
      })`,
    );
    row(
      `    breakdown`,
      PHASES.map((p) => `${p} ${median(phases[p]).toFixed(0)}`).join(" / ") + " ms",
      "",
      "",
    );
    if (slow.length > 0) {
      const ms5 = median(slow);
      row(
        `  connectCrew(), the provider's list ${SLOW_LIST_MS} ms late (a cloud API)`,
        ms(ms5),
        `${(ms5 / base).toFixed(2)}× the faster raw`,
        `${
          signedMs(ms5 - ml)
        } against the library row; asking the list first would add ${SLOW_LIST_MS} ms`,
      );
    }
    row(
      `  crabbox crew connect (CLI, incl. Deno start-up)`,
      ms(mc),
      `${(mc / mr).toFixed(2)}× / ${(mc / mo).toFixed(2)}×`,
      `goal ≤ 1.1× the faster raw + Deno = ${ms(1.1 * base + denoStart)} → ${
        mc <= 1.1 * base + denoStart ? "met" : "MISSED"
      }`,
    );
    const stepNames = Object.keys(cliSteps[0] ?? {}).filter((k) => k !== "ready at");
    row(
      `    CLI breakdown (CRABBOX_TIMING=1)`,
      stepNames.map((k) => `${k} ${median(cliSteps.map((x) => x[k] ?? 0)).toFixed(0)}`).join(
        " / ",
      ) + " ms",
      "",
      "boot: runtime start → cli.ts runs; cli: parse + home check; import: lib/mesh/connect.ts",
    );
    const md = median(rawDeno);
    row(
      `    raw by hand from a fresh Deno process (ssh -N -L + probe script)`,
      ms(md),
      `${(md / base).toFixed(2)}× the faster raw`,
      `Deno's own cost at this size: ${signedMs(md - base)}`,
    );
    row(
      `    CLI vs that script`,
      signedMs(mc - md),
      `${(mc / md).toFixed(2)}×`,
      "crabbox's own cost in a fresh process",
    );
    if (n === largest) {
      row(`    one ssh per member`, sshPerMember, "", "");
      row(
        `    CLI process at ready`,
        `peak RSS ${median(cliUse.map((u) => u.rssMiB)).toFixed(0)} MiB, CPU ${
          ms(median(cliUse.map((u) => u.cpuMs)))
        }`,
        "",
        "CPU = user + system time of the Deno process",
      );
      const cliOut = (args: string[]) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", CLI, ...args],
          env: childEnv,
          stdout: "null",
          stderr: "null",
        }).output();
      const list: number[] = [], peers: number[] = [], table: number[] = [];
      for (let r = 0; r < REPS; r++) {
        list.push(await timeIt(() => cliOut(["list", "--crew", `bench${n}`, "--json"])));
        peers.push(await timeIt(() => cliOut(["crew", "peers", `bench${n}`, "--json"])));
        table.push(await timeIt(() => cliOut(["crew", "connect", `bench${n}`, "--json"])));
      }
      const [mls, mp, mt] = [median(list), median(peers), median(table)];
      row(`list --crew bench${n} --json (${n} members)`, ms(mls), "", "");
      for (const [label, m] of [["crew peers", mp], ["crew connect", mt]] as const) {
        row(
          `  ${label} bench${n} --json`,
          ms(m),
          `${(m / mls).toFixed(2)}×`,
          `goal ≤ 1.5× → ${m / mls <= 1.5 ? "met" : "MISSED"}`,
        );
      }
    }
  }

  // throughput
  if (SECTIONS.has("throughput")) {
    const member = crews[0].find((x) => x.slug === "bulk")!;
    const mesh = await connectCrew("benchtp", opts);
    const rawStop = await (async () => {
      const port = 53990;
      const c = new Deno.Command("ssh", {
        args: rawArgs(member, [[port, 9000]]),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      while (!(await answers(port))) await sleep(5);
      return { port, stop: async () => (c.kill("SIGTERM"), await c.status) };
    })();
    const meshPort = Number(mesh.address(member.slug, 9000).split(":")[1]);
    const tRaw: number[] = [], tCbx: number[] = [];
    for (let r = 0; r < REPS; r++) {
      let bytes = 0;
      tRaw.push(await timeIt(async () => (bytes = await drain(rawStop.port))));
      if (bytes !== MIB * 1024 * 1024) throw new Error(`raw got ${bytes} bytes`);
      tCbx.push(await timeIt(async () => (bytes = await drain(meshPort))));
      if (bytes !== MIB * 1024 * 1024) throw new Error(`crabbox got ${bytes} bytes`);
    }
    const rawMBs = MIB / (median(tRaw) / 1000), cbxMBs = MIB / (median(tCbx) / 1000);
    row(`${MIB} MiB through raw ssh -L`, `${rawMBs.toFixed(0)} MiB/s`, "", ms(median(tRaw)));
    row(
      `${MIB} MiB through a crabbox forward`,
      `${cbxMBs.toFixed(0)} MiB/s`,
      `${(cbxMBs / rawMBs).toFixed(2)}×`,
      `goal ≥ 0.95× → ${cbxMBs / rawMBs >= 0.95 ? "met" : "MISSED"}`,
    );

    // run step: ssh through the master vs raw ssh -S vs a fresh connection
    const kh = meshPaths(home, "benchtp").knownHosts;
    const control = await controlForLease(home, member, { env });
    if (control.master !== "no") throw new Error("master not found");
    const viaMaster: number[] = [],
      rawS: number[] = [],
      fresh: number[] = [],
      lookup: number[] = [];
    for (let r = 0; r < Math.max(REPS, 5) * 2; r++) {
      lookup.push(await timeIt(() => controlForLease(home, member, { env })));
      viaMaster.push(
        await timeIt(() =>
          runSsh(sshCommandArgs(member.ssh!, ["true"], { knownHostsFile: kh, control }))
        ),
      );
      rawS.push(
        await timeIt(() =>
          new Deno.Command("ssh", {
            args: ["-S", control.path, `${member.ssh!.user}@${member.ssh!.host}`, "true"],
            stdin: "null",
            stdout: "null",
            stderr: "null",
          }).output()
        ),
      );
      fresh.push(
        await timeIt(() => runSsh(sshCommandArgs(member.ssh!, ["true"], { knownHostsFile: kh }))),
      );
    }
    const [mv, mr, mf, mlk] = [median(viaMaster), median(rawS), median(fresh), median(lookup)];
    row(`run step: raw ssh -S <path> M true`, ms(mr), "", "");
    row(
      `  crabbox run ssh step via the master`,
      ms(mv),
      `${(mv / mr).toFixed(2)}×`,
      `goal ≤ 1.1× → ${mv / mr <= 1.1 ? "met" : "MISSED"}`,
    );
    row(
      `  + controlForLease() lookup (ssh -O check)`,
      ms(mlk),
      `${((mv + mlk) / mr).toFixed(2)}×`,
      "",
    );
    row(`  fresh connection (no master)`, ms(mf), `${(mf / mv).toFixed(1)}× of master`, "");
    await rawStop.stop();
    await mesh.close();
  }

  // proxied member vs direct: the same box through crabbox proxy + a WebSocket proxy
  if (SECTIONS.has("proxy")) {
    const member = crews[0].find((x) => x.slug === "bulk")!;
    // The fake proxy runs in its own process, as a real provider's proxy is elsewhere.
    const fakeProc = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_fake_sprites.ts", import.meta.url).pathname,
        member.ssh!.host,
        String(member.ssh!.port),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const firstLine = await new Response(fakeProc.stdout).body!.pipeThrough(new TextDecoderStream())
      .getReader().read();
    const fake = JSON.parse(String(firstLine.value).split("\n")[0]) as {
      url: string;
      token: string;
    };
    Deno.env.set("SPRITES_TOKEN", fake.token);
    Deno.env.set("CRABBOX_SPRITES_API_URL", fake.url);
    const name = `crabbox-bulk-${member.id.slice(4)}`;
    const made = await fetch(`${fake.url}/v1/sprites`, {
      method: "POST",
      headers: { authorization: `Bearer ${fake.token}`, "content-type": "application/json" },
      body: JSON.stringify({ name, labels: [] }),
    });
    await made.body?.cancel();
    const direct = member.ssh!;
    const proxied: SshTarget = {
      ...direct,
      host: name,
      port: 22,
      proxyCommand: proxyArgv({
        home,
        provider: "sprites",
        providerId: name,
        leaseId: member.id,
        port: 22,
      }),
    };
    const kh = `${home}/proxy_known_hosts`;
    await prepareKnownHosts(direct, kh);
    await prepareKnownHosts(proxied, kh);
    const freshD: number[] = [], freshP: number[] = [];
    for (let r = 0; r < Math.max(REPS, 5); r++) {
      freshD.push(
        await timeIt(() => runSsh(sshCommandArgs(direct, ["true"], { knownHostsFile: kh }))),
      );
      freshP.push(
        await timeIt(async () => {
          const res = await runSsh(sshCommandArgs(proxied, ["true"], { knownHostsFile: kh }));
          if (res.code !== 0) throw new Error(`proxied ssh failed: ${res.stderr}`);
        }),
      );
    }
    const forward = async (t: SshTarget, base: number, session = false) => {
      const args = sshForwardArgs(t, [
        { localPort: base, remotePort: 8080 },
        { localPort: base + 1, remotePort: 9000 },
        { localPort: base + 2, remotePort: 7070 },
      ], { knownHostsFile: kh });
      const c = new Deno.Command("ssh", {
        args: session ? withSession(args) : args,
        stdin: session ? "piped" : "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      while (!(await answers(base))) await sleep(5);
      return async () => (c.kill("SIGTERM"), await c.status);
    };
    const [bD, bP, bDs, bPs] = [53975, 53978, 53981, 53984];
    const stopD = await forward(direct, bD);
    const stopP = await forward(proxied, bP);
    const stopDs = await forward(direct, bDs, true);
    const stopPs = await forward(proxied, bPs, true);
    const greetD: number[] = [], greetP: number[] = [], tpD: number[] = [], tpP: number[] = [];
    const greetDs: number[] = [], greetPs: number[] = [];
    for (let r = 0; r < Math.max(REPS, 5); r++) {
      const runs = [[bD, greetD], [bP, greetP], [bDs, greetDs], [bPs, greetPs]] as const;
      for (const [port, times] of runs) {
        // back to back, as a client opening one connection after another does: a
        // byte held back from the previous channel shows in the next one
        for (let k = 0; k < 4; k++) times.push(await timeIt(() => answers(port)));
      }
    }
    const wwrD: number[] = [], wwrP: number[] = [];
    for (let r = 0; r < Math.max(REPS, 5) * 2; r++) {
      wwrD.push(await writeWriteRead(bDs + 2));
      wwrP.push(await writeWriteRead(bPs + 2));
    }
    await stopDs();
    await stopPs();
    for (let r = 0; r < REPS; r++) {
      let bytes = 0;
      tpD.push(await timeIt(async () => (bytes = await drain(bD + 1))));
      if (bytes !== MIB * 1024 * 1024) throw new Error(`direct got ${bytes} bytes`);
      tpP.push(await timeIt(async () => (bytes = await drain(bP + 1))));
      if (bytes !== MIB * 1024 * 1024) throw new Error(`proxied got ${bytes} bytes`);
    }
    await stopD();
    await stopP();
    // crabbox's own forwards: connectCrew's master runs one warm-up session once
    // ready (sshd then sets TCP_NODELAY); timed once that session has ended
    const viaCrabbox = async (lease: Lease): Promise<number[]> => {
      let warmed!: () => void;
      const warm = new Promise<void>((r) => (warmed = r));
      const mesh = await connectCrew("benchtp", {
        ...opts,
        members: [lease],
        onTiming: (t) => void (t.phase === "warm" && warmed()),
      });
      try {
        if (!(await within(warm, 30_000))) throw new Error("no warm-up session within 30 s");
        const port = Number(mesh.address(lease.slug, 8080).split(":")[1]);
        const times: number[] = [];
        for (let r = 0; r < Math.max(REPS, 5) * 4; r++) {
          times.push(await timeIt(() => answers(port)));
        }
        return times;
      } finally {
        await mesh.close();
      }
    };
    const greetC = await viaCrabbox(member);
    const greetCp = await viaCrabbox({ ...member, ssh: proxied });
    const [fd, fp, gd, gp] = [median(freshD), median(freshP), median(greetD), median(greetP)];
    const [dMBs, pMBs] = [MIB / (median(tpD) / 1000), MIB / (median(tpP) / 1000)];
    row(`ssh true, fresh connection: direct member`, ms(fd), "", "");
    row(
      `  proxied member (crabbox proxy + WebSocket)`,
      ms(fp),
      `${(fp / fd).toFixed(2)}×`,
      signedMs(fp - fd),
    );
    const [gds, gps] = [median(greetDs), median(greetPs)];
    const signed = (x: number) => `${x < 0 ? "-" : "+"}${Math.abs(x).toFixed(2)} ms`;
    row(
      `new channel on a live forward (connect + first bytes), sshd TCP_NODELAY: direct`,
      `${gds.toFixed(2)} ms`,
      "",
      "a forward holding a session",
    );
    row(
      `  proxied member`,
      `${gps.toFixed(2)} ms`,
      `${(gps / gds).toFixed(2)}×`,
      signed(gps - gds),
    );
    const [gc, gcp] = [median(greetC), median(greetCp)];
    row(
      `  a crabbox forward (connectCrew, after its warm-up session): direct`,
      `${gc.toFixed(2)} ms`,
      `${(gc / gds).toFixed(2)}×`,
      signed(gc - gds),
    );
    row(
      `  a crabbox forward: proxied member`,
      `${gcp.toFixed(2)} ms`,
      `${(gcp / gds).toFixed(2)}×`,
      signed(gcp - gds),
    );
    row(
      `  raw ssh -N -L by hand (runs no session: sshd Nagle): direct`,
      `${gd.toFixed(2)} ms`,
      `${(gd / gds).toFixed(2)}×`,
      "0 or ~40 ms per channel",
    );
    row(`  proxied member, raw bare -N`, `${gp.toFixed(2)} ms`, `${(gp / gds).toFixed(2)}×`, "");
    const [wd, wp] = [median(wwrD), median(wwrP)];
    row(
      `two small writes 2 ms apart → answer, on a live forward: direct`,
      `${wd.toFixed(2)} ms`,
      "",
      "from the first write",
    );
    row(`  proxied member`, `${wp.toFixed(2)} ms`, `${(wp / wd).toFixed(2)}×`, signed(wp - wd));
    await fakeProc.stdin.close();
    await fakeProc.status;
    row(`${MIB} MiB through -L: direct member`, `${dMBs.toFixed(0)} MiB/s`, "", ms(median(tpD)));
    row(
      `  proxied member`,
      `${pMBs.toFixed(0)} MiB/s`,
      `${(pMBs / dMBs).toFixed(2)}×`,
      ms(median(tpP)),
    );
  }

  if (SECTIONS.has("peers")) await peerRows(row);

  rows.unshift(["measurement", "value", "ratio (connect: vs raw / vs setsid raw)", "goal / note"]);
  const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(
    `\nSSH-mesh bench — ${navigator.hardwareConcurrency} CPUs, median of ${REPS}, load average (1/5/15 min) ${loadBefore} before, ${await loadavg()} after\n`,
  );
  console.log(
    rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd()).join("\n"),
  );
} finally {
  if (Deno.env.get("BENCH_KEEP")) {
    console.error(`kept boxes: CRABBOX_HOME=${home}`);
  } else {
    for (const c of [...SIZES.map((n) => `bench${n}`), "benchtp"]) {
      await releaseCrew(c, opts).catch(() => {});
    }
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}
