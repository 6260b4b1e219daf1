import assert from "node:assert/strict";
import {
  arg,
  command,
  flag,
  group,
  list,
  negatable,
  optionalArg,
  requiredValue,
  restArgs,
  value,
} from "../../cli/args/command.ts";
import { parseArgv, type ParseResult } from "../../cli/args/parse.ts";
import { renderHelp, wrapWords } from "../../cli/args/help.ts";
import { editDistance, suggest } from "../../cli/args/suggest.ts";

// A small tree with every kind of option and argument the CLI uses.
const noop = () => {};
const run = command({
  name: "run",
  description: "run a command",
  options: {
    id: value("--id <id>", "lease id"),
    expose: list("--expose <ports>", "ports; repeatable"),
    json: flag("--json", "print JSON"),
    wait: negatable("--no-wait", "do not wait"),
    userData: value("--user-data <file>", "alias", { hidden: true }),
  },
  args: { command: restArgs("the remote command") },
  action: noop,
});
const touch = command({
  name: "touch",
  description: "touch",
  args: { id: optionalArg("lease id") },
  options: { ttl: value("--ttl <duration>", "lifetime") },
  action: noop,
});
const connect = command({
  name: "connect",
  description: "connect a crew",
  args: { name: arg("crew name") },
  options: {
    json: flag("--json", "print JSON"),
    port: value("--port <port>", "port", { default: "22" }),
  },
  action: noop,
});
const up = command({
  name: "up",
  description: "bring a crew up",
  options: { file: requiredValue("-f, --file <path>", "crew file"), json: flag("--json", "JSON") },
  action: noop,
});
const root = group("crabbox", "demo", [run, touch, group("crew", "crews", [connect, up])], "1.2.3");

function ran(r: ParseResult) {
  assert.equal(r.kind, "run", JSON.stringify(r));
  if (r.kind !== "run") throw new Error("unreachable");
  return { path: r.path, flags: r.flags, args: r.args };
}

function usage(r: ParseResult) {
  assert.equal(r.kind, "usage", JSON.stringify(r));
  if (r.kind !== "usage") throw new Error("unreachable");
  return { code: r.code, message: r.message };
}

Deno.test("parse: --opt value and --opt=value give the same; defaults are filled in", () => {
  const a = ran(parseArgv(root, ["crew", "connect", "x", "--port", "2222"]));
  const b = ran(parseArgv(root, ["crew", "connect", "--port=2222", "x"]));
  assert.deepEqual(a, b);
  assert.deepEqual(a, {
    path: ["crew", "connect"],
    flags: { json: undefined, port: "2222" },
    args: { name: "x" },
  });
  assert.deepEqual(ran(parseArgv(root, ["crew", "connect", "x"])).flags, {
    json: undefined,
    port: "22",
  });
  assert.equal(ran(parseArgv(root, ["crew", "connect", "x", "--port="])).flags.port, "");
});

Deno.test("parse: a value may start with - (it is taken as the value, not an option)", () => {
  const r = ran(parseArgv(root, ["run", "--id", "-oProxyCommand=x", "--", "true"]));
  assert.equal(r.flags.id, "-oProxyCommand=x");
  assert.equal(ran(parseArgv(root, ["run", "--id", "--json"])).flags.id, "--json");
});

Deno.test("parse: -- ends options; every later word reaches the command untouched", () => {
  const words = ["printf", "--bogus", "--json", "-h", "--help", "--", "-n", ""];
  const r = ran(parseArgv(root, ["run", "--id", "a", "--", ...words]));
  assert.deepEqual(r.args, { command: words });
  assert.equal(r.flags.json, undefined, "--json after -- is the remote command's");
  // Positionals before -- join the ones after it.
  assert.deepEqual(ran(parseArgv(root, ["run", "echo", "--", "-x"])).args, {
    command: ["echo", "-x"],
  });
  // -- is never an option's value.
  assert.deepEqual(usage(parseArgv(root, ["run", "--id", "--", "true"])), {
    code: "option_missing_argument",
    message: "run --id needs a value (--id <id>)",
  });
});

Deno.test("parse: a list option collects every value in order; [] when absent", () => {
  const r = ran(parseArgv(root, ["run", "--expose", "80", "--expose=443,8080", "--expose", "-1"]));
  assert.deepEqual(r.flags.expose, ["80", "443,8080", "-1"]);
  assert.deepEqual(ran(parseArgv(root, ["run"])).flags.expose, []);
});

