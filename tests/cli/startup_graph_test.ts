import assert from "node:assert/strict";
import { encodeLabels } from "../../lib/core/labels.ts";
import { ownerFor } from "../../lib/core/names.ts";
import { saveClaim } from "../../lib/lease/claims.ts";

// What the CLI loads at start-up (structure, not time: bench/startup.ts
// measures time). `--help`, `list` and `crew connect --json` must not start
// Deno's Node-compatibility layer: no npm package, no `node:` module (the
// YAML parser is one: with a config.yaml it loads only until the parsed
// config is cached). The module list comes from the loader's debug log of a
// real `deno run`.
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

Deno.test("start-up: with an unchanged config.yaml, list and crew connect --json load no npm package (the parsed config is cached)", async () => {
  const home = await Deno.makeTempDir({ prefix: "cbx-startup-" });
  try {
    // A crew of one claimed member on the `ssh` provider (a static host in config.yaml).
    const id = "cbx-000000000001";
    const owner = await ownerFor({
      env: (k) => (k === "CRABBOX_OWNER" ? "tester@example.com" : undefined),
    });
    const labels = encodeLabels({ leaseId: id, crew: "g", slug: "api", expose: [8080], owner });
    const createdAt = new Date(0).toISOString();
    await Deno.writeTextFile(
      `${home}/config.yaml`,
      "ssh:\n  hosts:\n    - { name: rack1, host: 127.0.0.1, port: 22 }\n",
    );
    await Deno.mkdir(`${home}/ssh-hosts`, { mode: 0o700 });
    await Deno.writeTextFile(
      `${home}/ssh-hosts/rack1.json`,
      JSON.stringify({ host: "rack1", leaseId: id, labels, createdAt }),
    );
    await saveClaim(home, {
      id,
      provider: "ssh",
      providerId: "rack1",
      crew: "g",
      slug: "api",
      role: "api",
      owner,
      labels,
      expose: [8080],
      ssh: { host: "127.0.0.1", port: 22, user: "root" },
      tailscale: false,
      createdAt,
      state: "active",
    });
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
