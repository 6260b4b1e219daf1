/**
 * The mutation check: applies each named mutation of {@link MUTATIONS} (one
 * exact text replacement) to a scratch copy of the repository, runs that
 * mutation's test files there and reports whether the tests noticed
 * (`killed`) or not (`survived`), then the score. A mutation whose old text
 * is not found exactly once is an `error`, so the list stays in sync with the
 * code. The real tree is never touched.
 *
 * Run (not part of `deno task test`):
 *
 * ```sh
 * deno run -A tools/mutate.ts                     # every mutation
 * deno run -A tools/mutate.ts --filter known-hosts # names containing "known-hosts"
 * deno run -A tools/mutate.ts --list              # names and test files only
 * deno run -A tools/mutate.ts --jobs 2            # two scratch copies in parallel
 * ```
 *
 * Exit status 0 when every selected mutation was killed, 1 otherwise.
 *
 * @module
 */

import { type Mutation, MUTATIONS } from "./mutations.ts";

/** Outcome of one mutation. */
export type Outcome = "killed" | "survived" | "timeout" | "error";

/** Parsed command line. */
export interface MutateArgs {
  /** Only mutations whose name contains one of these (comma-separated on the command line). */
  filters: string[];
  /** Print the selected mutations and exit. */
  list: boolean;
  /** Scratch copies run in parallel. */
  jobs: number;
  /** Seconds before a test run counts as a timeout (killed). */
  timeoutSeconds: number;
}

/** Parse `--filter a,b --list --jobs N --timeout S`. */
export function parseArgs(argv: readonly string[]): MutateArgs {
  const out: MutateArgs = { filters: [], list: false, jobs: 1, timeoutSeconds: 300 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--filter") out.filters.push(...value().split(",").filter((s) => s !== ""));
    else if (a === "--list") out.list = true;
    else if (a === "--jobs") out.jobs = Math.max(1, Number.parseInt(value(), 10) || 1);
    else if (a === "--timeout") out.timeoutSeconds = Math.max(1, Number(value()) || 300);
    else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

/** The mutations whose name contains one of `filters` (all when empty). */
export function selectMutations(
  all: readonly Mutation[],
  filters: readonly string[],
): Mutation[] {
  return all.filter((m) => filters.length === 0 || filters.some((f) => m.name.includes(f)));
}

/** Replace the one occurrence of `old` in `text`; an error string when there is not exactly one. */
export function applyMutation(text: string, m: Mutation): string | { error: string } {
  const first = text.indexOf(m.old);
  if (first < 0) return { error: `old text not found in ${m.file}` };
  if (text.indexOf(m.old, first + 1) >= 0) return { error: `old text found twice in ${m.file}` };
  return text.slice(0, first) + m.new + text.slice(first + m.old.length);
}

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function run(cmd: string, args: string[], cwd: string, timeoutMs?: number) {
  const signal = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal,
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: out.code,
    timedOut: signal?.aborted ?? false,
    output: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

/** Copy the repository's tracked and unignored files into a fresh temp dir. */
async function scratchCopy(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "crabbox-mutate-" });
  const ls = await run(
    "git",
    ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    REPO,
  );
  if (ls.code !== 0) throw new Error(`git ls-files failed: ${ls.output}`);
  for (const rel of ls.output.split("\0").filter((p) => p !== "")) {
    let data: Uint8Array;
    try {
      data = await Deno.readFile(`${REPO}/${rel}`);
    } catch {
      continue; // deleted in the work tree
    }
    const target = `${dir}/${rel}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(target, data);
  }
  try {
    await Deno.symlink(`${REPO}/node_modules`, `${dir}/node_modules`);
  } catch { /* no node_modules yet: deno creates it in the copy */ }
  return dir;
}

function testArgs(tests: readonly string[]): string[] {
  return ["test", "--allow-all", "--no-check", "--fail-fast", ...tests];
}

/** Run one mutation in `dir`; the file is restored afterwards. */
async function runMutation(dir: string, m: Mutation, timeoutMs: number) {
  const path = `${dir}/${m.file}`;
  let original: string;
  try {
    original = await Deno.readTextFile(path);
  } catch {
    return { outcome: "error" as Outcome, detail: `no file ${m.file}`, seconds: 0 };
  }
  const mutated = applyMutation(original, m);
  if (typeof mutated !== "string") {
    return { outcome: "error" as Outcome, detail: mutated.error, seconds: 0 };
  }
  await Deno.writeTextFile(path, mutated);
  const t0 = performance.now();
  try {
    const r = await run(Deno.execPath(), testArgs(m.tests), dir, timeoutMs);
    const seconds = (performance.now() - t0) / 1000;
    if (r.timedOut) return { outcome: "timeout" as Outcome, detail: "", seconds };
    if (r.code === 0) return { outcome: "survived" as Outcome, detail: "", seconds };
    const failed = r.output.split("\n").find((l) => / \.\.\. FAILED/.test(l))?.trim() ?? "";
    return { outcome: "killed" as Outcome, detail: failed, seconds };
  } finally {
    await Deno.writeTextFile(path, original);
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  const selected = selectMutations(MUTATIONS, args.filters);
  if (args.list) {
    for (const m of selected) console.log(`${m.name}\t${m.file}\t${m.tests.join(" ")}`);
    return 0;
  }
  if (selected.length === 0) {
    console.error("mutate: no mutation matches the filter");
    return 2;
  }
  const jobs = Math.min(args.jobs, selected.length);
  const dirs = await Promise.all(Array.from({ length: jobs }, scratchCopy));
  try {
    // Baseline: the unmutated tests must pass, or every "kill" would be meaningless.
    const tests = [...new Set(selected.flatMap((m) => m.tests))].sort();
    console.log(`baseline: ${tests.length} test files, unmutated`);
    const base = await run(Deno.execPath(), testArgs(tests), dirs[0], args.timeoutSeconds * 4000);
    if (base.code !== 0) {
      console.error(base.output.split("\n").slice(-40).join("\n"));
      console.error("mutate: the unmutated tests fail; fix them first");
      return 2;
    }
    const counts: Record<Outcome, number> = { killed: 0, survived: 0, timeout: 0, error: 0 };
    const queue = [...selected];
    const t0 = performance.now();
    await Promise.all(dirs.map(async (dir) => {
      for (let m = queue.shift(); m; m = queue.shift()) {
        const r = await runMutation(dir, m, args.timeoutSeconds * 1000);
        counts[r.outcome]++;
        const detail = r.detail ? `  ${r.detail}` : "";
        console.log(
          `${r.outcome.padEnd(8)} ${r.seconds.toFixed(1).padStart(6)}s  ${m.name}${detail}`,
        );
      }
    }));
    const total = selected.length;
    const caught = counts.killed + counts.timeout;
    console.log(
      `mutation score: ${caught}/${total} killed (${(100 * caught / total).toFixed(1)}%)` +
        `, ${counts.survived} survived, ${counts.error} errors` +
        `, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
    return counts.survived === 0 && counts.error === 0 ? 0 : 1;
  } finally {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