Deno.test("parse: --no-wait sets wait false; absent it is true; a repeated value keeps the last", () => {
  assert.equal(ran(parseArgv(root, ["run", "--no-wait"])).flags.wait, false);
  assert.equal(ran(parseArgv(root, ["run"])).flags.wait, true);
  assert.equal(ran(parseArgv(root, ["run", "--id", "a", "--id", "b"])).flags.id, "b");
  assert.deepEqual(usage(parseArgv(root, ["run", "--wait"])).code, "unknown_option");
});

Deno.test("parse: hidden aliases parse but are not suggested", () => {
  assert.equal(ran(parseArgv(root, ["run", "--user-data", "f"])).flags.userData, "f");
  assert.deepEqual(usage(parseArgv(root, ["run", "--user-dat", "f"])), {
    code: "unknown_option",
    message: 'unknown option "--user-dat" for run',
  });
});

Deno.test("parse: short options take -f value and -fvalue; required options are enforced", () => {
  assert.equal(ran(parseArgv(root, ["crew", "up", "-f", "c.yaml"])).flags.file, "c.yaml");
  assert.equal(ran(parseArgv(root, ["crew", "up", "-fc.yaml"])).flags.file, "c.yaml");
  assert.equal(ran(parseArgv(root, ["crew", "up", "--file=c.yaml"])).flags.file, "c.yaml");
  assert.deepEqual(usage(parseArgv(root, ["crew", "up", "--json"])), {
    code: "missing_mandatory_option_value",
    message: "crew up needs -f, --file <path>",
  });
  assert.deepEqual(usage(parseArgv(root, ["crew", "up", "-f"])), {
    code: "option_missing_argument",
    message: "crew up -f needs a value (-f, --file <path>)",
  });
  assert.equal(usage(parseArgv(root, ["crew", "up", "-x"])).code, "unknown_option");
});

Deno.test("parse: positional arguments: required, optional, excess", () => {
  assert.deepEqual(ran(parseArgv(root, ["touch"])).args, { id: undefined });
  assert.deepEqual(ran(parseArgv(root, ["touch", "cbx-1", "--ttl", "1h"])).args, { id: "cbx-1" });
  assert.deepEqual(usage(parseArgv(root, ["touch", "a", "b"])), {
    code: "excess_arguments",
    message: 'unexpected argument "b" for touch',
  });
  assert.deepEqual(usage(parseArgv(root, ["crew", "connect", "--json"])), {
    code: "missing_argument",
    message: "crew connect needs <name> (crew name)",
  });
  // "-" alone is a word, not an option.
  assert.deepEqual(ran(parseArgv(root, ["touch", "-"])).args, { id: "-" });
});

Deno.test("parse: flags take no value", () => {
  assert.deepEqual(usage(parseArgv(root, ["run", "--json=yes"])), {
    code: "unexpected_option_value",
    message: 'run --json takes no value (got "--json=yes")',
  });
});

Deno.test("parse: unknown commands and options say so in one line, with a suggestion", () => {
  assert.deepEqual(usage(parseArgv(root, ["rnu"])), {
    code: "unknown_command",
    message: 'unknown command "rnu" (did you mean run?)',
  });
  assert.deepEqual(usage(parseArgv(root, ["crew", "conect", "x"])), {
    code: "unknown_command",
    message: 'unknown command "conect" for crew (did you mean connect?)',
  });
  assert.deepEqual(usage(parseArgv(root, ["zzzzzz"])), {
    code: "unknown_command",
    message: 'unknown command "zzzzzz"',
  });
  assert.deepEqual(usage(parseArgv(root, ["run", "--jsno"])), {
    code: "unknown_option",
    message: 'unknown option "--jsno" for run (did you mean --json?)',
  });
  assert.deepEqual(usage(parseArgv(root, ["--verison"])), {
    code: "unknown_option",
    message: 'unknown option "--verison" for crabbox (did you mean --version?)',
  });
  // A user word with a newline stays on one line.
  assert.doesNotMatch(usage(parseArgv(root, ["run", "--a\nb"])).message, /\n/);
});

Deno.test("parse: with several mistakes the first bad word is reported, then missing pieces", () => {
  // unknown option before the missing <name>
  assert.equal(usage(parseArgv(root, ["crew", "connect", "--bogus"])).code, "unknown_option");
  // a missing value at the end beats the missing argument
  assert.equal(
    usage(parseArgv(root, ["crew", "connect", "--port"])).code,
    "option_missing_argument",
  );
  // missing argument before a missing required option (different commands' rules agree)
  assert.equal(usage(parseArgv(root, ["touch", "a", "b", "--bogus"])).code, "unknown_option");
  assert.equal(
    usage(parseArgv(root, ["touch", "a", "b", "--ttl"])).code,
    "option_missing_argument",
  );
});

