import assert from "node:assert/strict";
import { parse } from "yaml";
import { guardedStep, renderCloudInit } from "../../lib/lease/cloud_init.ts";
import {
  LIFETIME_CONF_PATH,
  LIFETIME_SCRIPT_PATH,
  LIFETIME_UNIT,
} from "../../lib/lease/cloud_init_lifetime.ts";

const SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOmAbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/ab c";
const SHELLS = ["bash", "dash"] as const;
const REQUIRED = Deno.env.get("CRABBOX_E2E") === "required";

interface WriteFile {
  path: string;
  permissions?: string;
  content: string;
}
interface Doc {
  write_files?: WriteFile[];
  runcmd?: string[];
}

async function run(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    env,
    clearEnv: env !== undefined,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function has(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await run(cmd, args)).code === 0;
  } catch {
    return false;
  }
}

const HAS_CLOUD_INIT = await has("cloud-init", ["--version"]);

function rendered(lifetime: { expiresAt?: number; idleTimeout?: number }): Doc {
  return parse(renderCloudInit({ slug: "web", crew: "pr-42", sshPublicKey: SSH_KEY, lifetime }));
}

function fileAt(doc: Doc, path: string): WriteFile {
  const f = doc.write_files?.find((w) => w.path === path);
  assert.ok(f, `write_files has ${path}`);
  return f;
}

