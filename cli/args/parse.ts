/**
 * Parsing argv against a command tree (pure): the words select a command
 * (`crew connect`), then its options and positional arguments are read.
 *
 * Rules: `--opt value` and `--opt=value` (a value may start with `-`; `--`
 * is never a value); short options `-f value` / `-fvalue`; options and
 * positional arguments may be mixed; `--` ends the options: every word after
 * it is positional, untouched (the remote command of `run`/`ssh`); a
 * repeated value option keeps the last value, a list option collects them
 * all. `-h`/`--help` anywhere before `--` asks for help, `-V`/`--version`
 * right after the program name for the version, and `help [command...]`
 * for a command's help. The first bad word (in argv order) is the error;
 * then missing arguments, extra arguments and missing required options.
 *
 * @example
 * ```ts
 * import { arg, command, flag, group } from "./command.ts";
 * import { parseArgv } from "./parse.ts";
 * const root = group("x", "demo", [command({
 *   name: "hi",
 *   description: "greet",
 *   args: { who: arg("whom") },
 *   options: { loud: flag("--loud", "shout") },
 *   action: () => {},
 * })]);
 * parseArgv(root, ["hi", "bob", "--loud"]);
 * // { kind: "run", path: ["hi"], command: …, flags: { loud: true }, args: { who: "bob" } }
 * ```
 *
 * @module
 */

import type { Command, OptionSpec, RawArgs, RawFlags } from "./command.ts";
import { suggest } from "./suggest.ts";

/** Codes of usage errors (the `code` of the `--json` error object). */
export type UsageCode =
  | "unknown_command"
  | "unknown_option"
  | "option_missing_argument"
  | "unexpected_option_value"
  | "missing_argument"
  | "excess_arguments"
  | "missing_mandatory_option_value";

/** What argv asks for. */
export type ParseResult =
  | {
    /** Run `command`'s action. */
    kind: "run";
    /** Command words after the program name (`["crew", "connect"]`). */
    path: string[];
    /** The selected command. */
    command: Command;
    /** Option values by key (defaults filled in). */
    flags: RawFlags;
    /** Positional values by key. */
    args: RawArgs;
  }
  | {
    /** Print `command`'s help. */
    kind: "help";
    /** Command words after the program name. */
    path: string[];
    /** The command to describe. */
    command: Command;
    /** A group was given without a subcommand: the help goes to stderr as an error. */
    error: boolean;
  }
  | {
    /** Print the version. */
    kind: "version";
  }
  | {
    /** Bad input: one line to print, exit 2. */
    kind: "usage";
    /** Stable machine-readable code. */
    code: UsageCode;
    /** One line (user words JSON-quoted). */
    message: string;
  };

const isHelp = (w: string) => w === "-h" || w === "--help";
const isVersion = (w: string) => w === "-V" || w === "--version";
const q = (w: string) => JSON.stringify(w);

/**
 * Parse `argv` (without the program name) against `root`.
 *
 * @example
 * ```ts
 * import { group } from "./command.ts";
 * import { parseArgv } from "./parse.ts";
 * parseArgv(group("x", "demo", [], "1.0"), ["-V"]); // { kind: "version" }
 * ```
 */
export function parseArgv(root: Command, argv: readonly string[]): ParseResult {
  let cmd = root;
  const path: string[] = [];
  let i = 0;
  while (cmd.commands.length > 0) {
    const word = argv[i];
    if (word === undefined) return { kind: "help", path, command: cmd, error: true };
    if (isHelp(word)) return { kind: "help", path, command: cmd, error: false };
    if (cmd === root && root.version !== undefined && isVersion(word)) return { kind: "version" };
    if (word === "help") return helpFor(root, cmd, path, argv.slice(i + 1));
    const sub = cmd.commands.find((c) => c.name === word);
    if (sub === undefined) {
      return word.startsWith("-") && word.length > 1
        ? unknownOption(root, cmd, path, word)
        : unknownCommand(root, cmd, path, word);
    }
    cmd = sub;
    path.push(word);
    i++;
  }
  const rest = argv.slice(i);
  const r = parseLeaf(root, cmd, path, rest);
  if (r.kind === "usage" && wantsHelp(rest)) {
    return { kind: "help", path, command: cmd, error: false };
  }
  return r;
}

/** Whether `-h`/`--help` is among the words before `--`. */
function wantsHelp(words: readonly string[]): boolean {
  const end = words.indexOf("--");
  return (end === -1 ? words : words.slice(0, end)).some(isHelp);
}

/** The command words for messages (`crew connect`; the program's name for the root). */
function commandName(root: Command, path: readonly string[]): string {
  return path.length === 0 ? root.name : path.join(" ");
}

