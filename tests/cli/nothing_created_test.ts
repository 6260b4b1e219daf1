// Issue 10: "exit 2 means nothing was created". Every bad input class is
// refused before the first file or directory is written: a fresh
// CRABBOX_HOME has exactly the files it had before (claims, crew key,
// known_hosts, ssh-hosts claims, locks — none).
import assert from "node:assert/strict";
import { tree } from "./_cli.ts";
import { main } from "../../cli.ts";
import { memoryProvider } from "../fakes/memory_provider.ts";
import { fakeProcess, fakeSshKeygen } from "../fakes/process.ts";

/** Run the CLI on a fresh home holding only `config` (as config.yaml) and `files`. */
async function runFresh(
  args: string[],
  config = "",
  files: Record<string, string> = {},
): Promise<{ code: number; stderr: string; created: string[] }> {
  const home = await Deno.makeTempDir({ prefix: "cbx-nothing-" });
  try {
    await Deno.chmod(home, 0o700);
    if (config) await Deno.writeTextFile(`${home}/config.yaml`, config);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${home}/${name}`, text);
    }
    const before = await tree(home);
    let stderr = "";
    const code = await main(args.map((a) => a.replaceAll("$HOME", home)), {
      stdout: () => {},
      stderr: (t) => stderr += t,
      home,
      env: (k) =>
        ({ CRABBOX_OWNER: "tester", CRABBOX_CREW_ACL: "off", HOME: home } as Record<
          string,
          string
        >)[k],
      providers: { memory: memoryProvider("memory", ["tailscale", "cloud-init"]) },
      process: fakeProcess({
        "ssh-keygen": fakeSshKeygen,
        ssh: () => ({ code: 255, stderr: "fake ssh: nothing here\n" }),
      }),
      fetch: () => Promise.reject(new Error("no network in this test")),
    });
    const after = await tree(home);
    return { code, stderr, created: after.filter((f) => !before.includes(f)) };
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

const sshHosts = (entry: string) => `provider: ssh\nssh:\n  hosts:\n    - ${entry}\n`;

const CASES: {
  what: string;
  args: string[];
  config?: string;
  files?: Record<string, string>;
  code: number;
  line: RegExp;
}[] = [
  // names
  {
    what: "crew name with a leading -",
    args: ["warmup", "--crew=-x", "--slug", "a", "--provider", "memory"],
    code: 2,
    line: /--crew "-x" may not start with "-"/,
  },
  {
    what: "crew name with a control character",
    args: ["warmup", "--crew", "a\u0007b", "--slug", "a", "--provider", "memory"],
    code: 2,
    line: /--crew/,
  },
  {
    what: "slug with a leading -",
    args: ["warmup", "--crew", "c", "--slug=-a", "--provider", "memory"],
    code: 2,
    line: /slug/,
  },
  {
    what: "--slug and --role together",
    args: ["warmup", "--crew", "c", "--slug", "a", "--role", "w", "--provider", "memory"],
    code: 2,
    line: /--slug or --role/,
  },
  // ports
  {
    what: "--expose out of range",
    args: ["warmup", "--crew", "c", "--slug", "a", "--expose", "99999", "--provider", "memory"],
    code: 2,
    line: /--expose "99999"/,
  },
  {
    what: "--expose not a number",
    args: ["warmup", "--crew", "c", "--slug", "a", "--expose", "http", "--provider", "memory"],
    code: 2,
    line: /--expose "http"/,
  },
  // shape flags
  {
    what: "--type on a provider without shapes",
    args: ["warmup", "--crew", "c", "--slug", "a", "--type", "cx22", "--provider", "memory"],
    code: 2,
    line: /--type/,
  },
  // lifetime
  {
    what: "--ttl not a duration",
    args: ["warmup", "--crew", "c", "--slug", "a", "--ttl", "5x", "--provider", "memory"],
    code: 2,
    line: /--ttl "5x"/,
  },
  {
    what: "--idle-timeout not a duration",
    args: [
      "warmup",
      "--crew",
      "c",
      "--slug",
      "a",
      "--idle-timeout",
      "soon",
      "--provider",
      "memory",
    ],
    code: 2,
    line: /--idle-timeout "soon"/,
  },
  // provider and features
  {
    what: "unknown provider",
    args: ["warmup", "--crew", "c", "--slug", "a", "--provider", "nope"],
    code: 2,
    line: /unknown provider "nope"/,
  },
  {
    what: "--init that cannot be read",
    args: [
      "warmup",
      "--crew",
      "c",
      "--slug",
      "a",
      "--init",
      "$HOME/none.sh",
      "--provider",
      "memory",
    ],
    code: 2,
    line: /--init/,
  },
  // the ssh provider's host inventory (config.yaml)
  {
    what: "ssh host starting with -",
    args: ["warmup", "--crew", "c", "--slug", "a"],
    config: sshHosts(`{ name: r1, host: "-oProxyCommand=x", user: ci }`),
    code: 2,
    line: /host "-oProxyCommand=x" is not allowed/,
  },
  {
    what: "ssh user with a space",
    args: ["warmup", "--crew", "c", "--slug", "a"],
    config: sshHosts(`{ name: r1, host: 127.0.0.1, user: "a b" }`),
    code: 2,
    line: /user "a b" is not allowed/,
  },
  {
    what: "ssh identity file with a space",
    args: ["warmup", "--crew", "c", "--slug", "a"],
    config: sshHosts(`{ name: r1, host: 127.0.0.1, identityFile: "/no/such key" }`),
    code: 2,
    line: /identity file "\/no\/such key" is not allowed/,
  },
  {
    what: "ssh pinned host key that is not TYPE BASE64",
    args: ["warmup", "--crew", "c", "--slug", "a"],
    config: sshHosts(`{ name: r1, host: 127.0.0.1, hostKey: garbage }`),
    code: 2,
    line: /host key/,
  },
  {
    what: "ssh host name unusable as a file name",
    args: ["warmup", "--crew", "c", "--slug", "a"],
    config: sshHosts(`{ name: "bad name!", host: 127.0.0.1 }`),
    code: 11,
    line: /ssh host name "bad name!" is invalid/,
  },
  {
    what: "ssh port out of range",
    args: ["warmup", "--crew", "c", "--slug", "a"],
    config: sshHosts(`{ name: r1, host: 127.0.0.1, port: 70000 }`),
    code: 11,
    line: /port must be 1\.\.65535/,
  },
  {
    what: "ssh provider with no hosts",
    args: ["warmup", "--crew", "c", "--slug", "a"],
    config: "provider: ssh\nssh:\n  hosts: []\n",
    code: 11,
    line: /the ssh provider has no hosts/,
  },
  // a bad second host is caught before the good first one is claimed
  {
    what: "ssh inventory with one bad host among good ones",
    args: ["warmup", "--crew", "c", "--slug", "a"],
    config:
      `provider: ssh\nssh:\n  hosts:\n    - { name: r1, host: 127.0.0.1 }\n    - { name: r2, host: "bad host" }\n`,
    code: 2,
    line: /host "bad host" is not allowed/,
  },
  // crews as code
  {
    what: "crew up with a bad member",
    args: ["crew", "up", "-f", "$HOME/crew.yaml"],
    files: {
      "crew.yaml": "crew: c\nmembers:\n  - { slug: a, provider: memory, expose: [99999] }\n",
    },
    code: 2,
    line: /99999/,
  },
];

for (const c of CASES) {
  Deno.test(`nothing created on bad input: ${c.what} → exit ${c.code}, one line, no new file or dir`, async () => {
    const r = await runFresh(c.args, c.config, c.files);
    assert.equal(r.code, c.code, r.stderr);
    const lines = r.stderr.trimEnd().split("\n");
    assert.match(lines[0], /^crabbox: /);
    assert.match(lines[0], c.line);
    assert.ok(lines.slice(1).every((l) => l.startsWith("hint: ")), r.stderr);
    assert.deepEqual(r.created, [], `created: ${r.created.join(", ")}`);
  });
}
