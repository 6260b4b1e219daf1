import assert from "node:assert/strict";

// What the CLI loads at start-up (structure, not time: bench/startup.ts
// measures time). `--help`, `list` and `crew connect --json` must not start
// Deno's Node-compatibility layer: no npm package, no `node:` module. The
// module list comes from the loader's debug log of a real `deno run`.
const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function modulesLoaded(home: string, args: string[]): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--log-level=debug", "-A", CLI, ...args],
    env: { CRABBOX_HOME: home, CRABBOX_OWNER: "tester@example.com", NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  const log = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `crabbox ${args.join(" ")} failed:\n${log.slice(-2000)}`);
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
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
