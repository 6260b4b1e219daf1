/**
 * AWS credentials and region the way the AWS CLI finds the common cases:
 * `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else a
 * profile (`AWS_PROFILE`, default `default`) from `~/.aws/credentials` and
 * `~/.aws/config` (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`). SSO,
 * `role_arn` and `credential_process` profiles are reported, not run.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { EnvReader } from "../../lib/core/fs.ts";

/** Static credentials. `source` names where they came from, never their values. */
export interface AwsCredentials {
  /** Access key id. */
  accessKeyId: string;
  /** Secret access key. */
  secretAccessKey: string;
  /** Session token of temporary credentials. */
  sessionToken?: string;
  /** Human-readable origin, e.g. `AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY` or `profile dev`. */
  source: string;
}

/** Credentials plus the region the profile names, if any. */
export interface AwsAuth {
  /** The credentials. */
  credentials: AwsCredentials;
  /** `region` of the profile in the config file. */
  profileRegion?: string;
}

/** Reads a text file; `undefined` when it does not exist. */
export type TextReader = (path: string) => Promise<string | undefined>;

/** The real file reader. */
export const readTextIfExists: TextReader = async (path) => {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
};

/**
 * Parse an INI file as the AWS CLI writes it: `[section]`, `key = value`,
 * `#`/`;` comments. Keys are lowercased; later duplicates win.
 *
 * @example
 * ```ts
 * import { parseIni } from "./credentials.ts";
 * parseIni("[default]\naws_access_key_id = AKIA…\n").default.aws_access_key_id; // "AKIA…"
 * ```
 */
export function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const head = line.match(/^\[\s*([^\]]+?)\s*\]$/);
    if (head) {
      section = out[head[1]] ??= {};
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0 && section && !/^\s/.test(raw)) {
      section[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
    }
  }
  return out;
}

function credentialsError(message: string, hint: string): CrabboxError {
  return new CrabboxError("credentials", "aws_no_credentials", message, { hint });
}

/**
 * Resolve credentials and the profile's region.
 *
 * @example
 * ```ts
 * import { resolveAwsAuth } from "./credentials.ts";
 * const env = { AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "secret" } as Record<string, string>;
 * const auth = await resolveAwsAuth((k) => env[k]);
 * auth.credentials.source; // "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
 * ```
 */
export async function resolveAwsAuth(
  env: EnvReader,
  read: TextReader = readTextIfExists,
): Promise<AwsAuth> {
  const id = env("AWS_ACCESS_KEY_ID")?.trim();
  const secret = env("AWS_SECRET_ACCESS_KEY")?.trim();
  const token = env("AWS_SESSION_TOKEN")?.trim() || undefined;
  const explicitProfile = env("AWS_PROFILE")?.trim() || undefined;
  if (id || secret) {
    if (!id || !secret) {
      throw credentialsError(
        `${id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID"} is not set but ${
          id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY"
        } is`,
        "export both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys)",
      );
    }
    return {
      credentials: {
        accessKeyId: id,
        secretAccessKey: secret,
        sessionToken: token,
        source: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
      },
      profileRegion: undefined,
    };
  }
  const profile = explicitProfile ?? "default";
  const home = env("HOME")?.trim() ?? "";
  const credPath = env("AWS_SHARED_CREDENTIALS_FILE")?.trim() || `${home}/.aws/credentials`;
  const configPath = env("AWS_CONFIG_FILE")?.trim() || `${home}/.aws/config`;
  const creds = parseIni((await read(credPath)) ?? "")[profile] ?? {};
  const configIni = parseIni((await read(configPath)) ?? "");
  const conf = configIni[profile === "default" ? "default" : `profile ${profile}`] ??
    configIni[profile] ?? {};
  const merged = { ...conf, ...creds };
  if (merged.aws_access_key_id && merged.aws_secret_access_key) {
    return {
      credentials: {
        accessKeyId: merged.aws_access_key_id,
        secretAccessKey: merged.aws_secret_access_key,
        sessionToken: merged.aws_session_token || undefined,
        source: `profile ${profile}`,
      },
      profileRegion: conf.region || undefined,
    };
  }
  const dynamic = ["role_arn", "sso_session", "sso_start_url", "credential_process"]
    .find((k) => merged[k]);
  if (dynamic) {
    throw credentialsError(
      `AWS profile ${profile} uses ${dynamic}, which crabbox does not run`,
      `export static credentials: eval "$(aws configure export-credentials --profile ${profile} --format env)"`,
    );
  }
  if (explicitProfile) {
    throw credentialsError(
      `AWS_PROFILE=${profile} has no aws_access_key_id/aws_secret_access_key in ${credPath} or ${configPath}`,
      "run `aws configure --profile " + profile +
        "` or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
    );
  }
  throw credentialsError(
    "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and there is no default profile",
    "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or set AWS_PROFILE",
  );
}
