/**
 * The help text of a command (pure): usage line, description, then the
 * arguments, options and subcommands in aligned columns, descriptions
 * word-wrapped to the width.
 *
 * @module
 */

import type { ArgSpec, Command } from "./command.ts";
import { optionTerm } from "./parse.ts";

/** Narrowest description column that is still wrapped (narrower: one long line). */
const MIN_WRAP_COLUMN = 40;

/** `<name>`, `[id]` or `[command...]`. */
function argTerm(a: ArgSpec): string {
  return a.kind === "required"
    ? `<${a.key}>`
    : a.kind === "optional"
    ? `[${a.key}]`
    : `[${a.key}...]`;
}

/** A subcommand as its parent lists it: `connect [options] <name>`. */
function commandTerm(c: Command): string {
  const options = c.options.some((o) => !o.hidden) ? " [options]" : "";
  const args = c.args.map(argTerm).join(" ");
  return `${c.name}${options}${args ? ` ${args}` : ""}`;
}

/**
 * Split `text` into lines of at most `width` characters at spaces (a word
 * longer than the width gets a line of its own).
 *
 * @example
 * ```ts
 * import { wrapWords } from "./help.ts";
 * wrapWords("one two three", 7); // ["one two", "three"]
 * ```
 */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line === "") line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/**
 * The help of `command`, reached by `path` from the root `program` (whose
 * name starts the usage line), for a terminal `width` columns wide.
 *
 * @example
 * ```ts
 * import { command, flag, group } from "./command.ts";
 * import { renderHelp } from "./help.ts";
 * const hi = command({ name: "hi", description: "greet", options: { loud: flag("--loud", "shout") }, action: () => {} });
 * renderHelp(group("x", "demo", [hi]), ["hi"], hi, 80).split("\n")[0]; // "Usage: x hi [options]"
 * ```
 */
export function renderHelp(
  program: Command,
  path: readonly string[],
  command: Command,
  width: number,
): string {
  const isGroup = command.commands.length > 0;
  const usageTail = isGroup ? " [command]" : command.args.map((a) => ` ${argTerm(a)}`).join("");
  const usage = `Usage: ${[program.name, ...path].join(" ")} [options]${usageTail}`;

  const argumentRows = command.args.map((a) => [a.key, a.description]);
  const optionRows = command.options.filter((o) => !o.hidden).map((o) => [
    optionTerm(o),
    o.defaultValue === undefined
      ? o.description
      : `${o.description} (default: ${JSON.stringify(o.defaultValue)})`,
  ]);
  if (command === program && program.version !== undefined) {
    optionRows.push(["-V, --version", "output the version number"]);
  }
  optionRows.push(["-h, --help", "display help for command"]);
  const commandRows = isGroup
    ? [
      ...command.commands.map((c) => [commandTerm(c), c.description]),
      ["help [command]", "display help for command"],
    ]
    : [];

  const pad = Math.max(...[...argumentRows, ...optionRows, ...commandRows].map((r) => r[0].length));
  const column = width - pad - 4;
  const item = ([term, description]: string[]) => {
    const lines = column < MIN_WRAP_COLUMN ? [description] : wrapWords(description, column);
    return [
      `  ${term.padEnd(pad)}  ${lines[0] ?? ""}`.trimEnd(),
      ...lines.slice(1).map((l) => `${" ".repeat(pad + 4)}${l}`),
    ]
      .join("\n");
  };
  const section = (title: string, rows: string[][]) =>
    rows.length === 0 ? [] : [`${title}:\n${rows.map(item).join("\n")}`];
  return [
    usage,
    ...(command.description ? [wrapWords(command.description, width).join("\n")] : []),
    ...section("Arguments", argumentRows),
    ...section("Options", optionRows),
    ...section("Commands", commandRows),
  ].join("\n\n") + "\n";
}
