import assert from "node:assert/strict";
import { parse } from "yaml";
import { netnsNames, requireE2E } from "./_local.ts";

const enabled = requireE2E();
const ROOT = new URL("../../", import.meta.url).pathname;
const DENO_DIR = Deno.execPath().replace(/\/[^/]*$/, "");

interface Step {
  if?: string;
  shell?: string;
  env?: Record<string, string>;
  run?: string;
}

Deno.test("action.yml: a composite action whose steps run the ci/ scripts with its inputs", async () => {
  const action = parse(await Deno.readTextFile(`${ROOT}action.yml`)) as {
    inputs: Record<string, { required?: boolean; default?: string }>;
    runs: { using: string; steps: Step[] };
  };
  assert.equal(action.runs.using, "composite");
  assert.deepEqual(Object.keys(action.inputs).sort(), ["connect", "down", "manifest"]);
  assert.equal(action.inputs.manifest.required, true);
  const [up, down] = action.runs.steps;
  assert.equal(up.run, '"$GITHUB_ACTION_PATH/ci/crew-up.sh"');
  assert.equal(up.env?.CRABBOX_MANIFEST, "${{ inputs.manifest }}");
  assert.equal(up.env?.CRABBOX_CONNECT, "${{ inputs.connect }}");
  assert.equal(down.run, '"$GITHUB_ACTION_PATH/ci/crew-down.sh"');
  assert.equal(down.if, "inputs.down == 'true'");
  for (const s of [up, down]) {
    assert.equal(s.shell, "bash");
    const script = `${ROOT}${s.run!.replace(/^"\$GITHUB_ACTION_PATH\//, "").replace(/"$/, "")}`;
    assert.ok((await Deno.stat(script)).mode! & 0o100, `${script} is executable`);
  }
});

const SERVICE = `#!/bin/sh
setsid socat TCP-LISTEN:8080,bind=127.0.0.1,reuseaddr,fork SYSTEM:"echo api" </dev/null >/dev/null 2>&1 &
for _ in $(seq 100); do
  if ss -Hltn "sport = :8080" | grep -q .; then exit 0; fi
  sleep 0.05
done
exit 1
`;

async function script(name: string, env: Record<string, string>, cwd: string) {
  const out = await new Deno.Command("bash", {
    args: [`${ROOT}ci/${name}`],
    cwd,
    env: { PATH: `${DENO_DIR}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`, ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function firstLine(address: string): Promise<string> {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0)).trim();
  } finally {
    conn.close();
  }
}

Deno.test({
  name:
    "e2e: the action's scripts on local: up exports a working forward to GITHUB_ENV, up again is idempotent, down releases",
  ignore: !enabled,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "cbx-e2e-action-" });
    const githubEnv = `${work}/github_env`;
    await Deno.writeTextFile(githubEnv, "");
    await Deno.writeTextFile(`${work}/service.sh`, SERVICE);
    await Deno.writeTextFile(
      `${work}/crew.yaml`,
      "crew: ci-action\nprovider: local\nmembers:\n  - slug: api\n    expose: 8080\n    init: service.sh\n",
    );
    const env = {
      CRABBOX_MANIFEST: "crew.yaml",
      CRABBOX_HOME: `${work}/home`,
      CRABBOX_OWNER: "ci@example.com",
      GITHUB_ENV: githubEnv,
      HOME: Deno.env.get("HOME") ?? work,
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
      NO_COLOR: "1",
    };
    let ids: string[] = [];
    try {
      const up = await script("crew-up.sh", env, work);
      assert.equal(up.code, 0, up.stderr);
      const lines = (await Deno.readTextFile(githubEnv)).trim().split("\n");
      assert.equal(lines.length, 1, lines.join("\n"));
      const m = /^CRABBOX_CREW_API_8080=(127\.0\.0\.1:\d+)$/.exec(lines[0]);
      assert.ok(m, lines[0]);
      assert.equal(await firstLine(m[1]), "api", "the forward reaches the member's service");
      ids = [...Deno.readDirSync(`${work}/home/claims`)].map((e) => e.name.replace(/\.json$/, ""))
        .filter((n) => n.startsWith("cbx-"));
      assert.equal(ids.length, 1);

      const again = await script("crew-up.sh", env, work);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /0 created, 1 unchanged/);
      const after = [...Deno.readDirSync(`${work}/home/claims`)].filter((e) =>
        e.name.startsWith("cbx-")
      );
      assert.equal(after.length, 1, "no second box");

      const down = await script("crew-down.sh", env, work);
      assert.equal(down.code, 0, down.stderr);
      assert.deepEqual((await netnsNames()).filter((n) => ids.includes(n)), []);
      await assert.rejects(firstLine(m[1]), "the forward is gone");

      const bad = await script("crew-up.sh", { ...env, CRABBOX_CONNECT: "yes" }, work);
      assert.equal(bad.code, 2);
    } finally {
      await script("crew-down.sh", env, work);
      await Deno.remove(work, { recursive: true }).catch(() => {});
      assert.deepEqual((await netnsNames()).filter((n) => ids.includes(n)), []);
    }
  },
});