Deno.test("renderCloudInit: lifetime installs the script, its settings and a one-minute timer", () => {
  const doc = rendered({ expiresAt: 1767225600, idleTimeout: 1800 });
  assert.equal(fileAt(doc, LIFETIME_CONF_PATH).content, "expires=1767225600\nidle=1800\n");
  const script = fileAt(doc, LIFETIME_SCRIPT_PATH);
  assert.equal(script.permissions, "0755");
  assert.match(script.content, /^#!\/bin\/sh\n/);
  const timer = fileAt(doc, `/etc/systemd/system/${LIFETIME_UNIT}.timer`).content;
  assert.match(timer, /^OnUnitActiveSec=1min$/m);
  assert.match(timer, /^WantedBy=timers\.target$/m);
  const service = fileAt(doc, `/etc/systemd/system/${LIFETIME_UNIT}.service`).content;
  assert.match(service, new RegExp(`^ExecStart=${LIFETIME_SCRIPT_PATH} check$`, "m"));
  assert.deepEqual(doc.runcmd?.slice(-2), [
    guardedStep("lifetime", "systemctl daemon-reload"),
    guardedStep("lifetime", `systemctl enable --now ${LIFETIME_UNIT}.timer`),
  ]);
  // Without a TTL or idle timeout, nothing of it is installed.
  const none = rendered({ expiresAt: 0, idleTimeout: 0 });
  assert.deepEqual(
    (none.write_files ?? []).filter((f) =>
      f.path.includes("crabbox-lifetime") || f.path === LIFETIME_CONF_PATH ||
      f.path === LIFETIME_SCRIPT_PATH
    ),
    [],
  );
  assert.throws(() => rendered({ expiresAt: -1 }), /whole seconds/);
});

Deno.test({
  name: "renderCloudInit: cloud-init schema accepts the document with the lifetime timer",
  ignore: !HAS_CLOUD_INIT && !REQUIRED,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "cbx-ci-life-" });
  try {
    await Deno.writeTextFile(
      `${dir}/user-data`,
      renderCloudInit({
        slug: "web",
        sshPublicKey: SSH_KEY,
        lifetime: { expiresAt: 1767225600, idleTimeout: 1800 },
      }),
    );
    const out = await run("cloud-init", ["schema", "--config-file", `${dir}/user-data`]);
    assert.equal(out.code, 0, out.stdout + out.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A temp "box": the rendered script, its settings, and stand-ins for ss and systemctl. */
async function lifetimeBox(expires: number, idle: number) {
  const dir = await Deno.makeTempDir({ prefix: "cbx-lifetime-" });
  await Deno.mkdir(`${dir}/bin`);
  const doc = rendered({ expiresAt: expires, idleTimeout: idle });
  const script = `${dir}/crabbox-lifetime`;
  await Deno.writeTextFile(script, fileAt(doc, LIFETIME_SCRIPT_PATH).content);
  const conf = `${dir}/etc/crabbox/lifetime`;
  await Deno.mkdir(`${dir}/etc/crabbox`, { recursive: true });
  await Deno.writeTextFile(conf, fileAt(doc, LIFETIME_CONF_PATH).content);
  // ss prints $FAKE_SS (or fails when FAKE_SS_FAIL is set); systemctl records its arguments.
  await Deno.writeTextFile(
    `${dir}/bin/ss`,
    '#!/bin/sh\n[ -n "$FAKE_SS_FAIL" ] && exit 1\nprintf "%s" "$FAKE_SS"\n',
    { mode: 0o755 },
  );
  await Deno.writeTextFile(
    `${dir}/bin/systemctl`,
    `#!/bin/sh\necho "$*" >> "${dir}/systemctl.log"\n`,
    { mode: 0o755 },
  );
  const stamp = `${dir}/var/lib/crabbox/last-active`;
  return {
    dir,
    conf,
    stamp,
    async run(shell: string, args: string[], o: { ss?: string; ssFail?: boolean } = {}) {
      return await run(shell, [script, ...args], {
        PATH: `${dir}/bin:/usr/bin:/bin`,
        CRABBOX_LIFETIME_CONF: conf,
        CRABBOX_LIFETIME_STAMP: stamp,
        FAKE_SS: o.ss ?? "",
        FAKE_SS_FAIL: o.ssFail ? "1" : "",
      });
    },
    async poweredOff(): Promise<string> {
      return await Deno.readTextFile(`${dir}/systemctl.log`).catch(() => "");
    },
    async close() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const now = () => Math.floor(Date.now() / 1000);
const SSHD_CONN =
  '0 0 10.0.0.5:22 192.0.2.7:51234 users:(("sshd-session",pid=812,fd=4),("sshd-session",pid=790,fd=4))\n';
const OTHER_CONN = '0 0 10.0.0.5:443 192.0.2.7:51235 users:(("nginx",pid=99,fd=7))\n';

for (const shell of SHELLS) {
  Deno.test(`lifetime (${shell}): powers off at the TTL`, async () => {
    const box = await lifetimeBox(now() - 5, 0);
    try {
      const r = await box.run(shell, ["check"], { ss: SSHD_CONN });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /lease expired \(ttl\): powering off/);
      assert.equal(await box.poweredOff(), "poweroff\n");
    } finally {
      await box.close();
    }
  });

  Deno.test(`lifetime (${shell}): an ssh connection keeps an idle box up and is recorded`, async () => {
    const box = await lifetimeBox(now() + 3600, 60);
    try {
      await Deno.mkdir(`${box.dir}/var/lib/crabbox`, { recursive: true });
      await Deno.writeTextFile(box.stamp, `${now() - 600}\n`);
      const r = await box.run(shell, ["check"], { ss: OTHER_CONN + SSHD_CONN });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await box.poweredOff(), "");
      const stamp = Number((await Deno.readTextFile(box.stamp)).trim());
      assert.ok(Math.abs(stamp - now()) <= 2, `stamp ${stamp}`);
    } finally {
      await box.close();
    }
  });

  Deno.test(`lifetime (${shell}): idle past the timeout (no sshd connection) powers off`, async () => {
    const box = await lifetimeBox(now() + 3600, 60);
    try {
      await Deno.mkdir(`${box.dir}/var/lib/crabbox`, { recursive: true });
      await Deno.writeTextFile(box.stamp, `${now() - 61}\n`);
      const r = await box.run(shell, ["check"], { ss: OTHER_CONN });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /idle for \d+s \(timeout 60s\): powering off/);
      assert.equal(await box.poweredOff(), "poweroff\n");
    } finally {
      await box.close();
    }
  });

  Deno.test(`lifetime (${shell}): first check starts the idle clock; ss failing never powers off`, async () => {
    const box = await lifetimeBox(0, 60);
    try {
      const first = await box.run(shell, ["check"]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(await box.poweredOff(), "");
      assert.ok(Math.abs(Number((await Deno.readTextFile(box.stamp)).trim()) - now()) <= 2);
      await Deno.writeTextFile(box.stamp, `${now() - 3600}\n`);
      const blind = await box.run(shell, ["check"], { ssFail: true });
      assert.equal(blind.code, 0);
      assert.match(blind.stderr, /ss failed: idle check skipped/);
      assert.equal(await box.poweredOff(), "");
    } finally {
      await box.close();
    }
  });

  Deno.test(`lifetime (${shell}): extend rewrites the expiry; junk settings count as none`, async () => {
    const box = await lifetimeBox(now() - 5, 1800);
    try {
      const later = now() + 7200;
      const r = await box.run(shell, ["extend", String(later)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await Deno.readTextFile(box.conf), `expires=${later}\nidle=1800\n`);
      const ok = await box.run(shell, ["check"]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(await box.poweredOff(), "");
      for (const bad of [["extend"], ["extend", "soon"], ["extend", "1", "2"], ["reboot"]]) {
        const r2 = await box.run(shell, bad);
        assert.equal(r2.code, 2, bad.join(" "));
      }
      await Deno.writeTextFile(box.conf, `expires=$(touch ${box.dir}/pwned)\nidle=1;reboot\n`);
      const junk = await box.run(shell, ["check"]);
      assert.equal(junk.code, 0, junk.stderr);
      assert.equal(await box.poweredOff(), "");
      assert.equal(await Deno.stat(`${box.dir}/pwned`).then(() => true, () => false), false);
    } finally {
      await box.close();
    }
  });
}
