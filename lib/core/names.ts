/**
 * Crew and slug names, roles, lease ids, owners and the crew tailnet tag.
 *
 * @module
 */

import { usageError } from "./errors.ts";
import { output } from "../process/run.ts";
import { type EnvReader, processEnv } from "./fs.ts";

/** Longest crew name or slug after normalization. */
export const MAX_NAME_LENGTH = 41;

/** Longest owner segment of a crew tag before it is hashed. */
export const MAX_OWNER_LENGTH = 7;

/** Longest tailnet tag crabbox produces (`tag:` included). */
export const MAX_TAG_LENGTH = 62;

function isAlnum(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
}

/**
 * Normalize a crew name or slug: trim, lowercase, every run of characters
 * outside `[a-z0-9]` becomes one `-`, leading and trailing `-` removed.
 * Linear time; never throws (may return `""`).
 *
 * @example
 * ```ts
 * import { normalizeName } from "./names.ts";
 * normalizeName("Alpha_Bravo Charlie"); // "alpha-bravo-charlie"
 * ```
 */
export function normalizeName(value: string): string {
  const lower = value.trim().toLowerCase();
  let out = "";
  let pendingDash = false;
  for (let i = 0; i < lower.length; i++) {
    const c = lower.charCodeAt(i);
    if (isAlnum(c)) {
      if (pendingDash && out.length > 0) out += "-";
      pendingDash = false;
      out += lower[i];
    } else {
      pendingDash = true;
    }
  }
  return out;
}

function requireName(flag: string, value: string): string {
  const name = normalizeName(value);
  if (name === "") {
    throw usageError(`bad_${flag}`, `--${flag} must contain at least one letter or digit`);
  }
  if (name.length > MAX_NAME_LENGTH) {
    throw usageError(
      `bad_${flag}`,
      `--${flag} must be ${MAX_NAME_LENGTH} characters or fewer after normalization`,
    );
  }
  return name;
}

/** Refuse a name that starts with `-` or holds control characters (not normalized away). */
function refuseUnsafe(flag: string, value: string): void {
  // deno-lint-ignore no-control-regex
  if (/^\s*-/.test(value) || /[\x00-\x1f\x7f]/.test(value)) {
    throw usageError(
      `unsafe_${flag}`,
      `--${flag} ${JSON.stringify(value)} may not start with "-" or contain control characters`,
    );
  }
}

/**
 * Normalize and validate a crew name; throws a usage error when it is empty
 * after normalization, longer than 41 characters, starts with `-` or holds
 * control characters (refused like a slug, not normalized away).
 *
 * @example
 * ```ts
 * import { normalizeCrewName } from "@crabbox/crabbox";
 * normalizeCrewName("  PR 42 "); // "pr-42"
 * ```
 */
export function normalizeCrewName(value: string): string {
  refuseUnsafe("crew", value);
  return requireName("crew", value);
}

/**
 * Normalize and validate a member slug (same rules as crew names). A slug
 * that starts with `-` or holds control characters is refused outright: it
 * looks like an attempt to smuggle an ssh option, not a name.
 *
 * @example
 * ```ts
 * import { normalizeSlug } from "@crabbox/crabbox";
 * normalizeSlug("Worker_2"); // "worker-2"
 * ```
 */
export function normalizeSlug(value: string): string {
  refuseUnsafe("slug", value);
  return requireName("slug", value);
}

/**
 * The role of a slug: the slug without a trailing `-<digits>`.
 *
 * @example
 * ```ts
 * import { roleOf } from "./names.ts";
 * roleOf("worker-2"); // "worker"
 * roleOf("api"); // "api"
 * ```
 */
export function roleOf(slug: string): string {
  let i = slug.length;
  while (i > 0 && slug.charCodeAt(i - 1) >= 0x30 && slug.charCodeAt(i - 1) <= 0x39) i--;
  if (i < slug.length && i > 1 && slug[i - 1] === "-") return slug.slice(0, i - 1);
  return slug;
}

