/**
 * `mintAuthKey`: create a one-off, tagged Tailscale auth key for a new box.
 * The key is returned once, inside an object that hides it from logging,
 * `JSON.stringify` and string conversion; it never appears in an error.
 *
 * @module
 */

import { CrabboxError, usageError } from "../core/errors.ts";
import { REDACTED } from "../core/redact.ts";
import { TailnetClient, type TailnetClientOptions } from "./api.ts";
import { assertTailnetTag } from "./policy_snippet.ts";

/** Options for {@link mintAuthKey}. */
export interface MintAuthKeyOptions extends TailnetClientOptions {
  /** Tags the device gets (at least one; each must be owned in `tagOwners`). */
  tags: readonly string[];
  /** Device is removed when it goes offline (default true). */
  ephemeral?: boolean;
  /** Key can join more than one device (default false). */
  reusable?: boolean;
  /** Device needs no approval (default true). */
  preauthorized?: boolean;
  /** Key lifetime in seconds, 1..7776000 (default 600). */
  expirySeconds?: number;
  /** Shown in the admin console; cut to Tailscale's 50 letters, digits, `-` and spaces. */
  description?: string;
  /** A client to use instead of one built from the other options. */
  client?: TailnetClient;
}

/**
 * A freshly minted auth key. `key` returns the secret; logging the object,
 * `JSON.stringify` or `String()` shows `[redacted]` instead.
 */
export class MintedAuthKey {
  /** The key's ID (not secret), e.g. `kXY12CNTRL`. */
  readonly id: string;
  /** Expiry time as sent by Tailscale (RFC 3339), if any. */
  readonly expires?: string;
  /** Tags the key applies. */
  readonly tags: readonly string[];
  readonly #key: string;

  /**
   * Wraps a key; {@link mintAuthKey} builds these.
   *
   * @param key the secret `tskey-auth-…` value
   * @param id the key ID
   * @param tags the tags it applies
   * @param expires its expiry time
   */
  constructor(key: string, id: string, tags: readonly string[], expires?: string) {
    this.#key = key;
    this.id = id;
    this.tags = tags;
    if (expires !== undefined) this.expires = expires;
  }

  /** The secret key. Pass it to `tailscale up` through stdin, never argv. */
  get key(): string {
    return this.#key;
  }

  /** JSON form without the secret. */
  toJSON(): { id: string; expires?: string; tags: readonly string[]; key: string } {
    return { id: this.id, expires: this.expires, tags: this.tags, key: REDACTED };
  }

  /** String form without the secret. */
  toString(): string {
    return `MintedAuthKey(${this.id}, ${REDACTED})`;
  }

  /** Inspect form (console.log) without the secret. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** Inspect form under Node's util.inspect. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/**
 * Tailscale's description rule (letters, digits, `-`, spaces; at most 50):
 * other characters become `-`, the rest is cut.
 *
 * @example
 * ```ts
 * import { keyDescription } from "./keys.ts";
 * keyDescription("crabbox pr-42/api"); // "crabbox pr-42-api"
 * ```
 */
export function keyDescription(text: string): string {
  return text.replace(/[^A-Za-z0-9 -]/g, "-").slice(0, 50).trim() || "crabbox";
}

/**
 * `POST /api/v2/tailnet/{tailnet}/keys`: mints an auth key with
 * `capabilities.devices.create` — ephemeral, preauthorized, single-use and
 * expiring in 10 minutes unless told otherwise. Apply the tailnet policy
 * first: every tag must be owned in `tagOwners` (by the API key's user, or by
 * the OAuth client's tag), or Tailscale answers 400.
 *
 * @example
 * ```ts
 * import { mintAuthKey } from "@crabbox/crabbox";
 * const minted = await mintAuthKey({ tags: ["tag:cbx-crew-alice-pr-42"], env: Deno.env.toObject() });
 * console.log(minted); // MintedAuthKey(k123, [redacted])
 * // give minted.key to `tailscale up --auth-key=file:/dev/stdin` on the box
 * ```
 */
export async function mintAuthKey(options: MintAuthKeyOptions): Promise<MintedAuthKey> {
  const tags = [...new Set(options.tags)];
  if (tags.length === 0) {
    throw usageError(
      "no_key_tags",
      "an auth key needs at least one tag",
      "pass the crew tag, e.g. tag:cbx-crew-…",
    );
  }
  for (const t of tags) assertTailnetTag(t);
  const expirySeconds = options.expirySeconds ?? 600;
  if (!Number.isInteger(expirySeconds) || expirySeconds < 1 || expirySeconds > 7_776_000) {
    throw usageError(
      "bad_key_expiry",
      `auth key expiry ${expirySeconds} must be a whole number of seconds in 1..7776000 (90 days)`,
    );
  }
  const client = options.client ?? new TailnetClient(options);
  const body = {
    capabilities: {
      devices: {
        create: {
          reusable: options.reusable ?? false,
          ephemeral: options.ephemeral ?? true,
          preauthorized: options.preauthorized ?? true,
          tags,
        },
      },
    },
    expirySeconds,
    description: keyDescription(options.description ?? "crabbox"),
  };
  const res = await client.request({
    what: "create a Tailscale auth key",
    method: "POST",
    path: `${client.tailnetPath}/keys`,
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body),
    scope: "auth_keys",
  });
  let json: { key?: unknown; id?: unknown; expires?: unknown } | undefined;
  try {
    json = JSON.parse(res.body);
  } catch {
    json = undefined;
  }
  const key = typeof json?.key === "string" ? json.key : "";
  if (res.status < 200 || res.status > 299) {
    const err = client.apiError("create a Tailscale auth key", res, key ? [key] : []);
    if (res.status === 400 && /tags?/i.test(err.message)) {
      throw new CrabboxError(err.kind, err.code, err.message, {
        hint: client.authKind === "oauth"
          ? 'each tag must be owned in tagOwners by the OAuth client\'s own tag (e.g. "tag:x": ["autogroup:admin", "tag:ci"]); run the policy bootstrap first'
          : "each tag must be in tagOwners and you must be allowed to apply it; run the policy bootstrap first",
        details: err.details,
      });
    }
    throw err;
  }
  if (!key) {
    throw new CrabboxError(
      "tailnet",
      "tailnet_bad_key_response",
      `cannot create a Tailscale auth key: ${res.call} answered ${res.status} without a key`,
      { hint: "check CRABBOX_TS_API_URL / TS_API_URL points at the Tailscale API" },
    );
  }
  const id = typeof json?.id === "string" ? json.id : "";
  const expires = typeof json?.expires === "string" ? json.expires : undefined;
  return new MintedAuthKey(key, id, tags, expires);
}
