import assert from "node:assert/strict";
import { writeStaticCrewHome } from "../fakes/static_crew.ts";

// What the CLI loads at start-up (structure, not time: bench/startup.ts
// measures time). `--help`, `list` and `crew connect --json` must not start
// Deno's Node-compatibility layer: no npm package, no `node:` module (the
// YAML parser is one: with a config.yaml it loads only until the parsed
// config is cached). The module list comes from the loader's debug log of a
// real `deno run`.
const CLI = new URL("../../cli.ts", import.meta.url).pathname;

/** The debug log of `crabbox <args>` (it must succeed). */
async function debugLog(home: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--log-level=debug", "-A", CLI, ...args],
    env: { CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com", NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  const log = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `crabbox ${args.join(" ")} failed:\n${log.slice(-2000)}`);
  return log;
}

/** Modules `crabbox <args>` evaluates. */
async function modulesLoaded(home: string, args: string[]): Promise<string[]> {
  const log = await debugLog(home, args);
  const modules = [...log.matchAll(/for ES module: ([^,\s]+)/g)].map((m) => m[1]);
  assert.ok(modules.some((m) => m.endsWith("/cli.ts")), "the debug log names the modules");
  return [...new Set(modules)];
}

const nodeCompat = (modules: string[]) =>
  modules.filter((m) =>
    m.startsWith("node:") || m.includes("ext:deno_node") || m.includes("/node_modules/")
  );

Deno.test("start-up: --help and list (local claims only) load no npm package and no node: module", async () => {
  const home = await Deno.makeTempDir({ prefix: "cbx-startup-" });
  try {
    for (const args of [["--help"], ["list"], ["crew", "connect", "--help"]]) {
      assert.deepEqual(nodeCompat(await modulesLoaded(home, args)), [], args.join(" "));
    }
    // deno.json's lazy-dynamic-imports: the loader does not even read what only the
    // commands' lazy imports (lib/mesh, providers, …) would need.
    const fetched = [
      ...(await debugLog(home, ["--help"])).matchAll(/fetch_no_follow - specifier: (\S+)/g),
    ]
      .map((m) => m[1]);
    assert.ok(fetched.some((f) => f.endsWith("/cli.ts")), "the debug log names the files read");
    assert.deepEqual(
      fetched.filter((f) => /\/(lib\/(mesh|lease|tailnet)|providers)\//.test(f)),
      [],
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("start-up: with an unchanged config.yaml, list and crew connect --json load no npm package (the parsed config is cached)", async () => {
  const home = await Deno.makeTempDir({ prefix: "cbx-startup-" });
  try {
    await writeStaticCrewHome(home, "g", "tester@example.com");
    const first = await modulesLoaded(home, ["list"]);
    assert.ok(first.some((m) => m.includes("/yaml")), "the first run parses config.yaml");
    assert.deepEqual(nodeCompat(await modulesLoaded(home, ["list"])), [], "list");
    const connect = ["crew", "connect", "g", "--json"];
    assert.deepEqual(nodeCompat(await modulesLoaded(home, connect)), [], connect.join(" "));
    // An edit is parsed again.
    await Deno.writeTextFile(
      `${home}/config.yaml`,
      "ssh:\n  hosts:\n    - { name: rack1, host: 127.0.0.1, port: 2222 }\n",
    );
    assert.ok((await modulesLoaded(home, connect)).some((m) => m.includes("/yaml")));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
