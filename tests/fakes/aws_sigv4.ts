/**
 * An independent AWS Signature Version 4 verifier for the fake EC2 server,
 * written from the published algorithm with WebCrypto (it shares no code
 * with `aws4fetch`): canonical request → string to sign → HMAC chain →
 * signature, plus the structural checks AWS makes first (header shape,
 * credential scope, signed headers, `X-Amz-Date` freshness, session token).
 *
 * @module
 */

/** One set of credentials the fake accepts. */
export interface SigV4Keys {
  /** Access key id. */
  accessKeyId: string;
  /** Secret access key. */
  secretAccessKey: string;
  /** Session token that must accompany the key (temporary credentials). */
  sessionToken?: string;
}

/** Why a request was rejected, as EC2 reports it. */
export interface SigV4Failure {
  /** HTTP status. */
  status: number;
  /** EC2 error code. */
  code: string;
  /** EC2 error message. */
  message: string;
}

/** What the verifier needs from a request. */
export interface SignedRequest {
  /** HTTP method. */
  method: string;
  /** Full URL as received. */
  url: URL;
  /** Headers as received. */
  headers: Headers;
  /** Raw body bytes. */
  body: Uint8Array;
}

const enc = new TextEncoder();

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

async function hmac(key: Uint8Array | string, data: string): Promise<Uint8Array> {
  const raw = typeof key === "string" ? enc.encode(key) : key;
  const k = await crypto.subtle.importKey(
    "raw",
    raw as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(data)));
}

/** RFC 3986 percent-encoding of one component (unreserved: A-Z a-z 0-9 - _ . ~). */
export function uriEncode(s: string): string {
  return Array.from(enc.encode(s), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }).join("");
}

/** The canonical request of the SigV4 spec for a non-S3 service. */
export async function canonicalRequest(
  req: SignedRequest,
  signedHeaders: readonly string[],
): Promise<string> {
  const path = req.url.pathname.replace(/\/+/g, "/").split("/")
    .map((seg) => uriEncode(decodeURIComponent(seg))).map(uriEncode).join("/") || "/";
  const query = [...req.url.searchParams]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort(([a, av], [b, bv]) => a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0)
    .map(([k, v]) => `${k}=${v}`).join("&");
  const headers = signedHeaders.map((h) =>
    `${h}:${(req.headers.get(h) ?? "").trim().replace(/\s+/g, " ")}\n`
  ).join("");
  return [
    req.method.toUpperCase(),
    path,
    query,
    headers,
    signedHeaders.join(";"),
    await sha256Hex(req.body),
  ].join("\n");
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/;
const CREDENTIALS_INVALID = "AWS was not able to validate the provided access credentials";

/**
 * Verify a SigV4-signed request; `undefined` when it is valid.
 *
 * @example
 * ```ts
 * import { verifySigV4 } from "./aws_sigv4.ts";
 * const failure = await verifySigV4(
 *   { method: "POST", url: new URL("http://127.0.0.1/"), headers: new Headers(), body: new Uint8Array() },
 *   { keys: [], region: "eu-central-1", service: "ec2", nowMs: Date.now(), maxSkewMs: 300_000 },
 * );
 * failure?.code; // "MissingAuthenticationToken"
 * ```
 */
export async function verifySigV4(
  req: SignedRequest,
  opts: {
    keys: readonly SigV4Keys[];
    region: string;
    service: string;
    nowMs: number;
    maxSkewMs: number;
  },
): Promise<SigV4Failure | undefined> {
  const fail = (status: number, code: string, message: string): SigV4Failure => ({
    status,
    code,
    message,
  });
  const auth = req.headers.get("authorization");
  if (!auth) {
    return fail(401, "MissingAuthenticationToken", "Request is missing Authentication Token");
  }
  const m = auth.match(AUTH);
  if (!m) {
    return fail(
      400,
      "IncompleteSignature",
      "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters",
    );
  }
  const [, credential, signedList, signature] = m;
  const scope = credential.split("/");
  if (scope.length !== 5 || scope[4] !== "aws4_request") {
    return fail(
      400,
      "IncompleteSignature",
      "Credential must have exactly 5 slash-separated components",
    );
  }
  const [akid, day, region, service] = scope;
  const key = opts.keys.find((k) => k.accessKeyId === akid);
  if (!key) return fail(401, "AuthFailure", CREDENTIALS_INVALID);
  const amzDate = req.headers.get("x-amz-date") ?? "";
  const dm = amzDate.match(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/);
  if (!dm) return fail(400, "IncompleteSignature", "X-Amz-Date header must be present and valid");
  const signedAt = Date.UTC(+dm[1], +dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]);
  if (Math.abs(opts.nowMs - signedAt) > opts.maxSkewMs) {
    return fail(400, "RequestExpired", `Request has expired. Timestamp date is ${amzDate}`);
  }
  if (day !== amzDate.slice(0, 8)) {
    return fail(401, "AuthFailure", `Credential should be scoped to a valid date, not '${day}'`);
  }
  if (region !== opts.region) {
    return fail(
      401,
      "AuthFailure",
      `Credential should be scoped to a valid region, not '${region}'`,
    );
  }
  if (service !== opts.service) {
    return fail(
      401,
      "AuthFailure",
      `Credential should be scoped to correct service: '${opts.service}'`,
    );
  }
  const signed = signedList.split(";");
  const sorted = [...signed].sort();
  if (signed.some((h) => h !== h.toLowerCase()) || signed.join(";") !== sorted.join(";")) {
    return fail(400, "IncompleteSignature", "SignedHeaders must be lowercase and sorted");
  }
  for (const required of ["host", "x-amz-date"]) {
    if (!signed.includes(required)) {
      return fail(400, "IncompleteSignature", `SignedHeaders must include '${required}'`);
    }
  }
  const token = req.headers.get("x-amz-security-token");
  if (token !== null && !signed.includes("x-amz-security-token")) {
    return fail(400, "IncompleteSignature", "SignedHeaders must include 'x-amz-security-token'");
  }
  if ((key.sessionToken ?? null) !== token) {
    return fail(401, "AuthFailure", CREDENTIALS_INVALID);
  }
  const canonical = await canonicalRequest(req, signed);
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    `${day}/${region}/${service}/aws4_request`,
    await sha256Hex(canonical),
  ].join("\n");
  let k = await hmac(`AWS4${key.secretAccessKey}`, day);
  k = await hmac(k, region);
  k = await hmac(k, service);
  k = await hmac(k, "aws4_request");
  const expected = hex((await hmac(k, stringToSign)).buffer as ArrayBuffer);
  let diff = expected.length ^ signature.length;
  for (let i = 0; i < expected.length; i++) {
    diff |= expected.charCodeAt(i) ^ signature.charCodeAt(i);
  }
  if (diff !== 0) return fail(401, "AuthFailure", CREDENTIALS_INVALID);
  return undefined;
}
