/**
 * Whether `CRABBOX_HOME` can hold crabbox's state: a directory (or not there
 * yet), writable, and a path ssh options can carry (no whitespace or control
 * characters). Checked before anything is written, so a bad home is one line
 * and exit 7 instead of a raw OS error half-way through.
 *
 * @module
 */

import { CrabboxError } from "./errors.ts";
import { joinPath } from "./fs.ts";

/**
 * What is wrong with `home` as a crabbox home (one phrase), or `undefined`
 * when it is usable. A home that does not exist yet is usable (it is created
 * on first write).
 *
 * @example
 * ```ts
 * import { homeProblem } from "./home_check.ts";
 * await homeProblem("/tmp/my home"); // "contains whitespace or control characters …"
 * ```
 */
export function homeProblem(home: string): Promise<string | undefined> {
  // Synchronous calls: three tiny metadata operations on every CLI start-up,
  // where the first asynchronous file write alone costs a few milliseconds.
  return Promise.resolve(homeProblemNow(home));
}

function homeProblemNow(home: string): string | undefined {
  // deno-lint-ignore no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(home)) {
    return "contains whitespace or control characters (ssh options such as UserKnownHostsFile cannot carry it)";
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(home);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    return `cannot be read (${(e as Error).message.split("\n")[0]})`;
  }
  if (!info.isDirectory) return "is not a directory";
  // Unique per call: runs in one process (the CLI in tests, scripts) probe concurrently.
  const probe = joinPath(home, `.write-probe-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`);
  try {
    Deno.writeTextFileSync(probe, "", { mode: 0o600 });
    Deno.removeSync(probe);
  } catch (e) {
    return `is not writable (${(e as Error).message.split("\n")[0].split(":")[0]})`;
  }
  return undefined;
}

/**
 * Throw a state error (exit 7) when `home` cannot hold crabbox's state.
 *
 * @example
 * ```ts
 * import { assertUsableHome } from "./home_check.ts";
 * await assertUsableHome("/tmp/cbx-example");
 * ```
 */
export async function assertUsableHome(home: string): Promise<void> {
  const problem = await homeProblem(home);
  if (problem) {
    throw new CrabboxError("state", "bad_home", `CRABBOX_HOME ${JSON.stringify(home)} ${problem}`, {
      hint: "point CRABBOX_HOME at a writable directory whose path has no spaces",
    });
  }
}
