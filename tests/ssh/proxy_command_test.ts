import assert from "node:assert/strict";
import { proxyCommandOption, sshCommandArgs, validateSshTarget } from "../../lib/ssh/args.ts";
import { currentInvocation, proxyArgv, selfArgv } from "../../lib/ssh/proxy_command.ts";
import { CrabboxError } from "../../lib/core/errors.ts";

const WORDS = ["printf", "<%s>\\n", "a b", "it's", "$(echo pwned)", "`id`", "100%", "%h", ";", "*"];

Deno.test("ProxyCommand: every word survives ssh's % expansion and the shell exactly", async () => {
  const option = proxyCommandOption(WORDS);
  assert.ok(option.startsWith("ProxyCommand="));
  // ssh turns %% into % (and would expand %h), then runs `exec <command>` with the user's shell.
  const afterSsh = option.slice("ProxyCommand=".length).replace(
    /%%|%h/g,
    (m) => m === "%%" ? "%" : "EXPANDED",
  );
  const out = await new Deno.Command("sh", { args: ["-c", `exec ${afterSsh}`] }).output();
  assert.equal(out.code, 0);
  assert.equal(
    new TextDecoder().decode(out.stdout),
    WORDS.slice(2).map((w) => `<${w}>\n`).join(""),
    "no word was split, expanded or executed",
  );
});

Deno.test("ProxyCommand: empty words and control characters are refused (exit 2)", () => {
  for (const bad of [[], [""], ["a\nb"], ["x", "\u0000"]]) {
    assert.throws(
      () => proxyCommandOption(bad),
      (e: unknown) => e instanceof CrabboxError && e.exitStatus === 2,
    );
  }
  assert.throws(
    () => validateSshTarget({ host: "h", port: 22, user: "u", proxyCommand: ["a\rb"] }),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 2,
  );
});

Deno.test("ssh argv carries -o ProxyCommand only for targets that have one", () => {
  const direct = sshCommandArgs({ host: "h", port: 22, user: "u" }, ["true"], {
    knownHostsFile: "/kh",
  });
  assert.ok(!direct.some((a) => a.startsWith("ProxyCommand=")));
  const proxied = sshCommandArgs(
    {
      host: "crabbox-api-0a",
      port: 22,
      user: "sprite",
      proxyCommand: ["/bin/crabbox", "proxy", "x"],
    },
    ["true"],
    { knownHostsFile: "/kh" },
  );
  const i = proxied.indexOf("ProxyCommand='/bin/crabbox' 'proxy' 'x'");
  assert.ok(i > 0 && proxied[i - 1] === "-o", proxied.join(" "));
  assert.ok(i < proxied.indexOf("--"), "an option, before the destination");
});

Deno.test("self argv: a compiled binary runs itself; deno runs the script with its config and only the proxy's permissions", () => {
  assert.deepEqual(
    selfArgv({ execPath: "/opt/crabbox/crabbox", cliModule: "file:///tmp/deno-compile/cli.ts" }),
    ["/opt/crabbox/crabbox"],
  );
  assert.deepEqual(
    selfArgv({
      execPath: "/usr/bin/deno",
      cliModule: "file:///src/my%20crabbox/cli.ts",
      configFile: "/src/my crabbox/deno.json",
    }),
    [
      "/usr/bin/deno",
      "run",
      "-q",
      "--no-prompt",
      "--allow-read",
      "--allow-env",
      "--allow-net",
      "--config",
      "/src/my crabbox/deno.json",
      "/src/my crabbox/cli.ts",
    ],
  );
  const argv = proxyArgv(
    {
      home: "/h",
      provider: "sprites",
      providerId: "crabbox-a-1",
      leaseId: "cbx-0123456789ab",
      port: 22,
    },
    { execPath: "/usr/bin/crabbox", cliModule: "file:///x.ts" },
  );
  assert.deepEqual(argv, [
    "/usr/bin/crabbox",
    "proxy",
    "--home",
    "/h",
    "--provider",
    "sprites",
    "--box",
    "crabbox-a-1",
    "--port",
    "22",
    "cbx-0123456789ab",
  ]);
  const me = currentInvocation();
  assert.equal(me.execPath, Deno.execPath());
  assert.equal(
    me.cliModule,
    new URL("../../cli.ts", import.meta.url).href,
    "crabbox's CLI, not this test",
  );
  assert.ok(me.configFile?.endsWith("/deno.json"), "finds the repo's deno.json above the script");
});