/** `help [command...]`: the help of the command the words name. */
function helpFor(
  root: Command,
  from: Command,
  path: string[],
  words: readonly string[],
): ParseResult {
  let cmd = from;
  const at = [...path];
  for (const word of words) {
    const sub = cmd.commands.find((c) => c.name === word);
    if (sub === undefined) {
      return cmd.commands.length === 0
        ? usage(
          "excess_arguments",
          `unexpected argument ${q(word)} for ${commandName(root, ["help", ...at])}`,
        )
        : unknownCommand(root, cmd, at, word);
    }
    cmd = sub;
    at.push(word);
  }
  return { kind: "help", path: at, command: cmd, error: false };
}

function usage(code: UsageCode, message: string): ParseResult {
  return { kind: "usage", code, message };
}

function unknownCommand(root: Command, cmd: Command, path: string[], word: string): ParseResult {
  const names = [...cmd.commands.map((c) => c.name), "help"];
  const close = suggest(word, names);
  const where = path.length === 0 ? "" : ` for ${commandName(root, path)}`;
  return usage(
    "unknown_command",
    `unknown command ${q(word)}${where}${close ? ` (did you mean ${close}?)` : ""}`,
  );
}

function unknownOption(root: Command, cmd: Command, path: string[], word: string): ParseResult {
  const longs = cmd.options.filter((o) => !o.hidden).map((o) => o.long);
  if (cmd === root && root.version !== undefined) longs.push("--version");
  longs.push("--help");
  const name = word.split("=")[0];
  const close = name.startsWith("--") ? suggest(name, longs) : undefined;
  return usage(
    "unknown_option",
    `unknown option ${q(word)} for ${commandName(root, path)}${
      close ? ` (did you mean ${close}?)` : ""
    }`,
  );
}

/** The option term as help shows it: `-f, --file <path>`. */
export function optionTerm(o: OptionSpec): string {
  return `${o.short ? `${o.short}, ` : ""}${o.long}${o.valueName ? ` <${o.valueName}>` : ""}`;
}

/** Options and positional arguments of a leaf command. */
function parseLeaf(
  root: Command,
  cmd: Command,
  path: string[],
  words: readonly string[],
): ParseResult {
  const flags: RawFlags = {};
  for (const o of cmd.options) {
    flags[o.key] = o.kind === "negated" ? true : o.kind === "list" ? [] : o.defaultValue;
  }
  const given = new Set<string>();
  const positional: string[] = [];
  const name = commandName(root, path);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w === "--") {
      positional.push(...words.slice(i + 1));
      break;
    }
    if (isHelp(w)) return { kind: "help", path, command: cmd, error: false };
    let o: OptionSpec | undefined;
    let inline: string | undefined;
    if (w.startsWith("--")) {
      const eq = w.indexOf("=");
      const long = eq === -1 ? w : w.slice(0, eq);
      inline = eq === -1 ? undefined : w.slice(eq + 1);
      o = cmd.options.find((x) => x.long === long);
    } else if (w.startsWith("-") && w.length > 1) {
      o = cmd.options.find((x) => x.short !== undefined && w.startsWith(x.short));
      if (o !== undefined && w.length > 2) {
        if (o.kind !== "value" && o.kind !== "list") o = undefined;
        else inline = w.slice(2);
      }
    } else {
      positional.push(w);
      continue;
    }
    if (o === undefined) return unknownOption(root, cmd, path, w);
    given.add(o.key);
    if (o.kind === "flag" || o.kind === "negated") {
      if (inline !== undefined) {
        return usage(
          "unexpected_option_value",
          `${name} ${o.long} takes no value (got ${q(w)})`,
        );
      }
      flags[o.key] = o.kind === "flag";
      continue;
    }
    let v = inline;
    if (v === undefined) {
      const next = words[i + 1];
      if (next === undefined || next === "--") {
        return usage(
          "option_missing_argument",
          `${name} ${o.short ?? o.long} needs a value (${optionTerm(o)})`,
        );
      }
      v = next;
      i++;
    }
    if (o.kind === "list") flags[o.key] = [...(flags[o.key] as string[]), v];
    else flags[o.key] = v;
  }
  const args: RawArgs = {};
  let next = 0;
  for (const a of cmd.args) {
    if (a.kind === "variadic") {
      args[a.key] = positional.slice(next);
      next = positional.length;
    } else if (next < positional.length) {
      args[a.key] = positional[next++];
    } else if (a.kind === "required") {
      return usage("missing_argument", `${name} needs <${a.key}> (${a.description})`);
    } else {
      args[a.key] = undefined;
    }
  }
  if (next < positional.length) {
    return usage("excess_arguments", `unexpected argument ${q(positional[next])} for ${name}`);
  }
  const missing = cmd.options.find((o) => o.required && !given.has(o.key));
  if (missing !== undefined) {
    return usage("missing_mandatory_option_value", `${name} needs ${optionTerm(missing)}`);
  }
  return { kind: "run", path, command: cmd, flags, args };
}