Deno.test("parse: help and version", () => {
  const help = (argv: string[]) => {
    const r = parseArgv(root, argv);
    assert.equal(r.kind, "help", JSON.stringify(r));
    if (r.kind !== "help") throw new Error("unreachable");
    return { path: r.path, name: r.command.name, error: r.error };
  };
  assert.deepEqual(help(["--help"]), { path: [], name: "crabbox", error: false });
  assert.deepEqual(help(["-h"]), { path: [], name: "crabbox", error: false });
  assert.deepEqual(help([]), { path: [], name: "crabbox", error: true });
  assert.deepEqual(help(["crew"]), { path: ["crew"], name: "crew", error: true });
  assert.deepEqual(help(["crew", "connect", "--help"]), {
    path: ["crew", "connect"],
    name: "connect",
    error: false,
  });
  assert.deepEqual(help(["crew", "--help", "connect"]).path, ["crew"]);
  assert.deepEqual(help(["help"]).path, []);
  assert.deepEqual(help(["help", "crew", "connect"]).path, ["crew", "connect"]);
  assert.deepEqual(help(["crew", "help", "up"]).path, ["crew", "up"]);
  // --help wins over a bad word before it; after -- it is the remote command's.
  assert.deepEqual(help(["run", "--bogus", "--help"]).path, ["run"]);
  assert.deepEqual(help(["crew", "connect", "-h"]).path, ["crew", "connect"]);
  assert.equal(ran(parseArgv(root, ["run", "--", "--help"])).args.command?.[0], "--help");
  assert.equal(usage(parseArgv(root, ["help", "bogus"])).code, "unknown_command");
  assert.equal(usage(parseArgv(root, ["help", "run", "x"])).code, "excess_arguments");
  assert.deepEqual(parseArgv(root, ["--version"]), { kind: "version" });
  assert.deepEqual(parseArgv(root, ["-V"]), { kind: "version" });
  assert.equal(usage(parseArgv(root, ["run", "--version"])).code, "unknown_option");
});

Deno.test("command(): option keys must match their long names", () => {
  assert.throws(
    () =>
      command({ name: "x", description: "", options: { foo: flag("--bar", "") }, action: noop }),
    /must have key bar/,
  );
  assert.throws(() => flag("--no-x", ""), /negatable/);
  assert.throws(() => value("--x", ""), /needs <value>/);
  assert.throws(
    () =>
      command({
        name: "x",
        description: "",
        args: { a: restArgs(""), b: arg("") },
        action: noop,
      }),
    /must be last/,
  );
});

Deno.test("help: columns aligned across sections, descriptions wrapped to the width", () => {
  const text = renderHelp(root, ["crew", "connect"], connect, 50);
  assert.equal(
    text,
    [
      "Usage: crabbox crew connect [options] <name>",
      "",
      "connect a crew",
      "",
      "Arguments:",
      "  name           crew name",
      "",
      "Options:",
      "  --json         print JSON",
      '  --port <port>  port (default: "22")',
      "  -h, --help     display help for command",
      "",
    ].join("\n"),
  );
  const top = renderHelp(root, [], root, 80);
  assert.match(top, /^Usage: crabbox \[options\] \[command\]\n/);
  assert.match(top, /\n {2}-V, --version {15}output the version number\n/);
  assert.match(top, /\n {2}run \[options\] \[command\.\.\.\] {2}run a command\n/);
  assert.match(top, /\n {2}crew {24}crews\n/);
  assert.match(top, /\n {2}help \[command\] {14}display help for command\n$/);
  assert.doesNotMatch(renderHelp(root, ["run"], run, 80), /user-data/);
  assert.deepEqual(wrapWords("one two three", 7), ["one two", "three"]);
  assert.deepEqual(wrapWords("unbreakable", 4), ["unbreakable"]);
});

Deno.test("suggest: close typos only", () => {
  assert.equal(editDistance("lsit", "list"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(suggest("lsit", ["list", "status"]), "list");
  assert.equal(suggest("stauts", ["list", "status"]), "status");
  assert.equal(suggest("--jsno", ["--json", "--crew"]), "--json");
  assert.equal(suggest("x", ["list"]), undefined);
});
