/**
 * Google OAuth 2.0 for the `gcp` provider: a ready access token from
 * `GOOGLE_OAUTH_ACCESS_TOKEN`, or a service-account JSON key
 * (`GOOGLE_APPLICATION_CREDENTIALS`, else `gcp.credentialsFile`) whose RS256
 * JWT assertion is signed with WebCrypto and exchanged at the key's
 * `token_uri` for an access token, cached until shortly before it expires.
 * The pure halves (key parsing, claims, form body, response parsing) are
 * exported for tests; {@link gcpTokenSource} is the small effectful shell.
 *
 * @module
 */

import { decodeBase64, encodeBase64 } from "../../lib/core/base64.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { redact } from "../../lib/core/redact.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import { apiBaseUrl } from "../cloud/common.ts";

/** OAuth scope crabbox asks for. */
export const GCP_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

/** Refresh a cached token this long before it expires. */
const EARLY_REFRESH_MS = 60_000;

/** The fields of a service-account key file crabbox uses. */
export interface ServiceAccountKey {
  /** `client_email`: the JWT issuer. */
  clientEmail: string;
  /** PEM PKCS#8 private key. */
  privateKey: string;
  /** `private_key_id`, sent as the JWT `kid`. */
  privateKeyId?: string;
  /** Token endpoint (`token_uri`); also the JWT audience. */
  tokenUri: string;
  /** `project_id`, a fallback for the project. */
  projectId?: string;
}

/** Where the credentials came from, for messages (never the secret itself). */
export type GcpCredentialSource =
  | { kind: "token"; variable: "GOOGLE_OAUTH_ACCESS_TOKEN"; token: string }
  | { kind: "key"; variable: string; path: string };

/**
 * Which credentials to use: `GOOGLE_OAUTH_ACCESS_TOKEN` wins, then
 * `GOOGLE_APPLICATION_CREDENTIALS`, then config `gcp.credentialsFile`.
 *
 * @example
 * ```ts
 * import { gcpCredentialSource } from "./auth.ts";
 * gcpCredentialSource((k) => k === "GOOGLE_APPLICATION_CREDENTIALS" ? "/k.json" : undefined, {});
 * // { kind: "key", variable: "GOOGLE_APPLICATION_CREDENTIALS", path: "/k.json" }
 * ```
 */
export function gcpCredentialSource(
  env: EnvReader,
  config: Record<string, unknown>,
): GcpCredentialSource {
  const token = env("GOOGLE_OAUTH_ACCESS_TOKEN")?.trim();
  if (token) return { kind: "token", variable: "GOOGLE_OAUTH_ACCESS_TOKEN", token };
  const path = env("GOOGLE_APPLICATION_CREDENTIALS")?.trim();
  if (path) return { kind: "key", variable: "GOOGLE_APPLICATION_CREDENTIALS", path };
  const file = config.credentialsFile;
  if (typeof file === "string" && file.trim() !== "") {
    return { kind: "key", variable: "gcp.credentialsFile", path: file.trim() };
  }
  throw new CrabboxError(
    "credentials",
    "gcp_no_credentials",
    "GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_OAUTH_ACCESS_TOKEN) is not set",
    {
      hint:
        "point GOOGLE_APPLICATION_CREDENTIALS at a service-account JSON key, or export GOOGLE_OAUTH_ACCESS_TOKEN",
    },
  );
}

/**
 * Parse a service-account key file. Anything else (an ADC user file, junk)
 * is a credentials error naming `variable`, never quoting the file.
 */
export function parseServiceAccountKey(text: string, variable: string): ServiceAccountKey {
  const bad = (why: string) =>
    new CrabboxError(
      "credentials",
      "gcp_bad_key_file",
      `${variable} is not a usable service-account key: ${why}`,
      { hint: "download a JSON key for a service account (IAM → Service accounts → Keys)" },
    );
  let json: Record<string, unknown>;
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error();
    json = v;
  } catch {
    throw bad("not a JSON object");
  }
  if (json.type !== "service_account") throw bad(`type is not "service_account"`);
  const str = (k: string) => typeof json[k] === "string" && json[k] !== "" ? json[k] : undefined;
  const clientEmail = str("client_email");
  const privateKey = str("private_key");
  if (!clientEmail) throw bad("client_email is missing");
  if (!privateKey || !privateKey.includes("-----BEGIN PRIVATE KEY-----")) {
    throw bad("private_key is not a PEM PKCS#8 key");
  }
  const tokenUri = str("token_uri") ?? "https://oauth2.googleapis.com/token";
  apiBaseUrl(`token_uri in ${variable}`, tokenUri);
  return {
    clientEmail,
    privateKey,
    privateKeyId: str("private_key_id"),
    tokenUri,
    projectId: str("project_id"),
  };
}

function base64Url(bytes: Uint8Array): string {
  return encodeBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Base64url of a JSON value (a JWT segment). */
export function jwtSegment(value: unknown): string {
  return base64Url(new TextEncoder().encode(JSON.stringify(value)));
}

/**
 * The JWT claims of a token request: issuer, scope, audience = token URI,
 * issued now, valid one hour (Google's maximum).
 */
export function assertionClaims(key: ServiceAccountKey, nowMs: number): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000);
  return { iss: key.clientEmail, scope: GCP_SCOPE, aud: key.tokenUri, iat, exp: iat + 3600 };
}

/** PEM → DER bytes (empty when the body is not base64: the key import then fails). */
export function pemToDer(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "");
  return decodeBase64(b64) ?? new Uint8Array(0);
}

