/**
 * The whole command tree: help, completions and tests take it; a run of one
 * command builds only its own file's part (`command_files.ts`).
 *
 * @module
 */

import { type Command, group } from "./args/command.ts";
import { type CliIo, makeIo } from "./output.ts";
import { PROGRAM, VERSION } from "./version.ts";
import { leaseCommands } from "./lease.ts";
import { lifetimeCommands } from "./lifetime.ts";
import { crewCommand } from "./crew.ts";
import { doctorCommand } from "./doctor.ts";
import { proxyCommand } from "./proxy.ts";
import { completionsCommand } from "./completions.ts";

/**
 * Build the whole command tree writing through `io` (default: the process's
 * stdout and stderr).
 *
 * @example
 * ```ts
 * import { buildProgram } from "./program.ts";
 * buildProgram().commands.map((c) => c.name);
 * ```
 */
export function buildProgram(io: CliIo = makeIo({}, {})): Command {
  return group(PROGRAM.name, PROGRAM.description, [
    ...leaseCommands(io),
    ...lifetimeCommands(io),
    crewCommand(io),
    doctorCommand(io),
    proxyCommand(io),
    completionsCommand(io, () => buildProgram(io)),
  ], VERSION);
}
