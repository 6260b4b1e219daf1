/**
 * Which file defines each top-level command: `cli.ts` imports only that
 * one for a run of the command (the others' definitions are never loaded;
 * `tests/cli/command_files_test.ts` keeps this table equal to the whole
 * tree of `program.ts`).
 *
 * @module
 */

import type { Command } from "./args/command.ts";
import type { CliIo } from "./output.ts";

/** Builds the top-level commands one file defines. */
export type CommandLoader = () => Promise<(io: CliIo) => Command[]>;

const lease: CommandLoader = async () => (await import("./lease.ts")).leaseCommands;
const lifetime: CommandLoader = async () => (await import("./lifetime.ts")).lifetimeCommands;

/** Top-level command name → the loader of the file that defines it. */
export const COMMAND_FILES: Readonly<Record<string, CommandLoader>> = {
  warmup: lease,
  run: lease,
  ssh: lease,
  list: lease,
  status: lease,
  release: lease,
  touch: lifetime,
  cleanup: lifetime,
  crew: async () => {
    const { crewCommand } = await import("./crew.ts");
    return (io) => [crewCommand(io)];
  },
  doctor: async () => {
    const { doctorCommand } = await import("./doctor.ts");
    return (io) => [doctorCommand(io)];
  },
  proxy: async () => {
    const { proxyCommand } = await import("./proxy.ts");
    return (io) => [proxyCommand(io)];
  },
};
