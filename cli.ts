#!/usr/bin/env -S deno run --allow-all
/**
 * The `crabbox` command line. It parses argv, calls the library (`lib/`
 * through `mod.ts` and the area modules) and prints; `main` runs it in
 * process with the given streams and options and returns the exit status.
 *
 * @example
 * ```sh
 * deno run -A cli.ts warmup --crew pr-42 --slug api --expose 8080
 * ```
 *
 * @module
 */

import { type Command, group } from "./cli/args/command.ts";
import { parseArgv } from "./cli/args/parse.ts";
import { renderHelp } from "./cli/args/help.ts";
import { COMMAND_FILES } from "./cli/command_files.ts";
import { PROGRAM, VERSION } from "./cli/version.ts";
import { type CliIo, type CliStreams, makeIo, reportError, wantsJson } from "./cli/output.ts";
import { CrabboxError } from "./lib/core/errors.ts";
import type { CrabboxOptions } from "./lib/runtime.ts";

/**
 * The command tree a run of `args` needs: when the first word names a
 * top-level command, only the commands its file defines (argv's first word
 * is always the command: the root takes no options but help and version);
 * otherwise (help, version, completions, a typo) the whole tree.
 */
async function programFor(args: readonly string[], io: CliIo): Promise<Command> {
  const word = args[0];
  if (word !== undefined && Object.hasOwn(COMMAND_FILES, word)) {
    const build = await COMMAND_FILES[word]();
    return group(PROGRAM.name, PROGRAM.description, build(io), VERSION);
  }
  const { buildProgram } = await import("./cli/program.ts");
  return buildProgram(io);
}

/**
 * Commands that only print (completions), diagnose the home (doctor), or
 * only read it as ssh's ProxyCommand (proxy: it runs with read, env and net
 * permissions only, under an ssh that a checked command started). Help and
 * version never reach the home either.
 */
const HOMELESS = new Set(["doctor", "completions", "proxy"]);

/** Help text width: the given streams' (80), else the terminal's, else 80. */
function helpWidth(io: CliIo): number {
  if (io.helpWidth !== undefined) return io.helpWidth;
  try {
    if (Deno.stdout.isTerminal()) return Deno.consoleSize().columns;
  } catch { /* not a terminal after all */ }
  return 80;
}

/** Options of {@link main}: where to write, plus the options for every library call. */
export type MainOptions = CliStreams & CrabboxOptions;

/**
 * Run the CLI with `args` (without the program name) in this process and
 * return the exit status instead of exiting: 0 ok, 2 bad input (one line on
 * stderr), the error's status otherwise (see README's table).
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * let out = "";
 * const status = await main(["--version"], { stdout: (t) => out += t, stderr: () => {} });
 * // status === 0, out === "<version>\n"
 * ```
 */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  const { stdout, stderr, ...library } = options;
  const io = makeIo({ stdout, stderr }, library);
  io.timing.lap("boot");
  io.json = wantsJson(args);
  const program = await programFor(args, io);
  const parsed = parseArgv(program, args);
  switch (parsed.kind) {
    case "version":
      io.writeOut(`${VERSION}\n`);
      return 0;
    case "help": {
      const text = renderHelp(program, parsed.path, parsed.command, helpWidth(io));
      if (!parsed.error) {
        io.writeOut(text);
        return 0;
      }
      // A group without its subcommand: its help is the error message.
      io.writeErr(text);
      return 2;
    }
    case "usage":
      return reportError(io, new CrabboxError("usage", parsed.code, parsed.message));
  }
  try {
    if (!HOMELESS.has(parsed.path[0])) {
      const { assertUsableHome } = await import("./lib/core/home_check.ts");
      const { crabboxHome, processEnv } = await import("./lib/core/fs.ts");
      await assertUsableHome(library.home ?? crabboxHome(library.env ?? processEnv));
    }
    io.timing.lap("cli");
    await parsed.command.action!(parsed.flags, parsed.args);
    if (io.status === 0 && !HOMELESS.has(parsed.path[0]) && library.config === undefined) {
      // Keep the parsed config.yaml for the next start-up (only after a success:
      // a refused command writes nothing).
      const { crabboxHome, processEnv } = await import("./lib/core/fs.ts");
      const { rememberConfig } = await import("./lib/core/config.ts");
      const { providerConfigSchemas } = await import("./providers/registry.ts");
      await rememberConfig(
        library.home ?? crabboxHome(library.env ?? processEnv),
        providerConfigSchemas(),
      );
    }
    return io.status;
  } catch (e) {
    return reportError(io, e);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
