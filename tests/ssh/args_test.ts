import assert from "node:assert/strict";
import {
  assertSafeArg,
  MAX_CONTROL_PATH,
  sshCommandArgs,
  sshForwardArgs,
} from "../../lib/ssh/args.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { controlPathFor } from "../../lib/ssh/control.ts";
import { knownHostsPath } from "../../lib/core/home.ts";

const target = { host: "127.77.1.2", port: 22, user: "root", keyPath: "/h/keys/id" };

Deno.test("command argv: options, then --, destination, command", () => {
  assert.deepEqual(sshCommandArgs(target, ["hostname"], { knownHostsFile: "/h/kh" }), [
    "-F",
    "none",
    "-p",
    "22",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=3",
    "-o",
    "StrictHostKeyChecking=accept-new",
    "-o",
    "UserKnownHostsFile=/h/kh",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "ForwardAgent=no",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-i",
    "/h/keys/id",
    "-o",
    "ControlMaster=no",
    "-o",
    "ControlPath=none",
    "--",
    "root@127.77.1.2",
    "'hostname'",
  ]);
});

Deno.test("pinned host key switches to StrictHostKeyChecking=yes", () => {
  const args = sshCommandArgs({ ...target, hostKey: "ssh-ed25519 AAAAC3Nz" }, [], {
    knownHostsFile: "/h/kh",
  });
  assert.ok(args.includes("StrictHostKeyChecking=yes"));
  assert.ok(!args.includes("StrictHostKeyChecking=accept-new"));
});

Deno.test("forward argv: one process, all -L, master socket, -N, ExitOnForwardFailure", () => {
  const args = sshForwardArgs(target, [
    { localPort: 51820, remotePort: 8080 },
    { localPort: 51821, remotePort: 9090 },
  ], {
    knownHostsFile: "/h/kh",
    control: { master: "yes", path: "/h/cm/cbx-1" },
    logFile: "/h/log",
  });
  const tail = args.slice(args.indexOf("ControlMaster=yes") - 1);
  assert.deepEqual(tail, [
    "-o",
    "ControlMaster=yes",
    "-o",
    "ControlPath=/h/cm/cbx-1",
    "-o",
    "ControlPersist=no",
    "-N",
    "-o",
    "ExitOnForwardFailure=yes",
    "-E",
    "/h/log",
    "-L",
    "127.0.0.1:51820:127.0.0.1:8080",
    "-L",
    "127.0.0.1:51821:127.0.0.1:9090",
    "--",
    "root@127.77.1.2",
  ]);
  assert.ok(!args.includes("ControlMaster=auto"));
});

Deno.test("user-controlled strings never become options", () => {
  const bad = [
    { ...target, host: "-oProxyCommand=touch /tmp/x" },
    { ...target, host: "a b" },
    { ...target, host: "a\nb" },
    { ...target, user: "-l" },
    { ...target, user: "a@b" },
    { ...target, host: "" },
    { ...target, port: 0 },
    { ...target, keyPath: "-i" },
  ];
  for (const t of bad) {
    assert.throws(() => sshCommandArgs(t, ["true"], { knownHostsFile: "/h/kh" }), (e: unknown) => {
      assert.ok(e instanceof CrabboxError);
      assert.equal(e.exitStatus, 2);
      return true;
    }, JSON.stringify(t));
  }
  assert.throws(() => assertSafeArg("slug", "x\x7f"), CrabboxError);
});

Deno.test("control path fits the socket limit", async () => {
  assert.equal(await controlPathFor("/h", "cbx-0123456789ab"), "/h/cm/cbx-0123456789ab");
  const long = await controlPathFor("/" + "d".repeat(120), "cbx-0123456789ab");
  assert.ok(long.length <= MAX_CONTROL_PATH, long);
  assert.match(long, /^\/tmp\/cbx-cm-\d+\/[0-9a-f]{16}$/);
  assert.equal(knownHostsPath("/h", { crew: "c" }), "/h/crew/c/known_hosts");
  assert.equal(knownHostsPath("/h", {}), "/h/known_hosts");
});
