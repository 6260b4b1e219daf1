/**
 * Running the real `crabbox` CLI as a subprocess in tests, against a private
 * CRABBOX_HOME.
 *
 * @module
 */

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

/** Output of one CLI run. */
export interface CliResult {
  /** Exit status. */
  code: number;
  /** Captured stdout. */
  stdout: string;
  /** Captured stderr. */
  stderr: string;
}

/** Environment for CLI runs against `home`. */
export function cliEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com", NO_COLOR: "1", ...extra };
}

/**
 * Run `crabbox <args>` and capture its output.
 *
 * @example
 * ```ts
 * import { crabbox } from "./_cli.ts";
 * const r = await crabbox("/tmp/cbx", ["list", "--json"]);
 * ```
 */
export async function crabbox(
  home: string,
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, ...args],
    env: cliEnv(home, extraEnv),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The argv that starts the CLI (for tests that manage the process themselves). */
export function cliArgv(args: string[]): string[] {
  return ["run", "--allow-all", CLI, ...args];
}
