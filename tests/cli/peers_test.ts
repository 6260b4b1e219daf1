import assert from "node:assert/strict";
import { cliWorld } from "./_cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";

Deno.test("crew connect --json --peers: the planned peer table per member, no ssh run", async () => {
  const mem = memoryProvider("memory", ["ssh"]);
  const world = await cliWorld({ memory: mem });
  try {
    for (const [slug, port] of [["api-1", "8080"], ["db", "5432"], ["web", ""]]) {
      const args = ["warmup", "--crew", "pr-7", "--slug", slug, "--provider", "memory"];
      const w = await world.run(port ? [...args, "--expose", port] : args);
      assert.equal(w.code, 0, w.stderr);
    }
    let n = 2;
    for (const box of mem.boxes.values()) {
      box.ssh = { host: `127.77.9.${n++}`, port: 22, user: "root", keyPath: "/k" };
    }
    const before = world.process.calls.length;
    const r = await world.run(["crew", "connect", "pr-7", "--json", "--peers"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(world.process.calls.length, before, "--json runs nothing");
    const d = JSON.parse(r.stdout);
    assert.equal(d.peersPlanned, true);
    const table = Object.fromEntries(
      d.peers.map((
        m: { peer: string; peers: { peer: string; address: string; role?: string }[] },
      ) => [
        m.peer,
        m.peers.map((p) => `${p.peer}${p.role ? `/${p.role}` : ""}@${p.address}`),
      ]),
    );
    assert.deepEqual(table, {
      "api-1": ["db@127.0.0.3:5432"],
      db: ["api-1/api@127.0.0.2:8080"],
      web: ["api-1/api@127.0.0.2:8080", "db@127.0.0.3:5432"],
    });
    const plain = JSON.parse((await world.run(["crew", "connect", "pr-7", "--json"])).stdout);
    assert.equal(plain.peers, undefined, "no peer table without --peers");

    const peers = await world.run(["crew", "peers", "pr-7", "--json"]);
    assert.equal(peers.code, 0, peers.stderr);
    for (const m of JSON.parse(peers.stdout).members) {
      assert.deepEqual(m.planes, ["ssh", "ssh-peer"]);
    }
    const text = await world.run(["crew", "peers", "pr-7"]);
    assert.match(text.stdout, /ssh,ssh-peer/);
  } finally {
    await world.close();
  }
});

Deno.test("crew connect --peers with --json and --export: one usage error", async () => {
  const world = await cliWorld({});
  try {
    const r = await world.run(["crew", "connect", "x", "--peers", "--json", "--export"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /give --export or --json, not both/);
  } finally {
    await world.close();
  }
});
