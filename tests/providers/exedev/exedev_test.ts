import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/mod.ts";
import {
  commandLine,
  exedevError,
  exedevSettings,
  exedevToken,
  exedevVmName,
  newCommand,
  parseVm,
  parseVmList,
  rmCommand,
  vmSshEndpoint,
} from "../../../providers/exedev/api.ts";
import { createExedevProvider } from "../../../providers/exedev/provider.ts";
import { decodeFlatTags } from "../../../providers/cloud/mod.ts";
import { type FakeExedevOptions, lexCommand, startFakeExedev } from "../../fakes/exedev.ts";
import { envOf, fakePublicKey, sleepRecorder, specFor, sshRecorder } from "../cloud_helpers.ts";
import type { CloudProviderOptions } from "../../../providers/cloud/mod.ts";

function setup(
  fakeOptions: FakeExedevOptions = {},
  options: CloudProviderOptions = {},
  config: Record<string, unknown> = {},
) {
  const fake = startFakeExedev(fakeOptions);
  const ssh = sshRecorder();
  const sleeps = sleepRecorder();
  const provider = createExedevProvider({
    home: "/tmp/cbx-exedev-test",
    env: envOf({ EXE_TOKEN: fake.token, CRABBOX_EXEDEV_API_URL: fake.url, HOME: "/home/alice" }),
    config,
    fetch,
    log: () => {},
  }, { waitForSsh: ssh.waitForSsh, sleep: sleeps.sleep, pollIntervalMs: 1, ...options });
  return { fake, ssh, sleeps, provider };
}

async function rejectsWith(p: Promise<unknown>, check: (e: CrabboxError) => void) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CrabboxError, `expected CrabboxError, got ${e}`);
    check(e);
    return true;
  });
}

Deno.test("exe.dev api: names never end in -<digits>; words are quoted for exe.dev's lexer", () => {
  assert.equal(
    exedevVmName({ slug: "api", leaseId: "cbx-0123456789ab" }),
    "crabbox-api-0123456789ab",
  );
  assert.equal(
    exedevVmName({ slug: "api", leaseId: "cbx-012345678901" }),
    "crabbox-api-012345678901x",
  );
  for (let i = 0; i < 200; i++) {
    const hex = Array.from({ length: 12 }, () => "0123456789"[Math.floor(Math.random() * 10)]).join(
      "",
    );
    assert.doesNotMatch(exedevVmName({ slug: "db-2", leaseId: `cbx-${hex}` }), /-[0-9]+$/);
  }
  const words = ["new", "--name", "it's a 'name'", "$(id)", "a\\b", 'q"q', "plain-1"];
  assert.deepEqual(lexCommand(commandLine(words)), words, "the fake's lexer gets the words back");
  assert.equal(rmCommand("crabbox-a-0a"), "rm crabbox-a-0a --json");
});

Deno.test("exe.dev api: the new command carries flat tags, settings and --json; answers parse", () => {
  const spec = specFor("api", "pr-42", fakePublicKey());
  const s = exedevSettings(envOf({ HOME: "/home/a" }), { memory: "8GB", cpu: "4" });
  assert.equal(s.identityFile, "/home/a/.ssh/id_ed25519");
  const argv = lexCommand(newCommand(spec, s))!;
  assert.deepEqual(argv.slice(0, 5), ["new", "--name", exedevVmName(spec), "--json", "--no-email"]);
  const tags = argv.flatMap((w, i) => argv[i - 1] === "--tag" ? [w] : []);
  assert.deepEqual(decodeFlatTags(tags), spec.labels);
  for (const t of tags) assert.match(t, /^[a-z0-9-]+$/);
  assert.ok(argv.includes("8GB") && argv.includes("4"));
  assert.throws(
    () => exedevSettings(envOf({}), { memory: "lots" }),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 11,
  );
  assert.equal(parseVm({ vm: { vm_name: "x", status: "running" } }).name, "x");
  assert.equal(parseVmList({ vms: [] }).length, 0);
  assert.deepEqual(vmSshEndpoint(parseVm({ vm_name: "p", ssh_dest: "vm+p@vm.exe.xyz" })), {
    host: "vm.exe.xyz",
    user: "vm+p",
  });
  assert.deepEqual(vmSshEndpoint(parseVm({ vm_name: "b", ssh_dest: "b.exe.xyz" })), {
    host: "b.exe.xyz",
    user: undefined,
  });
  assert.equal(exedevError("VM x not found", "rm").exitStatus, 3);
  assert.equal(exedevError("no capacity in lon", "new").exitStatus, 4);
  assert.deepEqual(exedevToken(envOf({ EXE_TOKEN: "t" })), { token: "t", variable: "EXE_TOKEN" });
  assert.throws(
    () => exedevToken(envOf({})),
    (e: unknown) => e instanceof CrabboxError && e.exitStatus === 9,
  );
});

Deno.test("exe-dev: create → list (client-side tag filter) → delete; ssh with the user's own key at ssh_dest", async () => {
  const { fake, ssh, provider } = setup({
    foreign: [{
      vm_name: "personal",
      ssh_dest: "vm+personal@vm.exe.xyz",
      status: "running",
      tags: ["crabbox-crew-x"],
      flags: {},
    }],
  });
  await using _ = fake;
  const spec = specFor("api", "x", fakePublicKey());
  const lease = await provider.create(spec);
  assert.equal(lease.ssh?.host, `${exedevVmName(spec)}.exe.xyz`);
  assert.equal(lease.ssh?.user, "root");
  assert.equal(
    lease.ssh?.keyPath,
    "/home/alice/.ssh/id_ed25519",
    "the user's own identity, not the crew key",
  );
  assert.equal(ssh.calls.length, 1);
  assert.ok(
    fake.requests.every((r) =>
      r.method === "POST" && r.path === "/exec" && r.headers.authorization === "[redacted]"
    ),
  );
  const listed = await provider.list({ crew: "x" });
  assert.deepEqual(
    listed.map((l) => l.providerId),
    [lease.providerId],
    "the foreign VM is not listed",
  );
  assert.equal((await provider.list({ crew: "y" })).length, 0);
  await rejectsWith(
    provider.delete({ ...lease, leaseId: "cbx-ffffffffffff" }),
    (e) => assert.equal(e.code, "exedev_not_ours"),
  );
  await provider.delete(lease);
  await provider.delete(lease);
  assert.deepEqual([...fake.vms.keys()], ["personal"]);
});

Deno.test("exe-dev: --tailscale is refused; a bad token exits 9 naming EXE_TOKEN; errors keep exe.dev's words", async () => {
  const { fake, provider } = setup();
  await using _ = fake;
  await rejectsWith(
    provider.create({ ...specFor("a", "x", fakePublicKey()), tailscale: true }),
    (e) => assert.equal(e.exitStatus, 2),
  );
  const bad = createExedevProvider({
    home: "/tmp/x",
    env: envOf({ EXE_TOKEN: "exe1.wrong-token", CRABBOX_EXEDEV_API_URL: fake.url }),
    config: {},
    fetch,
    log: () => {},
  }, { waitForSsh: false });
  await rejectsWith(bad.list({}), (e) => {
    assert.equal(e.exitStatus, 9);
    assert.match(e.message, /EXE_TOKEN/);
    assert.ok(!e.message.includes("exe1.wrong-token"));
  });
  fake.inject({ verb: "new", error: "quota exceeded: 10 VMs per account" });
  await rejectsWith(provider.create(specFor("a", "x", fakePublicKey())), (e) => {
    assert.equal(e.exitStatus, 4);
    assert.match(e.message, /10 VMs per account/);
  });
});
