/**
 * `listLeases` at scale: 250, 500 and 1,000 claims whose boxes a provider
 * lists 50 per page (the hetzner provider against the fake Hetzner API on
 * 127.0.0.1, which pages like Hetzner: at most 50 per page). Prints medians,
 * the cost per lease, the ratio of each size to the smallest (linear means
 * the per-lease cost stays flat), and the raw baseline measured in the same
 * run: the same pages fetched by hand plus the same claim files read and
 * parsed, with no crabbox code in between. The fake filters and slices its
 * whole server list per page, so both sides grow a little faster than
 * linearly; the last column is crabbox's own cost per lease.
 *
 * ```sh
 * deno run -A bench/list.ts
 * BENCH_REPS=3 BENCH_LIST_SIZES=100,1000 deno run -A bench/list.ts
 * ```
 *
 * @module
 */

import { listLeases } from "../lib/lease/leases.ts";
import { claimsDir, type Lease, saveClaim } from "../lib/lease/claims.ts";
import { encodeLabels } from "../lib/core/labels.ts";
import { ownerFor } from "../lib/core/names.ts";
import { startFakeHetzner } from "../tests/fakes/hetzner.ts";

const REPS = Number(Deno.env.get("BENCH_REPS") ?? 5);
const SIZES = (Deno.env.get("BENCH_LIST_SIZES") ?? "250,500,1000").split(",").map(Number);
const PAGE = 50;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const hex12 = (i: number) => i.toString(16).padStart(12, "0");

await using fake = startFakeHetzner({ maxPerPage: PAGE });
const OWNER_ENV = "bench@example.com";
const owner = await ownerFor({ env: (k) => (k === "CRABBOX_OWNER" ? OWNER_ENV : undefined) });

/** Seed the fake with `n` running servers and write their `n` claims under a fresh home. */
async function seed(n: number): Promise<string> {
  const home = await Deno.makeTempDir({ prefix: "cbx-bench-list-" });
  fake.servers.clear();
  for (let i = 0; i < n; i++) {
    const id = `cbx-${hex12(i + 1)}`;
    const crew = `crew${i % 10}`;
    const slug = `m${i}`;
    const labels = encodeLabels({ leaseId: id, crew, slug, expose: [8080], owner });
    const serverId = 100_000 + i;
    const ipv4 = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    fake.servers.set(serverId, {
      id: serverId,
      name: `crabbox-${crew}-${slug}`,
      labels,
      sshKeyIds: [],
      serverType: "cx23",
      image: "ubuntu-24.04",
      location: "fsn1",
      ipv4,
      created: new Date(0).toISOString(),
      polls: 99, // running
      actionId: 1,
    });
    const lease: Lease = {
      id,
      provider: "hetzner",
      providerId: String(serverId),
      crew,
      slug,
      role: "m",
      owner,
      labels,
      expose: [8080],
      ssh: { host: ipv4, port: 22, user: "root" },
      tailscale: false,
      createdAt: new Date(0).toISOString(),
      state: "active",
    };
    await saveClaim(home, lease);
  }
  return home;
}

/** The same work by hand: every page of servers, every claim file read and parsed. */
async function byHand(home: string): Promise<number> {
  let servers = 0;
  for (let page = 1;; page++) {
    const res = await fetch(
      `${fake.url}/servers?label_selector=crabbox%3Dtrue&page=${page}&per_page=${PAGE}`,
      { headers: { authorization: `Bearer ${fake.token}` } },
    );
    const body = await res.json();
    servers += body.servers.length;
    if (!body.meta.pagination.next_page) break;
  }
  const dir = claimsDir(home);
  let claims = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".json")) continue;
    JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`));
    claims++;
  }
  return Math.min(servers, claims);
}

const env = (home: string) => (k: string) =>
  ({
    CRABBOX_HOME: home,
    CRABBOX_OWNER: OWNER_ENV,
    HCLOUD_TOKEN: fake.token,
    CRABBOX_HETZNER_API_URL: fake.url,
  } as Record<string, string>)[k] ?? Deno.env.get(k);

const rows: string[][] = [[
  "claims",
  "raw (pages + claim files)",
  "listLeases",
  "ratio",
  "per lease",
  "vs smallest",
  "crabbox's own (− raw) per lease",
]];
let firstPer = 0;
for (const n of SIZES) {
  const home = await seed(n);
  try {
    const options = { home, env: env(home), log: () => {} };
    const raw: number[] = [], cbx: number[] = [];
    for (let r = 0; r < REPS + 1; r++) {
      let t0 = performance.now();
      const got = await byHand(home);
      const tRaw = performance.now() - t0;
      if (got !== n) throw new Error(`by hand found ${got} of ${n}`);
      const before = fake.requests.length;
      t0 = performance.now();
      const leases = await listLeases({}, options);
      const tCbx = performance.now() - t0;
      const active = leases.filter((l) => l.state === "active").length;
      if (active !== n) throw new Error(`listLeases found ${active} active of ${n}`);
      const pages = fake.requests.length - before;
      if (pages !== Math.ceil(n / PAGE)) throw new Error(`${pages} requests for ${n} servers`);
      if (r > 0) { // the first round warms the JIT and the page cache
        raw.push(tRaw);
        cbx.push(tCbx);
      }
    }
    const [mr, mc] = [median(raw), median(cbx)];
    const per = mc / n;
    firstPer ||= per;
    rows.push([
      String(n),
      `${mr.toFixed(0)} ms`,
      `${mc.toFixed(0)} ms`,
      `${(mc / mr).toFixed(2)}×`,
      `${(per * 1000).toFixed(0)} µs`,
      `${(per / firstPer).toFixed(2)}× per lease`,
      `${((mc - mr) / n * 1000).toFixed(0)} µs`,
    ]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}
const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
console.log(
  `\nlistLeases bench — ${navigator.hardwareConcurrency} CPUs, median of ${REPS}, ${PAGE} per page` +
    " (linear: per-lease cost flat across sizes)\n",
);
console.log(rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd()).join("\n"));
