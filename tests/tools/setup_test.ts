/**
 * README's two commands set the machine up: the test task runs tools/setup.ts
 * first, the demo calls the same installer, and `.ci/run` installs every
 * package they know. The wiring runs for real with a `PATH` holding only a
 * recording `apt-get` stand-in (no package is really installed).
 */

import assert from "node:assert/strict";
import { SETUP_REQUIREMENTS } from "../../tools/setup.ts";
import { LOCAL_REQUIREMENTS } from "../../providers/local/mod.ts";

const root = new URL("../../", import.meta.url).pathname;

Deno.test("deno task test runs tools/setup.ts before the tests", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  assert.match(config.tasks.test, /^deno run --allow-all tools\/setup\.ts && deno test /);
});

Deno.test(".ci/run installs every package the first-run installer knows", async () => {
  const ci = await Deno.readTextFile(`${root}.ci/run`);
  // The apt-get install command with its continuation lines joined.
  const joined = ci.replace(/\\\n/g, " ");
  const line = joined.split("\n").find((l) => /^\s*apt-get install /.test(l)) ?? "";
  const installed = new Set(line.split(/\s+/));
  for (const r of [...LOCAL_REQUIREMENTS, ...SETUP_REQUIREMENTS]) {
    assert.ok(installed.has(r.pkg), `.ci/run does not install ${r.pkg}`);
  }
  assert.match(ci, /mkdir -p \/run\/sshd/);
});

/** Run `script` with PATH = a dir holding only a fake apt-get that records its argv. */
async function withFakeApt(script: string) {
  const dir = await Deno.makeTempDir({ prefix: "cbx-setup-" });
  try {
    const log = `${dir}/apt.log`;
    await Deno.writeTextFile(`${dir}/apt-get`, `#!/bin/sh\necho "$*" >>"$APT_LOG"\n`, {
      mode: 0o755,
    });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", script],
      cwd: root,
      env: { PATH: dir, APT_LOG: log, NO_COLOR: "1", CRABBOX_HOME: `${dir}/home` },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const apt = await Deno.readTextFile(log).catch(() => "");
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      apt: apt.trim().split("\n"),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const isRoot = Deno.uid() === 0;

Deno.test({
  name:
    "tools/setup.ts (the test task's first step) installs what is missing as root, printing the command",
  ignore: !isRoot,
  fn: async () => {
    const r = await withFakeApt("tools/setup.ts");
    // Nothing was really installed, so the programs stay missing: exit 6, command printed.
    assert.equal(r.code, 6, r.stderr);
    const install = r.apt.find((l) => l.startsWith("install "));
    assert.ok(install, `apt-get install was not run: ${r.apt.join(" | ")}`);
    assert.deepEqual(r.apt[0], "update -qq");
    const pkgs = install.split(" ").slice(3);
    for (
      const p of ["iproute2", "socat", "util-linux", "openssh-client", "jq", "dash", "cloud-init"]
    ) {
      assert.ok(pkgs.includes(p), `${p} not installed: ${install}`);
    }
    assert.match(
      r.stdout,
      new RegExp(`^crabbox: installing missing packages: apt-get ${install}$`, "m"),
    );
    assert.match(
      r.stderr,
      /still missing after apt-get install\); run as root: apt-get install -y/,
    );
  },
});

Deno.test({
  name: "the demo installs what is missing as root, printing the command",
  ignore: !isRoot,
  fn: async () => {
    const r = await withFakeApt("demo.ts");
    assert.equal(r.code, 6, r.stderr);
    const install = r.apt.find((l) => l.startsWith("install "));
    assert.equal(
      install,
      "install -y --no-install-recommends iproute2 socat util-linux openssh-client",
    );
    assert.match(
      r.stdout,
      new RegExp(`^crabbox: installing missing packages: apt-get ${install}$`, "m"),
    );
    assert.match(r.stderr, /^demo: missing packages: .*run as root: apt-get install/m);
  },
});
