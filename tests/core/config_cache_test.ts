import assert from "node:assert/strict";
import { configPath, loadConfig, rememberConfig } from "../../lib/core/config.ts";
import { configCachePath, isPlainJson } from "../../lib/core/config_cache.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { providerConfigSchemas } from "../../providers/registry.ts";

const noEnv = () => undefined;
const TEXT = "provider: ssh\nssh:\n  hosts:\n    - { name: rack1, host: 10.0.0.5 }\nttl: 2h\n";

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "cbx-config-cache-" });
  try {
    await fn(home);
  } finally {
    await Deno.chmod(home, 0o700).catch(() => {});
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test("config cache: loadConfig never writes; rememberConfig writes cache/config.json (0600 under 0700); the next load returns the same config", async () => {
  await withHome(async (home) => {
    await Deno.writeTextFile(configPath(home), TEXT);
    const first = await loadConfig(home, noEnv, providerConfigSchemas());
    assert.deepEqual([...Deno.readDirSync(home)].map((e) => e.name), ["config.yaml"]);
    await rememberConfig(home, providerConfigSchemas());
    const st = await Deno.stat(configCachePath(home));
    assert.equal(st.mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${home}/cache`)).mode! & 0o777, 0o700);
    const second = await loadConfig(home, noEnv, providerConfigSchemas());
    assert.deepEqual(second, first);
    assert.equal(second.provider, "ssh");
    assert.equal(second.lifetime.ttl, 7200);
  });
});

Deno.test("config cache: an entry is used for exactly the same text, path and schemas", async () => {
  await withHome(async (home) => {
    await Deno.writeTextFile(configPath(home), TEXT);
    await rememberConfig(home, providerConfigSchemas());
    // Plant a different parsed value: it is what comes back while the text is unchanged
    // (so the YAML is not parsed again)...
    const entry = JSON.parse(await Deno.readTextFile(configCachePath(home)));
    entry.config.provider = "from-cache";
    await Deno.writeTextFile(configCachePath(home), JSON.stringify(entry));
    assert.equal((await loadConfig(home, noEnv, providerConfigSchemas())).provider, "from-cache");
    // ...and environment overrides still apply on top of it.
    const env = (k: string) => (k === "CRABBOX_PROVIDER" ? "local" : undefined);
    assert.equal((await loadConfig(home, env, providerConfigSchemas())).provider, "local");
    // Other schemas: parsed again.
    const schemas = { ...providerConfigSchemas(), extra: { x: "string" as const } };
    assert.equal((await loadConfig(home, noEnv, schemas)).provider, "ssh");
    // rememberConfig leaves a matching entry alone.
    await rememberConfig(home, providerConfigSchemas());
    assert.equal((await loadConfig(home, noEnv, providerConfigSchemas())).provider, "from-cache");
    // An edit: parsed again, and the entry follows the new text.
    entry.config.provider = "from-cache";
    await Deno.writeTextFile(configCachePath(home), JSON.stringify(entry));
    await Deno.writeTextFile(configPath(home), TEXT.replace("provider: ssh", "provider: local"));
    assert.equal((await loadConfig(home, noEnv, providerConfigSchemas())).provider, "local");
    await rememberConfig(home, providerConfigSchemas());
    const now = JSON.parse(await Deno.readTextFile(configCachePath(home)));
    assert.equal(now.config.provider, "local");
  });
});

Deno.test("config cache: a damaged or foreign entry is ignored, never trusted", async () => {
  await withHome(async (home) => {
    await Deno.writeTextFile(configPath(home), TEXT);
    await Deno.mkdir(`${home}/cache`, { mode: 0o700 });
    for (
      const junk of [
        "{not json",
        "null",
        JSON.stringify({ version: 1, path: configPath(home), text: TEXT, schemas: {}, config: 1 }),
        JSON.stringify({ version: 99, path: configPath(home), text: TEXT, config: {} }),
      ]
    ) {
      await Deno.writeTextFile(configCachePath(home), junk);
      const c = await loadConfig(home, noEnv, providerConfigSchemas());
      assert.equal(c.provider, "ssh", junk);
    }
    // The same text at another path (another home's entry copied over) is not used.
    await Deno.remove(configCachePath(home));
    await rememberConfig(home, providerConfigSchemas());
    const entry = JSON.parse(await Deno.readTextFile(configCachePath(home)));
    entry.path = "/elsewhere/config.yaml";
    entry.config.provider = "from-cache";
    await Deno.writeTextFile(configCachePath(home), JSON.stringify(entry));
    assert.equal((await loadConfig(home, noEnv, providerConfigSchemas())).provider, "ssh");
  });
});

Deno.test("config cache: a bad config is never cached and fails the same way every time", async () => {
  await withHome(async (home) => {
    await Deno.writeTextFile(configPath(home), "provider: ssh\nbogus: 1\n");
    for (let i = 0; i < 2; i++) {
      await rememberConfig(home, providerConfigSchemas());
      await assert.rejects(
        loadConfig(home, noEnv, providerConfigSchemas()),
        (e) => e instanceof CrabboxError && /config\.yaml:2: unknown key "bogus"/.test(e.message),
      );
    }
    assert.equal(await Deno.stat(configCachePath(home)).then(() => true, () => false), false);
  });
});

Deno.test("config cache: a read-only home still loads the config (the entry is best effort)", async () => {
  if (Deno.uid() === 0) {
    // root writes through 0500; make the cache path a directory instead, so the write fails.
    await withHome(async (home) => {
      await Deno.writeTextFile(configPath(home), TEXT);
      await Deno.mkdir(configCachePath(home), { recursive: true });
      await rememberConfig(home, providerConfigSchemas());
      assert.equal((await loadConfig(home, noEnv, providerConfigSchemas())).provider, "ssh");
      assert.ok((await Deno.stat(configCachePath(home))).isDirectory);
    });
    return;
  }
  await withHome(async (home) => {
    await Deno.writeTextFile(configPath(home), TEXT);
    await Deno.chmod(home, 0o500);
    await rememberConfig(home, providerConfigSchemas());
    assert.equal((await loadConfig(home, noEnv, providerConfigSchemas())).provider, "ssh");
  });
});

Deno.test("isPlainJson: only values a JSON round trip keeps", () => {
  assert.ok(isPlainJson({ a: [1, "x", true, null, { b: undefined }] }));
  assert.ok(!isPlainJson({ a: Infinity }));
  assert.ok(!isPlainJson({ a: NaN }));
  assert.ok(!isPlainJson({ a: new Date(0) }));
  assert.ok(!isPlainJson([undefined]));
  assert.ok(!isPlainJson({ a: 1n }));
  assert.ok(!isPlainJson(Object.create(null)));
});

Deno.test("config cache: without write permission (ssh's ProxyCommand) the config loads and nothing is written", async () => {
  await withHome(async (home) => {
    await Deno.writeTextFile(configPath(home), TEXT);
    const script = `${home}/load.ts`;
    const lib = (p: string) => new URL(p, import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { loadConfig, rememberConfig } from "${lib("../../lib/core/config.ts")}";\n` +
        `import { providerConfigSchemas } from "${lib("../../providers/registry.ts")}";\n` +
        `await rememberConfig(${JSON.stringify(home)}, providerConfigSchemas());\n` +
        `const c = await loadConfig(${
          JSON.stringify(home)
        }, () => undefined, providerConfigSchemas());\n` +
        `console.log(c.provider);\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-q",
        "--no-prompt",
        "--allow-read",
        "--allow-env",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        script,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const td = new TextDecoder();
    assert.equal(out.code, 0, td.decode(out.stderr));
    assert.equal(td.decode(out.stdout), "ssh\n");
    assert.equal(await Deno.stat(`${home}/cache`).then(() => true, () => false), false);
  });
});
