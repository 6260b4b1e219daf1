import assert from "node:assert/strict";
import type { Command } from "../../cli/args/command.ts";
import { COMMAND_FILES } from "../../cli/command_files.ts";
import { makeIo } from "../../cli/output.ts";
import { buildProgram } from "../../cli/program.ts";

/** A command as data: everything parsing and help read, actions aside. */
function shape(c: Command): unknown {
  return {
    name: c.name,
    description: c.description,
    options: JSON.parse(JSON.stringify(c.options)),
    args: JSON.parse(JSON.stringify(c.args)),
    commands: c.commands.map(shape),
  };
}

Deno.test("COMMAND_FILES builds every top-level command exactly as the whole tree does", async () => {
  const io = makeIo({ stdout: () => {}, stderr: () => {} }, {});
  const whole = buildProgram(io).commands;
  // completions prints the whole tree, so a run of it loads the whole tree
  assert.deepEqual(
    whole.map((c) => c.name).filter((n) => !Object.hasOwn(COMMAND_FILES, n)),
    ["completions"],
  );
  for (const name of Object.keys(COMMAND_FILES)) {
    const light = (await COMMAND_FILES[name]())(io).find((c) => c.name === name);
    const full = whole.find((c) => c.name === name);
    assert.ok(light, `${name}: its file defines it`);
    assert.ok(full, `${name}: the whole tree has it`);
    assert.deepEqual(shape(light), shape(full), name);
  }
});
