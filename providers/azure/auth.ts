/**
 * Microsoft Entra ID client-credentials tokens for the `azure` provider:
 * `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` are
 * exchanged at `<login>/<tenant>/oauth2/v2.0/token` for a token with scope
 * `https://management.azure.com/.default`, cached until shortly before it
 * expires. The login host is `CRABBOX_AZURE_LOGIN_URL`, else
 * `AZURE_AUTHORITY_HOST`, else `https://login.microsoftonline.com`.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { redact } from "../../lib/core/redact.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import { apiBaseUrl } from "../cloud/common.ts";

/** The ARM scope. */
export const AZURE_SCOPE = "https://management.azure.com/.default";
/** Default login host. */
export const AZURE_LOGIN_URL = "https://login.microsoftonline.com";
const EARLY_REFRESH_MS = 60_000;

/** Client credentials (the secret never leaves this module except in the token request). */
export interface AzureClientCredentials {
  /** Directory (tenant) id. */
  tenantId: string;
  /** Application (client) id. */
  clientId: string;
  /** Client secret. */
  clientSecret: string;
  /** Login base URL, no trailing slash. */
  loginUrl: string;
}

/**
 * Read the client credentials; each missing variable is named.
 *
 * @example
 * ```ts
 * import { azureCredentials } from "./auth.ts";
 * azureCredentials((k) => ({ AZURE_TENANT_ID: "t", AZURE_CLIENT_ID: "c", AZURE_CLIENT_SECRET: "s" })[k]).loginUrl;
 * // "https://login.microsoftonline.com"
 * ```
 */
export function azureCredentials(env: EnvReader): AzureClientCredentials {
  const get = (k: string) => env(k)?.trim() || undefined;
  const missing = ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"].filter((k) =>
    !get(k)
  );
  if (missing.length > 0) {
    throw new CrabboxError("credentials", "azure_no_credentials", `${missing.join(", ")} not set`, {
      hint:
        "create a service principal (az ad sp create-for-rbac) and export its tenant, appId and password",
    });
  }
  const tenantId = get("AZURE_TENANT_ID")!;
  if (!/^[A-Za-z0-9.-]{1,100}$/.test(tenantId)) {
    throw new CrabboxError(
      "credentials",
      "azure_bad_tenant",
      "AZURE_TENANT_ID is not a tenant id or domain",
    );
  }
  const login = get("CRABBOX_AZURE_LOGIN_URL") ?? get("AZURE_AUTHORITY_HOST") ?? AZURE_LOGIN_URL;
  return {
    tenantId,
    clientId: get("AZURE_CLIENT_ID")!,
    clientSecret: get("AZURE_CLIENT_SECRET")!,
    loginUrl: apiBaseUrl("CRABBOX_AZURE_LOGIN_URL", login).href.replace(/\/+$/, ""),
  };
}

/** The form body of the client-credentials request. */
export function azureTokenRequestBody(c: AzureClientCredentials): string {
  return new URLSearchParams({
    grant_type: "client_credentials",
    client_id: c.clientId,
    client_secret: c.clientSecret,
    scope: AZURE_SCOPE,
  }).toString();
}

/** Which variable an Entra error code blames (AADSTS numbers). */
export function blamedVariable(errorCodes: number[], error: string): string {
  if (errorCodes.includes(90002) || errorCodes.includes(900023)) return "AZURE_TENANT_ID";
  if (errorCodes.includes(700016)) return "AZURE_CLIENT_ID";
  if (
    errorCodes.some((c) => [7000215, 7000222, 7000232].includes(c)) || error === "invalid_client"
  ) {
    return "AZURE_CLIENT_SECRET";
  }
  return "AZURE_CLIENT_ID/AZURE_CLIENT_SECRET";
}

/** A token and its expiry (epoch ms). */
export interface AzureToken {
  /** Bearer token. */
  token: string;
  /** Expiry. */
  expiresAt: number;
}

/**
 * Parse the token endpoint's answer; errors are credentials errors naming the
 * variable Entra's error code points at (the secret is never quoted).
 */
export function parseAzureTokenResponse(status: number, text: string, nowMs: number): AzureToken {
  let json: Record<string, unknown> = {};
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object") json = v;
  } catch { /* below */ }
  if (status >= 200 && status < 300 && typeof json.access_token === "string") {
    const ttl = Number(json.expires_in);
    return {
      token: json.access_token,
      expiresAt: nowMs + (Number.isFinite(ttl) && ttl > 0 ? ttl : 3600) * 1000,
    };
  }
  const error = typeof json.error === "string" ? json.error : `http_${status}`;
  const codes = Array.isArray(json.error_codes)
    ? json.error_codes.filter((c): c is number => typeof c === "number")
    : [];
  const description = typeof json.error_description === "string"
    ? json.error_description.split(/\r?\n/)[0].slice(0, 240)
    : "";
  if (status >= 500 || status === 429) {
    throw new CrabboxError(
      "provider",
      "azure_login_unavailable",
      `the Azure login endpoint answered ${status} ${error}`,
    );
  }
  const variable = blamedVariable(codes, error);
  throw new CrabboxError(
    "credentials",
    "azure_auth",
    `Azure rejected the service principal: check ${variable} (${status} ${error}${
      description ? `: ${description}` : ""
    })`,
    { hint: `check ${variable}`, details: { error, codes } },
  );
}

/** Gives an ARM bearer token, cached. */
export interface AzureTokenSource {
  /** A valid token. */
  token(signal?: AbortSignal): Promise<string>;
  /** Drop the cached token (after a 401). */
  invalidate(): void;
  /** The client secret, for redaction. */
  readonly secret: string;
}

/**
 * The token shell.
 *
 * @example
 * ```ts
 * import { azureTokenSource } from "./auth.ts";
 * const src = azureTokenSource({ tenantId: "t", clientId: "c", clientSecret: "s",
 *   loginUrl: "https://login.microsoftonline.com" }, fetch, Date.now);
 * ```
 */
export function azureTokenSource(
  c: AzureClientCredentials,
  fetcher: typeof fetch,
  now: () => number,
): AzureTokenSource {
  let cached: AzureToken | undefined;
  return {
    secret: c.clientSecret,
    invalidate: () => {
      cached = undefined;
    },
    async token(signal) {
      if (cached && cached.expiresAt - EARLY_REFRESH_MS > now()) return cached.token;
      const url = `${c.loginUrl}/${encodeURIComponent(c.tenantId)}/oauth2/v2.0/token`;
      let res: Response;
      try {
        res = await fetcher(url, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            accept: "application/json",
          },
          body: azureTokenRequestBody(c),
          signal,
        });
      } catch (e) {
        if (signal?.aborted) throw e;
        throw new CrabboxError(
          "provider",
          "azure_unreachable",
          `cannot reach the Azure login endpoint at ${new URL(url).host}`,
        );
      }
      cached = parseAzureTokenResponse(
        res.status,
        redact(await res.text(), [c.clientSecret]),
        now(),
      );
      return cached.token;
    },
  };
}
