/**
 * Start-up of the CLI against an empty `deno run` measured in the same run
 * (prints a table of medians; not a test): `crabbox --help`, `crabbox list`
 * (local claims only: an empty home) and `crabbox crew connect --json`
 * (plans a crew of one claim-only lease; starts nothing; the parsed
 * config.yaml cached, as on every run but the first after an edit, which
 * the row below it measures). The goal is
 * "empty + 25 ms". The breakdown rows show what the extra time is: the
 * module graph each command loads (counted from `--log-level=debug`), and
 * the cost of importing pieces of it alone: the argv parser and help
 * renderer (`cli/args/`), the command tree (`cli.ts` without running it),
 * the listing `list` loads (`lib/lease/leases.ts`), what `crew connect
 * --json` loads (`lib/mesh/describe.ts`) and, for comparison, the whole
 * lease area through its `mod.ts`; Deno's Node-compat layer for reference
 * (the CLI no longer loads it at start-up).
 *
 * With `BENCH_BINARY=<compiled crabbox>` (and optionally
 * `BENCH_EMPTY_BINARY=<compiled empty script>` as its baseline) the same
 * commands also run through the compiled binary; the release workflow
 * (`.github/workflows/compile.yml`) does that.
 *
 * ```sh
 * deno run -A bench/startup.ts
 * BENCH_REPS=21 deno run -A bench/startup.ts
 * ```
 *
 * @module
 */

import { writeStaticCrewHome } from "../tests/fakes/static_crew.ts";

const REPS = Number(Deno.env.get("BENCH_REPS") ?? 15);
const CLI = new URL("../cli.ts", import.meta.url).pathname;
// The import rows run with the CLI's own deno.json (lazy-dynamic-imports), as the CLI does.
const DENO_JSON = new URL("../deno.json", import.meta.url).pathname;
const tmp = await Deno.makeTempDir({ prefix: "cbx-bench-startup-" });
const script = async (name: string, text: string) => {
  const path = `${tmp}/${name}.ts`;
  await Deno.writeTextFile(path, text);
  return path;
};
const empty = await script("empty", "");
const nodeFs = await script("node_fs", 'import "node:fs";\nimport "node:child_process";\n');
const here = (path: string) => new URL(path, import.meta.url).pathname;
const parser = await script(
  "parser",
  `import "${here("../cli/args/parse.ts")}";\nimport "${here("../cli/args/help.ts")}";\n`,
);
const tree = await script("tree", `import "${CLI}";\n`);
const listing = await script("listing", `import "${here("../lib/lease/leases.ts")}";\n`);
const describe = await script("describe", `import "${here("../lib/mesh/describe.ts")}";\n`);
const leaseLayer = await script("lease", `import "${here("../lib/lease/mod.ts")}";\n`);

// Homes: one empty (list = local claims only), one with a crew of one
// member on the `ssh` provider (a static host in config.yaml, claimed), so
// `crew connect --json` plans a real crew and touches no box.
const emptyHome = `${tmp}/empty-home`;
const crewHome = `${tmp}/crew-home`;
await Deno.mkdir(emptyHome, { mode: 0o700 });
await Deno.mkdir(crewHome, { mode: 0o700 });
const OWNER_ENV = "bench@example.com";
await writeStaticCrewHome(crewHome, "bench", OWNER_ENV);
// The same crew where the parsed config cannot be cached (cache/config.json is
// a directory): every run parses config.yaml, as the first run after an edit does.
const uncachedHome = `${tmp}/uncached-home`;
await Deno.mkdir(uncachedHome, { mode: 0o700 });
await writeStaticCrewHome(uncachedHome, "bench", OWNER_ENV);
await Deno.mkdir(`${uncachedHome}/cache/config.json`, { recursive: true, mode: 0o700 });

