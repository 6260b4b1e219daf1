import assert from "node:assert/strict";
import { CrabboxError } from "../../lib/core/errors.ts";
import { validateSshTarget } from "../../lib/ssh/args.ts";
import { HOST_KEY_TYPES, validateHostKey } from "../../lib/ssh/host_key.ts";
import { forgetHostKey, pinHostKeys, prepareKnownHosts } from "../../lib/ssh/known_hosts.ts";
import { fakeHostKey } from "./_host_key.ts";

/** A real `ssh-keygen -t ed25519` public key (type and blob only). */
const REAL_ED25519 =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFn1B57tPue0du4ZBTOPzZQRUcPtn6YtPZKvvQI6+ooq";

const isBadHostKey = (e: unknown) =>
  e instanceof CrabboxError && e.code === "bad_host_key" && e.exitStatus === 2;

/** Host key values that must never reach a known_hosts file. */
const BAD_KEYS: [string, string][] = [
  [`${REAL_ED25519}\n@cert-authority * ${REAL_ED25519}`, "newline: a second known_hosts line"],
  [`${REAL_ED25519}\r`, "carriage return"],
  [`${REAL_ED25519} root@box`, "comment"],
  [` ${REAL_ED25519}`, "leading space"],
  [`ssh-ed25519  ${REAL_ED25519.split(" ")[1]}`, "two spaces"],
  [fakeHostKey("ssh-dss"), "unknown key type"],
  [fakeHostKey("@cert-authority", "ssh-ed25519"), "marker as type"],
  [fakeHostKey("ssh-rsa", "ssh-ed25519"), "declared type differs from the blob's"],
  [fakeHostKey("ssh-ed25519", "ssh-ed25519x"), "blob type longer than declared"],
  ["ssh-ed25519 !!!!", "not base64"],
  ["ssh-ed25519 AAAA", "blob too short"],
  ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "type string without key data"],
  ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFn1B57=tPue0", "padding in the middle"],
  ["ssh-ed25519", "no key"],
  ["", "empty"],
];

Deno.test("validateHostKey: real keys and every known type pass", () => {
  assert.equal(validateHostKey(REAL_ED25519), REAL_ED25519);
  for (const type of HOST_KEY_TYPES) {
    const key = fakeHostKey(type);
    assert.equal(validateHostKey(key), key, type);
  }
});

Deno.test("validateHostKey: injection, unknown types and mismatching blobs are bad_host_key", () => {
  for (const [key, why] of BAD_KEYS) {
    assert.throws(() => validateHostKey(key), isBadHostKey, why);
  }
  // The error never echoes the value (it could be anything).
  try {
    validateHostKey(BAD_KEYS[0][0]);
  } catch (e) {
    assert.ok(!(e as Error).message.includes("cert-authority"));
  }
});

Deno.test("validateSshTarget: a host key with a second line is rejected", () => {
  const target = { host: "127.0.0.1", port: 2222, user: "root" };
  assert.equal(validateSshTarget({ ...target, hostKey: REAL_ED25519 }).hostKey, REAL_ED25519);
  for (const [key, why] of BAD_KEYS) {
    assert.throws(() => validateSshTarget({ ...target, hostKey: key }), isBadHostKey, why);
  }
});

Deno.test("pinHostKeys: an invalid key writes nothing (not even for the valid targets)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/crew/known_hosts`;
    const good = { host: "127.0.0.1", port: 2222, user: "root", hostKey: fakeHostKey() };
    await pinHostKeys([good], file);
    const before = await Deno.readTextFile(file);
    for (const [key, why] of BAD_KEYS) {
      const evil = { host: "127.0.0.2", port: 22, user: "root", hostKey: key };
      await assert.rejects(pinHostKeys([{ ...good, hostKey: fakeHostKey() }, evil], file), (e) => {
        assert.ok(isBadHostKey(e), why);
        return true;
      });
      await assert.rejects(prepareKnownHosts(evil, file), isBadHostKey);
    }
    assert.equal(await Deno.readTextFile(file), before);
    assert.ok(!before.includes("@cert-authority"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pinHostKeys: re-pinning a [host]:port replaces its old key, keeps other hosts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/known_hosts`;
    const [oldKey, newKey, otherKey, port22Key] = [1, 2, 3, 4].map(() => fakeHostKey());
    const a = { host: "10.0.0.5", port: 2222, user: "root" };
    const other = { host: "10.0.0.6", port: 2222, user: "root", hostKey: otherKey };
    const samePort22 = { host: "10.0.0.5", port: 22, user: "root", hostKey: port22Key };
    await pinHostKeys([{ ...a, hostKey: oldKey }, other, samePort22], file);
    // A line ssh itself may have written for the same host id, as a comma list.
    await Deno.writeTextFile(file, `[10.0.0.5]:2222,alias ${oldKey}\n`, { append: true });
    await prepareKnownHosts({ ...a, hostKey: newKey }, file);
    const lines = (await Deno.readTextFile(file)).split("\n").filter((l) => l !== "");
    assert.deepEqual(
      lines.toSorted(),
      [
        `10.0.0.5 ${port22Key}`,
        `[10.0.0.5]:2222 ${newKey}`,
        `[10.0.0.6]:2222 ${otherKey}`,
      ].toSorted(),
    );
    assert.ok(!lines.some((l) => l.includes(oldKey)), "the old key is no longer trusted");
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    // Pinning nothing leaves the file as it is; forgetting drops only that host id.
    await prepareKnownHosts({ ...a }, file);
    assert.equal((await Deno.readTextFile(file)).split("\n").filter((l) => l).length, 3);
    await forgetHostKey(file, "10.0.0.5", 2222);
    assert.deepEqual(
      (await Deno.readTextFile(file)).split("\n").filter((l) => l !== "").toSorted(),
      [`10.0.0.5 ${port22Key}`, `[10.0.0.6]:2222 ${otherKey}`].toSorted(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
