import assert from "node:assert/strict";
import { CrabboxError } from "../../../lib/core/errors.ts";
import { parseIni, resolveAwsAuth } from "../../../providers/aws/credentials.ts";
import { envOf } from "../cloud_helpers.ts";

const files = (map: Record<string, string>) => (path: string) => Promise.resolve(map[path]);

Deno.test("aws credentials: INI parsing", () => {
  const ini = parseIni(
    "# c\n[default]\naws_access_key_id = AKIA1\nAWS_SECRET_ACCESS_KEY=s1\n\n[profile dev]\nregion = eu-west-1\n; x\n",
  );
  assert.deepEqual(ini.default, { aws_access_key_id: "AKIA1", aws_secret_access_key: "s1" });
  assert.deepEqual(ini["profile dev"], { region: "eu-west-1" });
});

Deno.test("aws credentials: environment first, session token kept", async () => {
  const auth = await resolveAwsAuth(
    envOf({ AWS_ACCESS_KEY_ID: "AKIA1", AWS_SECRET_ACCESS_KEY: "sec", AWS_SESSION_TOKEN: "tok" }),
    files({}),
  );
  assert.deepEqual(auth.credentials, {
    accessKeyId: "AKIA1",
    secretAccessKey: "sec",
    sessionToken: "tok",
    source: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
  });
});

Deno.test("aws credentials: half-set environment names the missing variable", async () => {
  await assert.rejects(
    resolveAwsAuth(envOf({ AWS_ACCESS_KEY_ID: "AKIA1" }), files({})),
    (e: unknown) =>
      e instanceof CrabboxError && e.kind === "credentials" &&
      e.message.includes("AWS_SECRET_ACCESS_KEY is not set"),
  );
});

Deno.test("aws credentials: AWS_PROFILE from ~/.aws/credentials and region from ~/.aws/config", async () => {
  const auth = await resolveAwsAuth(
    envOf({ AWS_PROFILE: "dev", HOME: "/home/u" }),
    files({
      "/home/u/.aws/credentials":
        "[default]\naws_access_key_id=AKIADEF\naws_secret_access_key=x\n" +
        "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = devsecret\n",
      "/home/u/.aws/config": "[profile dev]\nregion = ap-southeast-2\n",
    }),
  );
  assert.equal(auth.credentials.accessKeyId, "AKIADEV");
  assert.equal(auth.credentials.source, "profile dev");
  assert.equal(auth.profileRegion, "ap-southeast-2");
  const def = await resolveAwsAuth(
    envOf({ HOME: "/h", AWS_SHARED_CREDENTIALS_FILE: "/c", AWS_CONFIG_FILE: "/k" }),
    files({
      "/c": "[default]\naws_access_key_id=A\naws_secret_access_key=B\n",
      "/k": "[default]\nregion=us-east-2\n",
    }),
  );
  assert.equal(def.credentials.source, "profile default");
  assert.equal(def.profileRegion, "us-east-2");
});

Deno.test("aws credentials: SSO/role profiles and missing profiles are clear errors", async () => {
  await assert.rejects(
    resolveAwsAuth(
      envOf({ AWS_PROFILE: "sso", HOME: "/h" }),
      files({ "/h/.aws/config": "[profile sso]\nsso_session = corp\nregion=eu-west-1\n" }),
    ),
    (e: unknown) =>
      e instanceof CrabboxError && /sso_session/.test(e.message) &&
      /export-credentials/.test(e.hint ?? ""),
  );
  await assert.rejects(
    resolveAwsAuth(envOf({ AWS_PROFILE: "nope", HOME: "/h" }), files({})),
    (e: unknown) => e instanceof CrabboxError && /AWS_PROFILE=nope/.test(e.message),
  );
  await assert.rejects(
    resolveAwsAuth(envOf({ HOME: "/h" }), files({})),
    (e: unknown) =>
      e instanceof CrabboxError && e.kind === "credentials" && /AWS_PROFILE/.test(e.hint ?? ""),
  );
});
