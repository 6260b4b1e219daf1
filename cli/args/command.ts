/**
 * The command tree of the CLI as plain data: commands with options,
 * positional arguments, subcommands and an action. Commands are declared
 * with {@link command} / {@link group} and the option and argument
 * constructors below; the action's `flags` and `args` are typed from the
 * declaration. Parsing is in `parse.ts`, help text in `help.ts`.
 *
 * @example
 * ```ts
 * import { arg, command, flag, value } from "./command.ts";
 * const peers = command({
 *   name: "peers",
 *   description: "list members",
 *   args: { name: arg("crew name") },
 *   options: { provider: value("--provider <name>", "only this provider"), json: flag("--json", "print JSON") },
 *   action: (flags, args) => console.log(args.name, flags.provider, flags.json),
 * });
 * ```
 *
 * @module
 */

/** How an option takes its value. */
export type OptionKind = "flag" | "negated" | "value" | "list";

/** One option of a command. `T` is the type the action sees. */
export interface OptionSpec<T = unknown> {
  /** Key in the action's `flags` (camelCase of the long name, without `no-`). */
  key: string;
  /** Long name with dashes, e.g. `--crew` or `--no-wait`. */
  long: string;
  /** Short name with its dash, e.g. `-f`. */
  short?: string;
  /** Name of the value shown in help (`name` of `--crew <name>`). */
  valueName?: string;
  /** `flag`: true when given; `negated` (`--no-x`): false when given, else true; `value`: the next word; `list`: every value, repeatable. */
  kind: OptionKind;
  /** Help text. */
  description: string;
  /** Left out of help and completions (aliases kept for old scripts). */
  hidden: boolean;
  /** The option must be given. */
  required: boolean;
  /** Value when the option is absent. */
  defaultValue?: string;
  /** Phantom: the type the action sees (never set). */
  readonly type?: T;
}

/** How a positional argument binds words. */
export type ArgKind = "required" | "optional" | "variadic";

/** One positional argument. `T` is the type the action sees. */
export interface ArgSpec<T = unknown> {
  /** Key in the action's `args` and name in help. */
  key: string;
  /** `<x>` must be there, `[x]` may be, `[x...]` takes every remaining word. */
  kind: ArgKind;
  /** Help text. */
  description: string;
  /** Phantom: the type the action sees (never set). */
  readonly type?: T;
}

/** Options of a command declaration, by key. */
export type OptionMap = Record<string, OptionSpec>;
/** Positional arguments of a command declaration, by key, in order. */
export type ArgMap = Record<string, ArgSpec>;

/** The values an action receives for a map of option or argument specs. */
export type ValuesOf<M> = { [K in keyof M]: M[K] extends { type?: infer T } ? T : never };

/** Parsed option values as the parser produces them (before typing). */
export type RawFlags = Record<string, string | boolean | string[] | undefined>;
/** Parsed positional values as the parser produces them (before typing). */
export type RawArgs = Record<string, string | string[] | undefined>;

/** A node of the command tree. */
export interface Command {
  /** The word that selects it. */
  name: string;
  /** One-line help text. */
  description: string;
  /** Options in help order (help and version are implicit, not listed). */
  options: OptionSpec[];
  /** Positional arguments in order. */
  args: ArgSpec[];
  /** Subcommands (a group has these and no action). */
  commands: Command[];
  /** What runs for it; absent on a group. */
  action?: (flags: RawFlags, args: RawArgs) => void | Promise<void>;
  /** The program's version: the root answers `-V`/`--version` with it. */
  version?: string;
}

/** A leaf command declaration; `flags` and `args` of the action are typed from it. */
export interface CommandDeclaration<O extends OptionMap, A extends ArgMap> {
  /** The word that selects it. */
  name: string;
  /** One-line help text. */
  description: string;
  /** Options in help order, by key. */
  options?: O;
  /** Positional arguments in order, by key. */
  args?: A;
  /** What runs for it. */
  action: (flags: ValuesOf<O>, args: ValuesOf<A>) => void | Promise<void>;
}

/** camelCase of a dashed name: `wait-timeout` → `waitTimeout`. */
function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * A leaf command. Throws (a programming error, caught by any test that
 * builds the tree) when an option's key does not match its long name or a
 * positional argument follows a variadic or optional one wrongly.
 */
export function command<
  O extends OptionMap = Record<never, never>,
  A extends ArgMap = Record<never, never>,