/** Sign a JWT assertion (RS256, WebCrypto). */
export async function signAssertion(key: ServiceAccountKey, nowMs: number): Promise<string> {
  let cryptoKey: CryptoKey;
  try {
    cryptoKey = await crypto.subtle.importKey(
      "pkcs8",
      pemToDer(key.privateKey),
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["sign"],
    );
  } catch {
    throw new CrabboxError(
      "credentials",
      "gcp_bad_key_file",
      "the service-account private_key is not an RSA PKCS#8 key",
    );
  }
  const header = {
    alg: "RS256",
    typ: "JWT",
    ...(key.privateKeyId ? { kid: key.privateKeyId } : {}),
  };
  const input = `${jwtSegment(header)}.${jwtSegment(assertionClaims(key, nowMs))}`;
  const sig = await crypto.subtle.sign(
    "RSASSA-PKCS1-v1_5",
    cryptoKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${base64Url(new Uint8Array(sig))}`;
}

/** The form body of the JWT-bearer token exchange. */
export function tokenRequestBody(assertion: string): string {
  return new URLSearchParams({
    grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
    assertion,
  }).toString();
}

/** A token and when it stops being usable (epoch ms). */
export interface CachedToken {
  /** Bearer token. */
  token: string;
  /** Expiry, epoch milliseconds. */
  expiresAt: number;
}

/**
 * Parse the token endpoint's answer. Errors (`{"error","error_description"}`)
 * are credentials errors naming `variable`.
 */
export function parseTokenResponse(
  status: number,
  text: string,
  variable: string,
  nowMs: number,
): CachedToken {
  let json: Record<string, unknown> = {};
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object") json = v;
  } catch { /* reported below */ }
  if (status >= 200 && status < 300 && typeof json.access_token === "string") {
    const ttl = typeof json.expires_in === "number" ? json.expires_in : 3600;
    return { token: json.access_token, expiresAt: nowMs + ttl * 1000 };
  }
  const code = typeof json.error === "string" ? json.error : `http_${status}`;
  const said = typeof json.error_description === "string" ? `: ${json.error_description}` : "";
  if (status >= 500 || status === 429) {
    throw new CrabboxError(
      "provider",
      "gcp_token_unavailable",
      `the Google token endpoint answered ${status} ${code}${said}`,
    );
  }
  throw new CrabboxError(
    "credentials",
    "gcp_auth",
    `Google rejected the service account in ${variable} (${status} ${code}${said})`,
    { hint: `check ${variable}: the key may be deleted, disabled or for another account` },
  );
}

/** Reads a text file (injectable for tests). */
export type TextReader = (path: string) => Promise<string>;

/** What {@link gcpTokenSource} needs. */
export interface TokenSourceDeps {
  /** Credentials choice. */
  source: GcpCredentialSource;
  /** fetch. */
  fetch: typeof fetch;
  /** File reader. */
  readFile: TextReader;
  /** Clock, epoch ms. */
  now: () => number;
}

/** Gives a bearer token for each call, and the variable to blame when it is rejected. */
export interface GcpTokenSource {
  /** A valid access token (cached until shortly before expiry). */
  token(signal?: AbortSignal): Promise<string>;
  /** The variable that holds the credentials (for error messages). */
  readonly variable: string;
  /** Forget the cached token (after a 401). */
  invalidate(): void;
  /** The key file's project_id, once the key was read. */
  projectId(): Promise<string | undefined>;
}

/**
 * The token shell: a fixed token, or a cached service-account exchange.
 *
 * @example
 * ```ts
 * import { gcpTokenSource } from "./auth.ts";
 * const src = gcpTokenSource({
 *   source: { kind: "token", variable: "GOOGLE_OAUTH_ACCESS_TOKEN", token: "ya29.x" },
 *   fetch, readFile: Deno.readTextFile, now: Date.now,
 * });
 * await src.token(); // "ya29.x"
 * ```
 */
export function gcpTokenSource(deps: TokenSourceDeps): GcpTokenSource {
  const { source } = deps;
  if (source.kind === "token") {
    return {
      variable: source.variable,
      token: () => Promise.resolve(source.token),
      invalidate: () => {},
      projectId: () => Promise.resolve(undefined),
    };
  }
  let key: ServiceAccountKey | undefined;
  let cached: CachedToken | undefined;
  const readKey = async () => {
    if (key) return key;
    let text: string;
    try {
      text = await deps.readFile(source.path);
    } catch (e) {
      throw new CrabboxError(
        "credentials",
        "gcp_bad_key_file",
        `cannot read the service-account key named by ${source.variable}: ${
          e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).name
        }`,
      );
    }
    return key = parseServiceAccountKey(text, source.variable);
  };
  return {
    variable: source.variable,
    invalidate: () => {
      cached = undefined;
    },
    projectId: async () => (await readKey()).projectId,
    async token(signal) {
      if (cached && cached.expiresAt - EARLY_REFRESH_MS > deps.now()) return cached.token;
      const k = await readKey();
      const assertion = await signAssertion(k, deps.now());
      let res: Response;
      try {
        res = await deps.fetch(k.tokenUri, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            accept: "application/json",
          },
          body: tokenRequestBody(assertion),
          signal,
        });
      } catch (e) {
        if (signal?.aborted) throw e;
        throw new CrabboxError(
          "provider",
          "gcp_unreachable",
          `cannot reach the Google token endpoint at ${new URL(k.tokenUri).host}`,
        );
      }
      const text = redact(await res.text(), [assertion]);
      cached = parseTokenResponse(res.status, text, source.variable, deps.now());
      return cached.token;
    },
  };
}
