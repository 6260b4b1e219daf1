/**
 * Start-up and warm-up numbers for the foundation (prints a table; not a test):
 * `crabbox --help` vs an empty `deno run`, and warming up 1 and 5 `local`
 * boxes (5 as parallel CLI processes and as one `leaseCrew` call).
 *
 * ```sh
 * deno run -A bench/startup.ts
 * ```
 *
 * @module
 */

import { leaseCrew } from "../mod.ts";
import { checkLocalPrerequisites } from "../providers/local/mod.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const empty = await Deno.makeTempFile({ suffix: ".ts" });
await Deno.writeTextFile(empty, "");

async function timeCommand(args: string[], env: Record<string, string> = {}): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return performance.now() - start;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function repeat(n: number, f: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  await f(); // warm the module cache
  for (let i = 0; i < n; i++) xs.push(await f());
  return median(xs);
}

const emptyMs = await repeat(10, () => timeCommand(["run", "-A", empty]));
const helpMs = await repeat(10, () => timeCommand(["run", "-A", CLI, "--help"]));
console.log(`deno run (empty file)     ${emptyMs.toFixed(0)} ms`);
console.log(
  `crabbox --help            ${helpMs.toFixed(0)} ms  (${(helpMs / emptyMs).toFixed(2)}× empty, +${
    (helpMs - emptyMs).toFixed(0)
  } ms)`,
);

if (checkLocalPrerequisites().length > 0) {
  console.log("local boxes: skipped (local provider prerequisites missing)");
  Deno.exit(0);
}

const home = await Deno.makeTempDir({ prefix: "cbx-bench-" });
const env = { CRABBOX_HOME: home, CRABBOX_OWNER: "bench@example.com" };
try {
  const one = await timeCommand([
    "run",
    "-A",
    CLI,
    "warmup",
    "--crew",
    "b1",
    "--slug",
    "a",
    "--provider",
    "local",
  ], env);
  console.log(`warmup 1 local box (CLI)  ${one.toFixed(0)} ms`);
  const start = performance.now();
  await Promise.all(
    [1, 2, 3, 4, 5].map((i) =>
      timeCommand([
        "run",
        "-A",
        CLI,
        "warmup",
        "--crew",
        "b5",
        "--slug",
        `w-${i}`,
        "--provider",
        "local",
      ], env)
    ),
  );
  console.log(
    `warmup 5 local boxes (5 parallel CLI processes)  ${(performance.now() - start).toFixed(0)} ms`,
  );
  const t0 = performance.now();
  const crew = await leaseCrew(
    "b5lib",
    [1, 2, 3, 4, 5].map((i) => ({ slug: `w-${i}`, provider: "local" })),
    {
      home,
      concurrency: 5,
    },
  );
  console.log(
    `leaseCrew with 5 local members (library)  ${(performance.now() - t0).toFixed(0)} ms`,
  );
  await crew.release();
} finally {
  for (const c of ["b1", "b5"]) {
    await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "release", "--crew", c],
      env,
      stdout: "null",
      stderr: "null",
    }).output();
  }
  await Deno.remove(home, { recursive: true });
  await Deno.remove(empty);
}
