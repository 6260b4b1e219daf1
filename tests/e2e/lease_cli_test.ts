import assert from "node:assert/strict";
import { crabbox } from "./_cli.ts";
import { requireE2E } from "./_local.ts";

const enabled = requireE2E();

async function netnsList(): Promise<string[]> {
  const out = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0]).filter(
    Boolean,
  );
}

async function pgrep(pattern: string): Promise<number[]> {
  const out = await new Deno.Command("pgrep", { args: ["-f", pattern], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

async function treeEntries(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, prefix: string) => {
    try {
      for await (const e of Deno.readDir(d)) {
        out.push(prefix + e.name);
        if (e.isDirectory) await walk(`${d}/${e.name}`, `${prefix}${e.name}/`);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  };
  await walk(dir, "");
  return out.sort();
}

Deno.test({
  name: "e2e: warmup 3 local boxes, list, run, release leaves nothing behind",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-e2e-" });
    // Other test runs on this machine create namespaces too: only ours count.
    const ours = new Set<string>();
    try {
      const specs: [string, string[]][] = [
        ["api", ["--expose", "8080"]],
        ["db", ["--expose", "5432"]],
        ["web", ["--expose", "8080,9090"]],
      ];
      const ids: Record<string, string> = {};
      for (const [slug, expose] of specs) {
        const r = await crabbox(home, [
          "warmup",
          "--crew",
          "t1",
          "--slug",
          slug,
          "--provider",
          "local",
          ...expose,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout.trim(), /^cbx-[0-9a-f]{12}$/);
        ids[slug] = r.stdout.trim();
        ours.add(ids[slug]);
      }

      const list = await crabbox(home, ["list", "--crew", "t1", "--json"]);
      assert.equal(list.code, 0, list.stderr);
      const rows = JSON.parse(list.stdout) as {
        id: string;
        slug: string;
        expose: number[];
        crew: string;
      }[];
      assert.deepEqual(
        rows.map((r) => [r.slug, r.id, r.crew, r.expose]),
        [
          ["api", ids.api, "t1", [8080]],
          ["db", ids.db, "t1", [5432]],
          ["web", ids.web, "t1", [8080, 9090]],
        ],
      );
      const other = await crabbox(home, ["list", "--crew", "nobody", "--json"]);
      assert.deepEqual(JSON.parse(other.stdout), []);

      const run = await crabbox(home, ["run", "--id", "t1/api", "--", "hostname"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trim(), "crabbox-api");
      const byId = await crabbox(home, ["run", "--id", ids.db, "--", "sh", "-c", "exit 7"]);
      assert.equal(byId.code, 7, "remote exit status is passed through");
      // Each word arrives intact on a real box (spaces, quotes, $, ;, empty, newline, non-ASCII).
      const words = ["a b", "it's", "$HOME", "safe;id", "", "l1\nl2", "ünï ✓"];
      const printed = await crabbox(home, [
        "run",
        "--id",
        ids.db,
        "--",
        "printf",
        "<%s>",
        ...words,
      ]);
      assert.equal(printed.code, 0, printed.stderr);
      assert.equal(printed.stdout, words.map((w) => `<${w}>`).join(""));
      const shell = await crabbox(home, [
        "run",
        "--id",
        ids.db,
        "--shell",
        "echo $((6*7)); exit 3",
      ]);
      assert.deepEqual([shell.code, shell.stdout], [3, "42\n"]);

      const status = await crabbox(home, ["status", "--id", "t1/web", "--json"]);
      assert.equal(JSON.parse(status.stdout).id, ids.web);

      const rel = await crabbox(home, ["release", "--crew", "t1"]);
      assert.equal(rel.code, 0, rel.stderr);
      assert.equal(rel.stdout.trim().split("\n").length, 3);

      const after = await netnsList();
      for (const id of Object.values(ids)) {
        assert.ok(!after.includes(id), `namespace ${id} left behind`);
        assert.deepEqual(await pgrep(id), [], `process mentioning ${id} left behind`);
      }
      const left = await treeEntries(home);
      assert.deepEqual(
        left.filter((p) => /claims\/cbx-|^local\/cbx-|^keys\/|known_hosts/.test(p)),
        [],
        `left: ${left.join(", ")}`,
      );
      const empty = await crabbox(home, ["list", "--crew", "t1", "--json"]);
      assert.deepEqual(JSON.parse(empty.stdout), []);
    } finally {
      await crabbox(home, ["release", "--crew", "t1"]);
      await Deno.remove(home, { recursive: true }).catch(() => {});
      assert.deepEqual((await netnsList()).filter((n) => ours.has(n)), []);
    }
  },
});

Deno.test({
  name: "e2e: 5 parallel warmup processes into one crew leave 5 intact claims",
  ignore: !enabled,
  sanitizeResources: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "cbx-e2e-" });
    try {
      const results = await Promise.all(
        [1, 2, 3, 4, 5].map((i) =>
          crabbox(home, [
            "warmup",
            "--crew",
            "t3",
            "--slug",
            `worker-${i}`,
            "--provider",
            "local",
            "--json",
          ])
        ),
      );
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const ids = results.map((r) => JSON.parse(r.stdout).id as string).sort();
      const claims = [...Deno.readDirSync(`${home}/claims`)].map((e) => e.name).filter((n) =>
        n.endsWith(".json")
      ).sort();
      assert.deepEqual(claims, ids.map((id) => `${id}.json`));
      for (const id of ids) {
        const claim = JSON.parse(await Deno.readTextFile(`${home}/claims/${id}.json`));
        assert.equal(claim.state, "active");
        assert.equal(claim.crew, "t3");
        assert.equal(claim.role, "worker");
      }
      const keys = [...Deno.readDirSync(`${home}/keys`)].map((e) => e.name);
      assert.deepEqual(keys, ["crew-t3"], "one crew key, generated once");
      const dup = await crabbox(home, [
        "warmup",
        "--crew",
        "t3",
        "--slug",
        "worker-1",
        "--provider",
        "local",
      ]);
      assert.equal(dup.code, 2, dup.stderr);
      assert.match(dup.stderr, /already has a member worker-1/);
    } finally {
      const rel = await crabbox(home, ["release", "--crew", "t3"]);
      await Deno.remove(home, { recursive: true }).catch(() => {});
      assert.equal(rel.code, 0, rel.stderr);
    }
  },
});
