/**
 * Warm-up: 20 `local` boxes with one `leaseCrew` against the same work done
 * by hand in the same run — 20 network namespaces on a crew bridge, each
 * with its host key, hosts file, sshd (in `ip netns exec` + `unshare
 * --uts`), a socat relay on a host loopback address and a first `ssh true`,
 * all 20 started in parallel from one bash script. Prints medians and the
 * ratio (goal ≤ 1.2×). Needs root and the local provider's prerequisites;
 * the machine's load is shared by both sides alike (rounds alternate).
 *
 * ```sh
 * deno run -A bench/warmup.ts
 * BENCH_REPS=3 BENCH_BOXES=10 deno run -A bench/warmup.ts
 * ```
 *
 * @module
 */

import { leaseCrew } from "../lib/lease/create.ts";
import { checkLocalPrerequisites } from "../providers/local/mod.ts";

const REPS = Number(Deno.env.get("BENCH_REPS") ?? 5);
const BOXES = Number(Deno.env.get("BENCH_BOXES") ?? 20);

const missing = checkLocalPrerequisites();
if (missing.length > 0) {
  console.error(`warmup bench needs the local provider: missing ${missing.join(", ")}`);
  Deno.exit(1);
}

// One box by hand, the steps the local provider takes (see providers/local/lifecycle.ts).
const BOX = String.raw`set -eu
i=$1 ns=$2 br=$3 dir=$4 ip=$5 key=$6
mkdir -m 700 "$dir"
ssh-keygen -q -t ed25519 -N "" -C hand -f "$dir/host_key" &
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$br" link add "vh$i" type veth peer name cbx0 netns "$ns"
ip -n "$br" link set "vh$i" master br0 up
ip -n "$ns" addr add "10.254.$((i / 250)).$((i % 250 + 2))/16" dev cbx0
ip -n "$ns" link set cbx0 up
mkdir -p "/etc/netns/$ns"
printf '127.0.0.1 localhost\n10.254.%s.%s box%s\n' $((i / 250)) $((i % 250 + 2)) "$i" >"/etc/netns/$ns/hosts"
cp "$key.pub" "$dir/authorized_keys"
cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1:22
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding yes
PidFile none
UseDNS no
MaxStartups 100:30:200
EOF
wait
setsid ip netns exec "$ns" unshare --uts -- sh -c 'printf %s "$1" >/proc/sys/kernel/hostname && exec /usr/sbin/sshd -D -e -f "$2"' sh "box$i" "$dir/sshd_config" </dev/null >"$dir/sshd.log" 2>&1 &
setsid socat "TCP-LISTEN:22,bind=$ip,reuseaddr,fork,backlog=512,nodelay" "EXEC:ip netns exec $ns socat STDIO TCP\:127.0.0.1\:22\,nodelay" </dev/null >"$dir/relay.log" 2>&1 &
echo "relay $!"
for _ in $(seq 600); do
  if ssh -F none -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new \
    -o "UserKnownHostsFile=$dir/known_hosts" -o ConnectTimeout=5 "root@$ip" true 2>/dev/null; then
    exit 0
  fi
  sleep 0.02
done
exit 1
`;

/** The same warm-up by hand; returns the elapsed ms and cleans up (not timed). */
async function byHand(round: number): Promise<number> {
  const tag = `h${Deno.pid % 10000}r${round}`;
  const work = await Deno.makeTempDir({ prefix: "cbx-bench-hand-" });
  const br = `cbxh-${tag}-br`;
  const names = Array.from({ length: BOXES }, (_, i) => `cbxh-${tag}-${i}`);
  const relays: number[] = [];
  const sh = (script: string, args: string[] = []) =>
    new Deno.Command("bash", {
      args: ["-c", script, "bash", ...args],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  const t0 = performance.now();
  try {
    // once per crew: the client key and the crew bridge
    const setup = await sh(
      `set -eu; ssh-keygen -q -t ed25519 -N "" -C hand -f "$1/id" &
       ip netns add "$2"; ip -n "$2" link add br0 type bridge; ip -n "$2" link set br0 up; wait`,
      [work, br],
    );
    if (!setup.success) throw new Error(new TextDecoder().decode(setup.stderr));
    const results = await Promise.all(names.map((ns, i) =>
      sh(BOX, [
        String(i),
        ns,
        br,
        `${work}/${i}`,
        `127.78.${(round * BOXES + i) >> 8 & 255}.${((round * BOXES + i) & 255) || 1}`,
        `${work}/id`,
      ])
    ));
    const elapsed = performance.now() - t0;
    for (const r of results) {
      const m = /relay (\d+)/.exec(new TextDecoder().decode(r.stdout));
      if (m) relays.push(Number(m[1]));
    }
    const bad = results.find((r) => !r.success);
    if (bad) throw new Error(`by hand: ${new TextDecoder().decode(bad.stderr)}`);
    return elapsed;
  } finally {
    for (const p of relays) {
      try {
        Deno.kill(p, "SIGTERM");
      } catch { /* gone */ }
    }
    for (const ns of names) {
      await sh(
        `for p in $(ip netns pids "$1" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
         sleep 0.05; for p in $(ip netns pids "$1" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
         ip netns del "$1" 2>/dev/null || true; rm -rf "/etc/netns/$1"`,
        [ns],
      );
    }
    await sh(`ip netns del "$1" 2>/dev/null || true`, [br]);
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** One `leaseCrew` of BOXES local members; returns the elapsed ms and releases (not timed). */
async function withCrabbox(round: number, concurrency: number | undefined): Promise<number> {
  const home = await Deno.makeTempDir({ prefix: "cbx-bench-warm-" });
  const env = (k: string) =>
    ({ CRABBOX_HOME: home, CRABBOX_OWNER: "bench@example.com" } as Record<string, string>)[k] ??
      Deno.env.get(k);
  const t0 = performance.now();
  const crew = await leaseCrew(
    `warm${round}`,
    Array.from({ length: BOXES }, (_, i) => ({ slug: `m${i}`, provider: "local" })),
    { home, env, ...(concurrency ? { concurrency } : {}) },
  );
  const elapsed = performance.now() - t0;
  await crew.release();
  await Deno.remove(home, { recursive: true }).catch(() => {});
  return elapsed;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const hand: number[] = [], full: number[] = [], dflt: number[] = [];
await byHand(99); // warm the page cache and the binaries
for (let r = 0; r < REPS; r++) {
  hand.push(await byHand(r));
  full.push(await withCrabbox(r, BOXES));
  dflt.push(await withCrabbox(r + 100, undefined));
}
const [mh, mf, md] = [median(hand), median(full), median(dflt)];
const rows = [
  ["measurement", "median", "ratio", "goal / note"],
  [`${BOXES} netns + sshd + relay + first ssh by hand, in parallel`, `${mh.toFixed(0)} ms`, "", ""],
  [
    `  leaseCrew, ${BOXES} local members, concurrency ${BOXES}`,
    `${mf.toFixed(0)} ms`,
    `${(mf / mh).toFixed(2)}×`,
    `goal ≤ 1.2× → ${mf / mh <= 1.2 ? "met" : "MISSED"}`,
  ],
  [
    `  leaseCrew, default concurrency (4)`,
    `${md.toFixed(0)} ms`,
    `${(md / mh).toFixed(2)}×`,
    "the default bounds cloud API calls",
  ],
];
const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
console.log(`\nWarm-up bench — ${navigator.hardwareConcurrency} CPUs, median of ${REPS}\n`);
console.log(rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd()).join("\n"));
