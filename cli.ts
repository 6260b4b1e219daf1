#!/usr/bin/env -S deno run --allow-all
/**
 * The `crabbox` command line. It parses argv, calls toolkit functions and
 * prints; all logic lives in `mod.ts`.
 *
 * @example
 * ```sh
 * deno run -A cli.ts warmup --crew pr-42 --slug api --expose 8080
 * ```
 *
 * @module
 */

import { Command, CommanderError } from "@commander-js/extra-typings";
import { leaseCommands } from "./cli/lease.ts";
import { doctorCommand } from "./cli/doctor.ts";
import { crewCommand } from "./cli/crew.ts";
import { completionsCommand } from "./cli/completions.ts";
import { VERSION } from "./cli/version.ts";
import { currentExitStatus, reportError } from "./cli/output.ts";

/**
 * Build the command tree (exported for tests and completion generation).
 *
 * @example
 * ```ts
 * import { buildProgram } from "./cli.ts";
 * buildProgram().commands.map((c) => c.name());
 * ```
 */
export function buildProgram(): Command {
  const program = new Command("crabbox")
    .description("lease machines into crews and make them reach each other")
    .version(VERSION, "-V, --version")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      outputError: (text, write) => write(`crabbox: ${text.replace(/^error: /, "").trim()}\n`),
    });
  for (
    const c of [
      ...leaseCommands(),
      crewCommand(),
      doctorCommand(),
      completionsCommand(buildProgram),
    ]
  ) {
    program.addCommand(
      c.exitOverride().configureOutput({
        outputError: (text, write) => write(`crabbox: ${text.replace(/^error: /, "").trim()}\n`),
      }),
    );
  }
  return program as unknown as Command;
}

/**
 * Run the CLI with `args` (without the program name) and return the exit
 * status instead of exiting.
 */
export async function main(args: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return currentExitStatus();
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "commander.help") return 0;
      return 2;
    }
    return reportError(e);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
