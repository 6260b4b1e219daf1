import assert from "node:assert/strict";
import {
  hostKeyPolicyOf,
  sshCommandArgs,
  sshDestination,
  sshForwardArgs,
  sshIdentityOf,
  validateSshTarget,
} from "../../lib/ssh/mod.ts";
import { CrabboxError } from "../../lib/core/mod.ts";

const kh = { knownHostsFile: "/tmp/kh" };
const usage = (e: unknown) => e instanceof CrabboxError && e.exitStatus === 2;

Deno.test("SshTarget: a user file (secret user) goes through -F, never argv", () => {
  const t = {
    host: "gw.example",
    port: 22,
    user: "",
    userFile: "/h/keys/cbx-0123456789ab/ssh_user.conf",
  };
  const args = sshCommandArgs(t, ["true"], kh);
  assert.deepEqual(args.slice(0, 2), ["-F", t.userFile]);
  assert.equal(args.at(-2), "gw.example", "destination is the bare host");
  assert.equal(sshDestination(t), "gw.example");
  assert.ok(!args.some((a) => a.includes("@")));
  const fwd = sshForwardArgs(t, [{ localPort: 51820, remotePort: 8080 }], kh);
  assert.equal(fwd.at(-1), "gw.example");
  assert.throws(() => validateSshTarget({ ...t, user: "token" }), usage);
  assert.throws(() => validateSshTarget({ ...t, userFile: "-oProxyCommand=x" }), usage);
  assert.deepEqual(sshCommandArgs({ host: "h", port: 22, user: "root" }, [], kh).slice(0, 2), [
    "-F",
    "none",
  ]);
});

Deno.test("SshTarget: identity crew / lease-key need a key file; user offers ssh's own identities", () => {
  const crew = { host: "h", port: 22, user: "root", keyPath: "/k/id_ed25519" };
  assert.equal(sshIdentityOf(crew), "crew");
  assert.ok(
    sshCommandArgs(crew, [], kh).join(" ").includes("-o IdentitiesOnly=yes -i /k/id_ed25519"),
  );
  const handed = {
    host: "h",
    port: 2222,
    user: "semaphore",
    identity: "lease-key" as const,
    keyPath: "/k/provider_key",
  };
  assert.ok(sshCommandArgs(handed, [], kh).includes("/k/provider_key"));
  assert.throws(() => validateSshTarget({ ...handed, keyPath: undefined }), usage);
  const own = { host: "h", port: 22, user: "me", identity: "user" as const };
  assert.equal(sshIdentityOf({ host: "h", port: 22, user: "me" }), "user");
  const args = sshCommandArgs(own, [], kh);
  assert.ok(
    !args.includes("-i") && !args.includes("IdentitiesOnly=yes"),
    "agent/default identities",
  );
});

Deno.test("SshTarget: host-key policy pinned needs a key and is strict; accept-new is trust on first use", () => {
  const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA";
  const strict = (t: Parameters<typeof sshCommandArgs>[0]) =>
    sshCommandArgs(t, [], kh).find((a) => a.startsWith("StrictHostKeyChecking="));
  assert.equal(
    strict({ host: "h", port: 22, user: "root", hostKey: key }),
    "StrictHostKeyChecking=yes",
  );
  assert.equal(hostKeyPolicyOf({ host: "h", port: 22, user: "root" }), "accept-new");
  assert.equal(strict({ host: "h", port: 22, user: "root" }), "StrictHostKeyChecking=accept-new");
  assert.equal(
    strict({ host: "h", port: 22, user: "root", hostKey: key, hostKeyPolicy: "accept-new" }),
    "StrictHostKeyChecking=accept-new",
  );
  assert.throws(
    () => validateSshTarget({ host: "h", port: 22, user: "root", hostKeyPolicy: "pinned" }),
    usage,
  );
});