/** Wall time of one run (it must succeed). */
async function timeRun(program: string, args: string[], home: string): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command(program, {
    args,
    env: { CRABBOX_HOME: home, CRABBOX_OWNER: OWNER_ENV, NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - start;
  if (!out.success) {
    throw new Error(`${program} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

/** Modules a `deno run` evaluates (from the loader's debug log). */
async function moduleCount(args: string[], home: string): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--log-level=debug", "-A", ...args],
    env: { CRABBOX_HOME: home, CRABBOX_OWNER: OWNER_ENV, NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  const log = new TextDecoder().decode(out.stderr);
  return new Set(log.match(/code cache (?:hit|miss)[^\n]*?for ES module: [^,\s]+/g) ?? []).size;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Case {
  label: string;
  program: string;
  args: string[];
  home: string;
}

const deno = Deno.execPath();
/** `deno run` of `script` with the repo's deno.json, in the empty home. */
const importCase = (label: string, script: string): Case => ({
  label,
  program: deno,
  args: ["run", "-A", "--config", DENO_JSON, script],
  home: emptyHome,
});
const cases: Case[] = [
  { label: "deno run (empty file)", program: deno, args: ["run", "-A", empty], home: emptyHome },
  importCase("  same, with the repo's deno.json (imports, lock file, unstable flags)", empty),
  {
    label: "  import node:fs + node:child_process",
    program: deno,
    args: ["run", "-A", nodeFs],
    home: emptyHome,
  },
  importCase("  import cli/args (parser + help)", parser),
  importCase("  import cli.ts (command tree)", tree),
  importCase("  import lib/lease/leases.ts (list)", listing),
  importCase("  import lib/mesh/describe.ts (crew connect --json)", describe),
  importCase("  import lib/lease/mod.ts (the whole lease area)", leaseLayer),
  {
    label: "crabbox --help",
    program: deno,
    args: ["run", "-A", CLI, "--help"],
    home: emptyHome,
  },
  {
    label: "crabbox list (local claims only)",
    program: deno,
    args: ["run", "-A", CLI, "list"],
    home: emptyHome,
  },
  {
    label: "crabbox crew connect bench --json",
    program: deno,
    args: ["run", "-A", CLI, "crew", "connect", "bench", "--json"],
    home: crewHome,
  },
  {
    label: "  same, config.yaml parsed (first run after an edit)",
    program: deno,
    args: ["run", "-A", CLI, "crew", "connect", "bench", "--json"],
    home: uncachedHome,
  },
];
const binary = Deno.env.get("BENCH_BINARY");
const emptyBinary = Deno.env.get("BENCH_EMPTY_BINARY");
if (emptyBinary) {
  cases.push({ label: "compiled empty script", program: emptyBinary, args: [], home: emptyHome });
}
if (binary) {
  cases.push(
    { label: "compiled crabbox --help", program: binary, args: ["--help"], home: emptyHome },
    { label: "compiled crabbox list", program: binary, args: ["list"], home: emptyHome },
    {
      label: "compiled crabbox crew connect bench --json",
      program: binary,
      args: ["crew", "connect", "bench", "--json"],
      home: crewHome,
    },
  );
}

try {
  // Interleaved rounds: load on the machine hits every case alike.
  const times = cases.map(() => [] as number[]);
  for (const c of cases) await timeRun(c.program, c.args, c.home); // warm the code cache
  for (let r = 0; r < REPS; r++) {
    for (const [i, c] of cases.entries()) times[i].push(await timeRun(c.program, c.args, c.home));
  }
  const med = times.map(median);
  const base = med[0];
  const baseBinary = emptyBinary ? med[cases.findIndex((c) => c.program === emptyBinary)] : base;
  const rows = [["measurement", "median", "ratio", "goal / note"]];
  const signed = (ms: number) => {
    const r = Math.round(ms) || 0; // never "-0"
    return `${r >= 0 ? "+" : ""}${r} ms`;
  };
  for (const [i, c] of cases.entries()) {
    const isCli = c.label.includes("crabbox");
    const ref = c.program === deno ? base : baseBinary;
    const note = isCli
      ? `≤ empty + 25 ms → ${med[i] <= ref + 25 ? "met" : "MISSED"} (${signed(med[i] - ref)})`
      : i === 0
      ? ""
      : `${signed(med[i] - base)} over empty`;
    rows.push([c.label, `${med[i].toFixed(0)} ms`, `${(med[i] / ref).toFixed(2)}×`, note]);
  }
  const graph: [string, string[], string][] = [
    ["--help", ["--help"], emptyHome],
    ["list", ["list"], emptyHome],
    ["crew connect --json", ["crew", "connect", "bench", "--json"], crewHome],
  ];
  for (const [label, args, home] of graph) {
    rows.push([
      `modules evaluated: ${label}`,
      String(await moduleCount([CLI, ...args], home)),
      "",
      "",
    ]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(
    `\nStart-up bench — ${navigator.hardwareConcurrency} CPUs, median of ${REPS} (interleaved)\n`,
  );
  console.log(rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd()).join("\n"));
} finally {
  await Deno.remove(tmp, { recursive: true });
}
