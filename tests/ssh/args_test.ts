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
import { fakeHostKey } from "./_host_key.ts";

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
  const args = sshCommandArgs({ ...target, hostKey: fakeHostKey() }, [], {
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

Deno.test("user-controlled strings never become options: each vector fails on its own rule", () => {
  const bad: [typeof target & { hostKey?: string }, string][] = [
    [{ ...target, host: "-oProxyCommand=x" }, "unsafe_host"], // leading dash, no space
    [{ ...target, host: "-oProxyCommand=touch /tmp/x" }, "unsafe_host"],
    [{ ...target, host: "a b" }, "unsafe_host"],
    [{ ...target, host: "a\nb" }, "unsafe_host"],
    [{ ...target, host: "a\x7f" }, "unsafe_host"],
    [{ ...target, host: "" }, "unsafe_host"],
    [{ ...target, user: "-l" }, "unsafe_user"],
    [{ ...target, user: "-oProxyCommand=x" }, "unsafe_user"],
    [{ ...target, user: "a@b" }, "unsafe_user"],
    [{ ...target, user: "a:b" }, "unsafe_user"],
    [{ ...target, port: 0 }, "bad_port"],
    [{ ...target, port: 65536 }, "bad_port"],
    [{ ...target, port: 22.5 }, "bad_port"],
    [{ ...target, keyPath: "-i" }, "unsafe_identity_file"],
    [{ ...target, keyPath: "-oProxyCommand=x" }, "unsafe_identity_file"],
    [{ ...target, hostKey: "ssh-ed25519 AAAAC3Nz" }, "bad_host_key"],
  ];
  for (const [t, code] of bad) {
    assert.throws(() => sshCommandArgs(t, ["true"], { knownHostsFile: "/h/kh" }), (e: unknown) => {
      assert.ok(e instanceof CrabboxError);
      assert.equal(e.code, code, JSON.stringify(t));
      assert.equal(e.exitStatus, 2);
      return true;
    }, JSON.stringify(t));
  }
  assert.deepEqual(
    sshCommandArgs({ ...target, port: 65535 }, [], { knownHostsFile: "/h/kh" }).slice(2, 4),
    ["-p", "65535"],
  );
  const rule = (value: string) => {
    try {
      assertSafeArg("slug", value);
      return "ok";
    } catch (e) {
      return (e as CrabboxError).code;
    }
  };
  for (const v of ["x\x7f", "-x", "", "a b", "a\tb", "a\x00b"]) {
    assert.equal(rule(v), "unsafe_slug", v);
  }
  assert.equal(rule("x-y"), "ok");
});

Deno.test("forward ports must be 1..65535", () => {
  const opts = { knownHostsFile: "/h/kh", control: { master: "yes" as const, path: "/h/cm" } };
  for (const [localPort, remotePort] of [[65536, 80], [80, 65536], [0, 80], [80, 1.5]]) {
    assert.throws(
      () => sshForwardArgs(target, [{ localPort, remotePort }], opts),
      (e: unknown) => e instanceof CrabboxError && e.code === "bad_port",
      `${localPort}:${remotePort}`,
    );
  }
  assert.ok(
    sshForwardArgs(target, [{ localPort: 65535, remotePort: 65535 }], opts)
      .includes("127.0.0.1:65535:127.0.0.1:65535"),
  );
});

Deno.test("control path fits the socket limit", async () => {
  assert.equal(await controlPathFor("/h", "cbx-0123456789ab"), "/h/cm/cbx-0123456789ab");
  const long = await controlPathFor("/" + "d".repeat(120), "cbx-0123456789ab");
  assert.ok(long.length <= MAX_CONTROL_PATH, long);
  assert.match(long, /^\/tmp\/cbx-cm-\d+\/[0-9a-f]{16}$/);
  assert.equal(knownHostsPath("/h", { crew: "c" }), "/h/crew/c/known_hosts");
  assert.equal(knownHostsPath("/h", {}), "/h/known_hosts");
});