const LEASE_ID = /^cbx-[0-9a-f]{12}$/;

/**
 * A new random lease id: `cbx-` and 12 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { newLeaseId } from "./names.ts";
 * newLeaseId(); // e.g. "cbx-3f9a0c1b7d2e"
 * ```
 */
export function newLeaseId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return "cbx-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** True when `value` is a well-formed lease id. */
export function isLeaseId(value: string): boolean {
  return LEASE_ID.test(value);
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

function base32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * The owner segment of a crew tag from an identity (usually an e-mail):
 * the local part, normalized; longer than 7 characters → the first 7 of the
 * lowercase base32 of its SHA-256; empty → `user`.
 *
 * @example
 * ```ts
 * import { ownerSegment } from "./names.ts";
 * await ownerSegment("alice@example.com"); // "alice"
 * await ownerSegment("yossi.eliaz@incredibuild.com"); // "xyuoqa6"
 * ```
 */
export async function ownerSegment(identity: string): Promise<string> {
  let id = identity.trim().toLowerCase();
  const at = id.indexOf("@");
  if (at > 0) id = id.slice(0, at);
  const owner = normalizeName(id);
  if (owner === "") return "user";
  if (owner.length <= MAX_OWNER_LENGTH) return owner;
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(owner)),
  );
  return base32(digest).slice(0, MAX_OWNER_LENGTH);
}

/**
 * The identity crabbox derives the owner from: the first non-empty of
 * `CRABBOX_OWNER`, `GIT_AUTHOR_EMAIL`, `GIT_COMMITTER_EMAIL`, then
 * `git config user.email` (through `gitEmail`, injected).
 *
 * @example
 * ```ts
 * import { ownerIdentity } from "./names.ts";
 * await ownerIdentity((k) => ({ CRABBOX_OWNER: "alice@x.io" } as Record<string, string>)[k]);
 * ```
 */
export async function ownerIdentity(
  env: (name: string) => string | undefined,
  gitEmail: () => Promise<string | undefined> = gitConfigEmail,
): Promise<string> {
  for (const key of ["CRABBOX_OWNER", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"]) {
    const v = env(key)?.trim();
    if (v) return v;
  }
  return (await gitEmail())?.trim() ?? "";
}

/** Options of {@link ownerFor}. */
export interface OwnerOptions {
  /** Environment reader (default: the process environment). */
  env?: EnvReader;
  /** Reads `git config user.email` (default: runs git). */
  gitEmail?: () => Promise<string | undefined>;
}

/**
 * The owner segment for the current user: {@link ownerSegment} of
 * {@link ownerIdentity} (`CRABBOX_OWNER`, git author/committer, git config).
 *
 * @example
 * ```ts
 * import { ownerFor } from "@crabbox/crabbox";
 * await ownerFor({ env: (k) => (k === "CRABBOX_OWNER" ? "alice@example.com" : undefined) }); // "alice"
 * ```
 */
export async function ownerFor(options: OwnerOptions = {}): Promise<string> {
  return await ownerSegment(await ownerIdentity(options.env ?? processEnv, options.gitEmail));
}

async function gitConfigEmail(): Promise<string | undefined> {
  try {
    const out = await output("git", {
      args: ["config", "--get", "user.email"],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    });
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The crew tailnet tag `tag:cbx-crew-<owner>-<crew>` for an owner segment
 * (see {@link ownerSegment}) and a crew name.
 *
 * @example
 * ```ts
 * import { crewTag } from "@crabbox/crabbox";
 * crewTag("alice", "pr-42"); // "tag:cbx-crew-alice-pr-42"
 * ```
 */
export function crewTag(owner: string, crew: string): string {
  const o = normalizeName(owner) || "user";
  const tag = `tag:cbx-crew-${o}-${normalizeCrewName(crew)}`;
  if (tag.length > MAX_TAG_LENGTH) {
    throw usageError("tag_too_long", `crew tag ${tag} is longer than ${MAX_TAG_LENGTH} characters`);
  }
  return tag;
}
