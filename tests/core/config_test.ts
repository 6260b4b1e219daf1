import assert from "node:assert/strict";
import { parseConfig } from "../../lib/core/config.ts";
import { providerConfigSchemas } from "../../providers/registry.ts";
import { CrabboxError } from "../../lib/core/errors.ts";

const noEnv = () => undefined;

Deno.test("empty config gives defaults", async () => {
  const c = await parseConfig("", "/h/config.yaml", noEnv, providerConfigSchemas());
  assert.equal(c.provider, "local");
  assert.deepEqual(c.tailscale.tags, []);
});

Deno.test("config sections parse and env overrides apply", async () => {
  const text = [
    "provider: ssh",
    "tailscale:",
    "  tags: [tag:ci]",
    "ssh:",
    "  hosts:",
    "    - { name: rack1, host: 10.0.0.5, port: 2222, user: ci }",
    "hetzner:",
    "  location: fsn1",
  ].join("\n");
  const c = await parseConfig(text, "c.yaml", noEnv, providerConfigSchemas());
  assert.equal(c.provider, "ssh");
  assert.deepEqual(c.tailscale.tags, ["tag:ci"]);
  assert.deepEqual(c.providers.ssh.hosts, [{
    name: "rack1",
    host: "10.0.0.5",
    port: 2222,
    user: "ci",
  }]);
  assert.equal(c.providers.hetzner.location, "fsn1");
  const env = (k: string) =>
    ({ CRABBOX_PROVIDER: "local", CRABBOX_TAILSCALE_TAGS: "tag:a, tag:b" })[k];
  const o = await parseConfig(text, "c.yaml", env, providerConfigSchemas());
  assert.equal(o.provider, "local");
  assert.deepEqual(o.tailscale.tags, ["tag:a", "tag:b"]);
});

Deno.test("bad YAML and unknown keys name file:line", async () => {
  const cases: [string, RegExp][] = [
    ["provider: local\nbogus: 1\n", /^c\.yaml:2: unknown key "bogus"/],
    ["hetzner:\n  location: x\n  colour: red\n", /^c\.yaml:3: unknown key "hetzner\.colour"/],
    ["provider: [unclosed\n", /^c\.yaml:\d+: /],
    ["tailscale:\n  tags: [notatag]\n", /^c\.yaml:1: tailscale\.tags/],
    [
      "ssh:\n  hosts:\n    - { name: a }\n",
      /^c\.yaml:3: every ssh\.hosts entry needs a name and a host/,
    ],
    [
      "ssh:\n  hosts:\n    - { name: a, host: b, shell: zsh }\n",
      /^c\.yaml:3: unknown key "ssh\.hosts\[\]\.shell"/,
    ],
    ["provider: a\nprovider: b\n", /^c\.yaml:2: /],
    [
      "ssh:\n  hosts:\n    - { name: a, host: b, port: 65536 }\n",
      /^c\.yaml:3: .*port must be 1\.\.65535/,
    ],
    [
      "ssh:\n  hosts:\n    - { name: a, host: b, port: 0 }\n",
      /^c\.yaml:3: .*port must be 1\.\.65535/,
    ],
  ];
  for (const [text, re] of cases) {
    await assert.rejects(
      parseConfig(text, "c.yaml", noEnv, providerConfigSchemas()),
      (e: unknown) => {
        assert.ok(e instanceof CrabboxError, String(e));
        assert.equal(e.exitStatus, 11);
        assert.match(e.message, re);
        assert.ok(!e.message.includes("\n"), "one line");
        return true;
      },
      text,
    );
  }
});

Deno.test("ttl and idleTimeout: config durations, env overrides, file:line on a bad value", async () => {
  const schemas = providerConfigSchemas();
  const c = await parseConfig("ttl: 2h\nidleTimeout: 0\n", "c.yaml", noEnv, schemas);
  assert.deepEqual(c.lifetime, { ttl: 7200, idleTimeout: 0 });
  const n = await parseConfig("ttl: 600\n", "c.yaml", noEnv, schemas);
  assert.deepEqual(n.lifetime, { ttl: 600 });
  assert.deepEqual((await parseConfig("", "c.yaml", noEnv, schemas)).lifetime, {});
  const env = (k: string) => ({ CRABBOX_TTL: "45m", CRABBOX_IDLE_TIMEOUT: "10m" })[k];
  assert.deepEqual((await parseConfig("ttl: 2h\n", "c.yaml", env, schemas)).lifetime, {
    ttl: 2700,
    idleTimeout: 600,
  });
  for (const text of ["provider: local\nttl: 5w\n", "provider: local\nttl: [1]\n"]) {
    await assert.rejects(parseConfig(text, "c.yaml", noEnv, schemas), (e) => {
      assert.ok(e instanceof CrabboxError);
      assert.equal(e.exitStatus, 11);
      assert.match(e.message, /^c\.yaml:2: ttl /);
      return true;
    });
  }
});
