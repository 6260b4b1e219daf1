/**
 * The one place that starts processes. Everything that runs a program (ssh,
 * ssh-keygen, git, ip, setsid, sh) goes through a {@link ProcessRunner}; the
 * default runs real programs, and tests pass a fake one through the options
 * bag (`{ process }`) to answer in-process.
 *
 * @module
 */

/** How to run a program: its arguments and stdio (the `Deno.Command` options). */
export type CommandOptions = Deno.CommandOptions;

/** The output of a finished program (the `Deno.Command` output). */
export type CommandOutput = Deno.CommandOutput;

/** A started program (the `Deno.Command` child). */
export type ChildProcess = Deno.ChildProcess;

/** Starts programs; injectable so tests can register fake ones. */
export interface ProcessRunner {
  /** Run `program` to completion and collect its output. */
  output(program: string, options: CommandOptions): Promise<CommandOutput>;
  /** Start `program` and return the running child. */
  spawn(program: string, options: CommandOptions): ChildProcess;
}

/**
 * The runner that starts real programs.
 *
 * @example
 * ```ts
 * import { systemProcess } from "./run.ts";
 * const out = await systemProcess.output("true", { stdout: "null", stderr: "null" });
 * out.success; // true
 * ```
 */
export const systemProcess: ProcessRunner = {
  output: (program, options) => new Deno.Command(program, options).output(),
  spawn: (program, options) => new Deno.Command(program, options).spawn(),
};

/**
 * Run a program to completion with `runner` (default: real programs).
 *
 * @example
 * ```ts
 * import { output } from "./run.ts";
 * const out = await output("echo", { args: ["hi"], stdout: "piped" });
 * new TextDecoder().decode(out.stdout); // "hi\n"
 * ```
 */
export function output(
  program: string,
  options: CommandOptions,
  runner: ProcessRunner = systemProcess,
): Promise<CommandOutput> {
  return runner.output(program, options);
}

/** Start a program with `runner` (default: real programs). */
export function spawn(
  program: string,
  options: CommandOptions,
  runner: ProcessRunner = systemProcess,
): ChildProcess {
  return runner.spawn(program, options);
}

/**
 * Start `argv` fully detached (`setsid -f`: its own session, not our child,
 * stdio to `logFile`) so it outlives this process; resolves its pid. Throws
 * an `Error` with setsid's stderr when it could not be started.
 *
 * @example
 * ```ts
 * import { spawnDetached } from "./run.ts";
 * const pid = await spawnDetached(["sleep", "60"], "/tmp/sleep.log");
 * Deno.kill(pid, "SIGTERM");
 * ```
 */
export async function spawnDetached(
  argv: readonly string[],
  logFile: string,
  runner: ProcessRunner = systemProcess,
): Promise<number> {
  const script = 'log=$1; shift; echo "$$"; exec "$@" >>"$log" 2>&1 </dev/null';
  const out = await runner.output("setsid", {
    args: ["-f", "sh", "-c", script, "sh", logFile, ...argv],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const pid = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || !Number.isInteger(pid) || pid <= 0) {
    throw new Error(new TextDecoder().decode(out.stderr).trim());
  }
  return pid;
}
