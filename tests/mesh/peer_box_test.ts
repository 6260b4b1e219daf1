/**
 * The ssh-peer box script run for real (dash) against temp files: the
 * script text with `/etc/hosts` and `/run/crabbox` pointed into a temp dir.
 */

import assert from "node:assert/strict";
import { applyInput, PEER_BOX_SCRIPT, PEER_ENV_PATH } from "../../lib/mesh/peer_box.ts";
import { HOSTS_BLOCK_BEGIN, HOSTS_BLOCK_END } from "../../lib/lease/cloud_init_refresher.ts";

const dec = new TextDecoder();

async function box(): Promise<
  {
    dir: string;
    run: (mode: string, stdin: string) => Promise<{ code: number; stdout: string; stderr: string }>;
  }
> {
  const dir = await Deno.makeTempDir({ prefix: "cbx-peer-box-" });
  await Deno.mkdir(`${dir}/run`);
  const script = PEER_BOX_SCRIPT.replaceAll("/etc/hosts", `${dir}/hosts`)
    .replaceAll("/run/crabbox", `${dir}/run/crabbox`);
  assert.notEqual(script, PEER_BOX_SCRIPT);
  return {
    dir,
    run: async (mode, stdin) => {
      const child = new Deno.Command("dash", {
        args: ["-c", script, "crabbox-peers", mode],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
      const out = await child.output();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    },
  };
}

const BASE = `127.0.0.1 localhost
${HOSTS_BLOCK_BEGIN}
100.64.0.2 api.cbx
${HOSTS_BLOCK_END}
10.0.0.9 other
`;

Deno.test("box script apply: our block only, the tailnet block and other lines kept; env file written", async () => {
  const b = await box();
  try {
    await Deno.writeTextFile(`${b.dir}/hosts`, BASE);
    const input = applyInput(
      ["127.0.0.2 api-1.cbx api.cbx", "127.0.0.3 db.cbx"],
      ["export CRABBOX_CREW_API_1_8080=127.0.0.2:8080"],
    );
    const r = await b.run("apply", input);
    assert.equal(r.code, 0, r.stderr);
    const hosts = await Deno.readTextFile(`${b.dir}/hosts`);
    assert.equal(
      hosts,
      BASE +
        "# crabbox ssh-peer hosts begin\n127.0.0.2 api-1.cbx api.cbx\n127.0.0.3 db.cbx\n# crabbox ssh-peer hosts end\n",
    );
    assert.equal((await Deno.stat(`${b.dir}/hosts`)).mode! & 0o777, 0o644);
    const envPath = `${b.dir}/run/crabbox/crew.env`;
    assert.match(
      await Deno.readTextFile(envPath),
      /^export CRABBOX_CREW_API_1_8080=127\.0\.0\.2:8080$/m,
    );
    assert.ok(PEER_ENV_PATH.startsWith("/run/crabbox/"));
    // hosts.cbx is only edited when it exists.
    await assert.rejects(Deno.stat(`${b.dir}/hosts.cbx`), Deno.errors.NotFound);
    await Deno.writeTextFile(`${b.dir}/hosts.cbx`, "# tailnet list\n");
    const again = await b.run("apply", applyInput(["127.0.0.3 db.cbx"], []));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      await Deno.readTextFile(`${b.dir}/hosts`),
      BASE + "# crabbox ssh-peer hosts begin\n127.0.0.3 db.cbx\n# crabbox ssh-peer hosts end\n",
      "replaced in place, not appended twice",
    );
    assert.equal(
      await Deno.readTextFile(`${b.dir}/hosts.cbx`),
      "# tailnet list\n# crabbox ssh-peer hosts begin\n127.0.0.3 db.cbx\n# crabbox ssh-peer hosts end\n",
    );
    // remove: only our block goes, the env file too.
    const rm = await b.run("remove", "");
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(await Deno.readTextFile(`${b.dir}/hosts`), BASE);
    assert.equal(await Deno.readTextFile(`${b.dir}/hosts.cbx`), "# tailnet list\n");
    await assert.rejects(Deno.stat(envPath), Deno.errors.NotFound);
    const leftovers = [...Deno.readDirSync(b.dir)].map((e) => e.name).sort();
    assert.deepEqual(leftovers, ["hosts", "hosts.cbx", "run"], "no temp files left");
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("box script refuses malformed data and writes nothing", async () => {
  const b = await box();
  try {
    await Deno.writeTextFile(`${b.dir}/hosts`, BASE);
    for (
      const input of [
        applyInput(["127.0.0.2 api.cbx; rm -rf /"], []),
        applyInput(["127.0.0.2 $(reboot).cbx"], []),
        applyInput(["8.8.8.8 api.cbx"], []),
        applyInput([], ["export CRABBOX_CREW_X_1=127.0.0.2:1; id"]),
        applyInput([], ["PATH=/tmp"]),
      ]
    ) {
      const r = await b.run("apply", input);
      assert.equal(r.code, 4, `${JSON.stringify(input)}: ${r.stderr}`);
      assert.match(r.stderr, /refusing a malformed/);
    }
    assert.equal(await Deno.readTextFile(`${b.dir}/hosts`), BASE);
    const bad = await b.run("nonsense", "");
    assert.equal(bad.code, 2);
  } finally {
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("box script listening: yes only for a listener bound exactly there", async () => {
  const b = await box();
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (l.addr as Deno.NetAddr).port;
    const hex = port.toString(16).toUpperCase().padStart(4, "0");
    assert.equal((await b.run("listening", `0100007F:${hex}\n`)).stdout.trim(), "yes");
    assert.equal((await b.run("listening", `0200007F:${hex}\n`)).stdout.trim(), "no");
    assert.equal((await b.run("listening", "x; id\n")).code, 4);
  } finally {
    l.close();
    await Deno.remove(b.dir, { recursive: true });
  }
});

Deno.test("box script reach: ok for a listening port, no for a closed one, refuses odd input", async () => {
  const b = await box();
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  try {
    const port = (l.addr as Deno.NetAddr).port;
    const accept = l.accept().then((c) => c.close()).catch(() => {});
    const r = await b.run("reach", `127.0.0.1 ${port}\n127.0.0.1 ${closedPort}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `127.0.0.1 ${port} ok\n127.0.0.1 ${closedPort} no\n`);
    await accept;
    assert.equal((await b.run("reach", "$(id) 80\n")).code, 4);
    assert.equal((await b.run("reach", "-oProxyCommand 80\n")).code, 4);
  } finally {
    l.close();
    await Deno.remove(b.dir, { recursive: true });
  }
});