>(
  d: CommandDeclaration<O, A>,
): Command {
  const options = Object.entries(d.options ?? {}).map(([key, o]) => {
    const name = o.long.slice(2);
    const expected = camel(o.kind === "negated" ? name.replace(/^no-/, "") : name);
    if (key !== expected) {
      throw new Error(`option ${o.long} of ${d.name} must have key ${expected}`);
    }
    return { ...o, key };
  });
  const args = Object.entries(d.args ?? {}).map(([key, a]) => ({ ...a, key }));
  args.forEach((a, i) => {
    const later = args.slice(i + 1);
    if (a.kind === "variadic" && later.length > 0) {
      throw new Error(`${d.name}: variadic argument ${a.key} must be last`);
    }
    if (a.kind === "optional" && later.some((b) => b.kind === "required")) {
      throw new Error(`${d.name}: required argument after optional ${a.key}`);
    }
  });
  return {
    name: d.name,
    description: d.description,
    options,
    args,
    commands: [],
    action: d.action as unknown as Command["action"],
  };
}

/** A command that only groups subcommands (`crew`; the root, with its `version`). */
export function group(
  name: string,
  description: string,
  commands: Command[],
  version?: string,
): Command {
  return { name, description, options: [], args: [], commands, version };
}

/** Split `--crew <name>` / `-f, --file <path>` into its parts. */
function parseFlags(flags: string): { long: string; short?: string; valueName?: string } {
  const m = /^(?:(-[A-Za-z]), )?(--[a-z][a-z0-9-]*)(?: <([a-z-]+)>)?$/.exec(flags);
  if (!m) throw new Error(`bad option flags ${JSON.stringify(flags)}`);
  return { short: m[1], long: m[2], valueName: m[3] };
}

function spec<T>(
  flags: string,
  kind: OptionKind,
  description: string,
  extra: { hidden?: boolean; required?: boolean; default?: string } = {},
): OptionSpec<T> {
  const p = parseFlags(flags);
  const takesValue = kind === "value" || kind === "list";
  if (takesValue !== (p.valueName !== undefined)) {
    throw new Error(`option ${flags}: ${takesValue ? "needs" : "takes no"} <value>`);
  }
  if (kind === "negated" && !p.long.startsWith("--no-")) {
    throw new Error(`negatable option ${flags} must start with --no-`);
  }
  return {
    key: "",
    ...p,
    kind,
    description,
    hidden: extra.hidden ?? false,
    required: extra.required ?? false,
    defaultValue: extra.default,
  };
}

/** A boolean option: `true` when given, `undefined` when not (`--no-x` is {@link negatable}). */
export function flag(flags: string, description: string): OptionSpec<boolean | undefined> {
  if (flags.startsWith("--no-")) throw new Error(`${flags}: use negatable()`);
  return spec(flags, "flag", description);
}

/** `--no-x`: the action's `x` is `false` when given, `true` when not. */
export function negatable(flags: string, description: string): OptionSpec<boolean> {
  return spec(flags, "negated", description);
}

/** An option with a value (`--crew <name>`); the last one given wins. */
export function value(
  flags: string,
  description: string,
  extra: { default: string; hidden?: boolean },
): OptionSpec<string>;
/** An option with a value (`--crew <name>`); the last one given wins. */
export function value(
  flags: string,
  description: string,
  extra?: { hidden?: boolean },
): OptionSpec<string | undefined>;
export function value(
  flags: string,
  description: string,
  extra: { default?: string; hidden?: boolean } = {},
): OptionSpec<string | undefined> {
  return spec(flags, "value", description, extra);
}

/** An option with a value that must be given (`-f, --file <path>`). */
export function requiredValue(flags: string, description: string): OptionSpec<string> {
  return spec(flags, "value", description, { required: true });
}

/** A repeatable option collecting every value in order (`--expose 80 --expose 443`); `[]` when absent. */
export function list(flags: string, description: string): OptionSpec<string[]> {
  return spec(flags, "list", description);
}

/** A required positional argument (`<key>` in help). */
export function arg(description: string): ArgSpec<string> {
  return { key: "", kind: "required", description };
}

/** An optional positional argument (`[key]` in help). */
export function optionalArg(description: string): ArgSpec<string | undefined> {
  return { key: "", kind: "optional", description };
}

/** Every remaining word (`[key...]` in help; words after `--` included, untouched). */
export function restArgs(description: string): ArgSpec<string[]> {
  return { key: "", kind: "variadic", description };
}
