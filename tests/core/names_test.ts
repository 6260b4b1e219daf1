import assert from "node:assert/strict";
import {
  crewTag,
  isLeaseId,
  newLeaseId,
  normalizeCrewName,
  normalizeName,
  normalizeSlug,
  ownerFor,
  ownerSegment,
  roleOf,
} from "../../lib/core/names.ts";
import { CrabboxError } from "../../lib/core/errors.ts";

Deno.test("normalizeName follows the crew-name vectors", () => {
  const vectors: [string, string][] = [
    ["", ""],
    ["   ", ""],
    ["alpha", "alpha"],
    ["  Alpha  ", "alpha"],
    ["alpha-bravo", "alpha-bravo"],
    ["Alpha_Bravo Charlie", "alpha-bravo-charlie"],
    ["---alpha---", "alpha"],
    ["alpha//bravo??", "alpha-bravo"],
    ["crew!!", "crew"],
    ["123-abc", "123-abc"],
    ["Ünïcode Name", "n-code-name"],
  ];
  for (const [input, want] of vectors) assert.equal(normalizeName(input), want, input);
});

Deno.test("normalizeCrewName rejects empty and over-long names with usage errors", () => {
  for (const bad of ["!!", "", "   ", "a".repeat(42)]) {
    assert.throws(() => normalizeCrewName(bad), (e: unknown) => {
      assert.ok(e instanceof CrabboxError);
      assert.equal(e.exitStatus, 2);
      assert.match(e.message, /^--crew must/);
      return true;
    });
  }
  assert.equal(normalizeCrewName("a".repeat(41)), "a".repeat(41));
  assert.throws(() => normalizeSlug("??"), /--slug must contain at least one letter or digit/);
  for (const bad of ["-oProxyCommand=x", " -x", "a\nb", "a\u0000"]) {
    assert.throws(() => normalizeSlug(bad), /may not start with "-" or contain control characters/);
  }
  assert.equal(normalizeSlug("Worker 2"), "worker-2");
});

Deno.test("crew names are refused like slugs: a leading - or control characters are not normalized away", () => {
  for (const bad of ["-oProxyCommand=x", " -x", "a\nb", "pr\u001b[31m42", "a\u0000"]) {
    assert.throws(
      () => normalizeCrewName(bad),
      (e: unknown) =>
        e instanceof CrabboxError && e.exitStatus === 2 &&
        /^--crew .* may not start with "-" or contain control characters$/.test(e.message),
    );
  }
  assert.equal(normalizeCrewName("PR_42"), "pr-42");
});

Deno.test("normalization is linear: 10 000 separators in well under 50 ms", () => {
  const input = "alpha" + "_".repeat(10_000) + "pond";
  const start = performance.now();
  for (let i = 0; i < 10; i++) assert.equal(normalizeCrewName(input), "alpha-pond");
  const perCall = (performance.now() - start) / 10;
  assert.ok(perCall < 50, `took ${perCall} ms`);
});

Deno.test("roleOf strips one trailing -<digits>", () => {
  assert.equal(roleOf("worker-2"), "worker");
  assert.equal(roleOf("worker-12"), "worker");
  assert.equal(roleOf("worker"), "worker");
  assert.equal(roleOf("api-v2"), "api-v2");
  assert.equal(roleOf("42"), "42");
  assert.equal(roleOf("a-1-2"), "a-1");
});

Deno.test("lease ids are cbx- plus 12 lowercase hex", () => {
  const ids = new Set(Array.from({ length: 100 }, newLeaseId));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.ok(isLeaseId(id), id);
  assert.equal(isLeaseId("cbx-ABCDEF012345"), false);
  assert.equal(isLeaseId("cbx_0123456789ab"), false);
});

Deno.test("owner segments match the upstream vectors", async () => {
  const vectors: [string, string][] = [
    ["a@b", "a"],
    ["", "user"],
    ["!!", "user"],
    ["alice@example.com", "alice"],
    ["yossi.e@x.com", "yossi-e"],
    ["yossi.eliaz@incredibuild.com", "xyuoqa6"],
    ["yossi.elman@incredibuild.com", "zsyqxwa"],
    ["peter.steinberger@gmail.com", "ipbd66b"],
    ["steipete@gmail.com", "tgnm52z"],
    ["Alice.Smith+ci@example.com", "whznagk"],
    ["@example.com", "wjscrqc"],
  ];
  for (const [identity, want] of vectors) {
    assert.equal(await ownerSegment(identity), want, identity);
  }
});

Deno.test("owner identity order: CRABBOX_OWNER, GIT_AUTHOR_EMAIL, GIT_COMMITTER_EMAIL, git config", async () => {
  const env = (vars: Record<string, string>) => (k: string) => vars[k];
  const git = () => Promise.resolve("gitcfg@example.com\n");
  assert.equal(
    await ownerFor({ env: env({ CRABBOX_OWNER: "o@x", GIT_AUTHOR_EMAIL: "a@x" }), gitEmail: git }),
    "o",
  );
  assert.equal(
    await ownerFor({ env: env({ CRABBOX_OWNER: " ", GIT_AUTHOR_EMAIL: "a@x" }), gitEmail: git }),
    "a",
  );
  assert.equal(await ownerFor({ env: env({ GIT_COMMITTER_EMAIL: "c@x" }), gitEmail: git }), "c");
  assert.equal(await ownerFor({ env: env({}), gitEmail: git }), "gitcfg");
  assert.equal(
    await ownerFor({ env: env({}), gitEmail: () => Promise.resolve(undefined) }),
    "user",
  );
});

Deno.test("crewTag shape and length budget", () => {
  assert.equal(crewTag("alice", "PR 42"), "tag:cbx-crew-alice-pr-42");
  assert.equal(crewTag("", "alpha"), "tag:cbx-crew-user-alpha");
  const longest = crewTag("abcdefg", "x".repeat(41));
  assert.equal(longest.length, 62);
  assert.match(longest, /^tag:[A-Za-z][A-Za-z0-9-]*$/);
});
