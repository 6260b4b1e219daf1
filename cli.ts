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

import { Command, CommanderError, type OutputConfiguration } from "@commander-js/extra-typings";
import { leaseCommands } from "./cli/lease.ts";
import { doctorCommand } from "./cli/doctor.ts";
import { crewCommand } from "./cli/crew.ts";
import { lifetimeCommands } from "./cli/lifetime.ts";
import { completionsCommand } from "./cli/completions.ts";
import { proxyCommand } from "./cli/proxy.ts";
import { VERSION } from "./cli/version.ts";
import { type CliIo, type CliStreams, makeIo, reportError, wantsJson } from "./cli/output.ts";
import { CrabboxError } from "./lib/core/mod.ts";
import type { CrabboxOptions } from "./lib/runtime.ts";

/**
 * Build the command tree writing through `io` (default: the process's stdout
 * and stderr; exported for tests and completion generation).
 *
 * @example
 * ```ts
 * import { buildProgram } from "./cli.ts";
 * buildProgram().commands.map((c) => c.name());
 * ```
 */
export function buildProgram(io: CliIo = makeIo({}, {})): Command {
  const output: OutputConfiguration = {
    writeOut: (text: string) => io.writeOut(text),
    writeErr: (text: string) => io.writeErr(text),
    outputError: (text: string, write: (text: string) => void) => {
      const message = text.replace(/^error: /, "").trim();
      if (io.json) io.commanderError = message;
      else write(`crabbox: ${message}\n`);
    },
  };
  const width = io.helpWidth;
  if (width !== undefined) {
    output.getOutHelpWidth = () => width;
    output.getErrHelpWidth = () => width;
  }
  const program = new Command("crabbox")
    .description("lease machines into crews and make them reach each other")
    .version(VERSION, "-V, --version")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput(output);
  for (
    const c of [
      ...leaseCommands(io),
      ...lifetimeCommands(io),
      crewCommand(io),
      doctorCommand(io),
      proxyCommand(io),
      completionsCommand(io, () => buildProgram(io)),
    ]
  ) {
    program.addCommand(withOutput(c, output));
  }
  return program as unknown as Command;
}

/** Route a command's (and its subcommands') output and errors through `output`. */
function withOutput<C extends AnyCommand>(c: C, output: OutputConfiguration): C {
  c.exitOverride().configureOutput(output);
  for (const sub of c.commands) withOutput(sub as AnyCommand, output);
  return c;
}

// deno-lint-ignore no-explicit-any
type AnyCommand = Command<any, any, any>;

/**
 * Commands that only print (help, version, completions), diagnose the home
 * (doctor), or only read it as ssh's ProxyCommand (proxy: it runs with read,
 * env and net permissions only, under an ssh that a checked command started).
 */
const HOMELESS = new Set([
  "doctor",
  "completions",
  "proxy",
  "help",
  "--help",
  "-h",
  "--version",
  "-V",
]);

/** Whether `args` run a command that reads or writes CRABBOX_HOME (checked first: exit 7). */
function needsHome(args: readonly string[]): boolean {
  return args.length > 0 && !HOMELESS.has(args[0]) && !args.includes("--help") &&
    !args.includes("-h");
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
  io.json = wantsJson(args);
  const program = buildProgram(io);
  try {
    if (needsHome(args)) {
      const { assertUsableHome, crabboxHome, processEnv } = await import("./lib/core/mod.ts");
      await assertUsableHome(library.home ?? crabboxHome(library.env ?? processEnv));
    }
    await program.parseAsync(args, { from: "user" });
    return io.status;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "commander.help") return 0;
      if (io.json) {
        const code = e.code.replace(/^commander\./, "").replace(
          /[A-Z]/g,
          (c) => `_${c.toLowerCase()}`,
        );
        return reportError(io, new CrabboxError("usage", code, io.commanderError ?? e.message));
      }
      return 2;
    }
    return reportError(io, e);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
