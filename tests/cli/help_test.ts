import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { VERSION } from "../../cli/version.ts";

// Snapshot tests of what the CLI prints for help and completions. A change to
// the command tree shows up here as a diff; regenerate on purpose with
// CRABBOX_UPDATE_SNAPSHOTS=1 deno test -A tests/cli/help_test.ts
const DIR = new URL("../testdata/cli/", import.meta.url);
const UPDATE = Deno.env.get("CRABBOX_UPDATE_SNAPSHOTS") === "1";

async function matchesSnapshot(name: string, actual: string): Promise<void> {
  const file = new URL(name, DIR);
  if (UPDATE) {
    await Deno.writeTextFile(file, actual);
    return;
  }
  const expected = await Deno.readTextFile(file);
  assert.equal(actual, expected, `${name} differs from its snapshot`);
}

const HELP: Array<[string, string[]]> = [
  ["help.txt", ["--help"]],
  ["warmup.help.txt", ["warmup", "--help"]],
  ["run.help.txt", ["run", "--help"]],
  ["ssh.help.txt", ["ssh", "--help"]],
  ["list.help.txt", ["list", "--help"]],
  ["status.help.txt", ["status", "--help"]],
  ["release.help.txt", ["release", "--help"]],
  ["touch.help.txt", ["touch", "--help"]],
  ["cleanup.help.txt", ["cleanup", "--help"]],
  ["crew.help.txt", ["crew", "--help"]],
  ["crew_connect.help.txt", ["crew", "connect", "--help"]],
  ["crew_up.help.txt", ["crew", "up", "--help"]],
  ["doctor.help.txt", ["doctor", "--help"]],
  ["proxy.help.txt", ["proxy", "--help"]],
  ["completions.help.txt", ["completions", "--help"]],
];

for (const [name, args] of HELP) {
  Deno.test(`crabbox ${args.join(" ")} prints its help on stdout and exits 0`, async () => {
    const world = await cliWorld();
    try {
      const r = await world.run(args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      await matchesSnapshot(name, r.stdout);
    } finally {
      await world.close();
    }
  });
}

for (const shell of ["bash", "zsh"]) {
  Deno.test(`crabbox completions ${shell} matches its snapshot`, async () => {
    const world = await cliWorld();
    try {
      const r = await world.run(["completions", shell]);
      assert.equal(r.code, 0, r.stderr);
      await matchesSnapshot(`completions.${shell}.txt`, r.stdout);
    } finally {
      await world.close();
    }
  });
}

Deno.test("crabbox --version prints the version and exits 0", async () => {
  const world = await cliWorld();
  try {
    const r = await world.run(["--version"]);
    assert.deepEqual(r, { code: 0, stdout: `${VERSION}\n`, stderr: "" });
  } finally {
    await world.close();
  }
});

Deno.test("a missing subcommand prints the group's help on stderr", async () => {
  const world = await cliWorld();
  try {
    const r = await world.run(["crew"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^Usage: crabbox crew \[options\] \[command\]/);
  } finally {
    await world.close();
  }
});

Deno.test("help <command> prints the same as <command> --help", async () => {
  const world = await cliWorld();
  try {
    const a = await world.run(["help", "crew", "connect"]);
    const b = await world.run(["crew", "connect", "--help"]);
    const c = await world.run(["crew", "help", "connect"]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
    assert.equal(c.stdout, b.stdout);
    const top = await world.run(["help"]);
    assert.equal(top.stdout, (await world.run(["--help"])).stdout);
  } finally {
    await world.close();
  }
});

Deno.test("usage errors: one line on stderr naming the word, exit 2", async () => {
  const world = await cliWorld();
  try {
    const cases: Array<[string[], string]> = [
      [["lsit"], 'crabbox: unknown command "lsit" (did you mean list?)\n'],
      [
        ["list", "--jsno"],
        'crabbox: unknown option "--jsno" for list (did you mean --json?)\n',
      ],
      [["crew", "connect"], "crabbox: crew connect needs <name> (crew name)\n"],
      [["list", "--crew"], "crabbox: list --crew needs a value (--crew <name>)\n"],
      [["list", "extra"], 'crabbox: unexpected argument "extra" for list\n'],
      [["crew", "up"], "crabbox: crew up needs -f, --file <path>\n"],
    ];
    for (const [args, stderr] of cases) {
      assert.deepEqual(await world.run(args), { code: 2, stdout: "", stderr }, args.join(" "));
    }
  } finally {
    await world.close();
  }
});
