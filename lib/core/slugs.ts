/**
 * Choosing slugs that nobody gave: the next free `<role>-<n>` numbers and
 * readable generated names. Pure: the caller passes the slugs already taken
 * (under the claim store lock, so two processes never pick the same one).
 *
 * @module
 */

import { MAX_NAME_LENGTH } from "./names.ts";
import { usageError } from "./errors.ts";

/** What to choose a slug by. */
export type SlugRequest =
  /** This exact slug. */
  | { slug: string }
  /** The next free `<role>-<n>` (n from 1). */
  | { role: string }
  /** A readable generated name (`brisk-otter`). */
  | { generated: true };

const ADJECTIVES = [
  "amber",
  "bold",
  "brisk",
  "calm",
  "clever",
  "coral",
  "crisp",
  "dusty",
  "eager",
  "fair",
  "fleet",
  "gentle",
  "glad",
  "golden",
  "hardy",
  "jolly",
  "keen",
  "lively",
  "lucky",
  "mellow",
  "merry",
  "nimble",
  "proud",
  "quick",
  "quiet",
  "rapid",
  "salty",
  "sandy",
  "shy",
  "steady",
  "sunny",
  "swift",
  "tidy",
  "vivid",
  "warm",
  "witty",
];
const NOUNS = [
  "anchor",
  "barnacle",
  "beacon",
  "buoy",
  "clam",
  "cove",
  "crab",
  "current",
  "dune",
  "eel",
  "gull",
  "harbor",
  "heron",
  "kelp",
  "krill",
  "lagoon",
  "lobster",
  "marlin",
  "mussel",
  "otter",
  "oyster",
  "pebble",
  "pelican",
  "pier",
  "prawn",
  "reef",
  "sandbar",
  "seal",
  "shell",
  "shrimp",
  "skiff",
  "squid",
  "starfish",
  "tide",
  "urchin",
  "wave",
];

/**
 * Choose slugs for `requests` in order, none in `taken` and none twice. A
 * requested exact slug that is taken is a usage error (`slug_taken`) naming
 * its holder's lease id when known.
 *
 * @example
 * ```ts
 * import { chooseSlugs } from "./slugs.ts";
 * chooseSlugs([{ role: "worker" }, { role: "worker" }], new Set(["worker-1", "worker-3"]));
 * // ["worker-2", "worker-4"]
 * ```
 */
export function chooseSlugs(
  requests: readonly SlugRequest[],
  taken: ReadonlySet<string>,
  options: {
    /** slug → lease id of its holder. */
    holders?: ReadonlyMap<string, string>;
    /** What the slugs are unique in, for the error (`crew pr-42`). */
    scope?: string;
    /** Random source for generated names (default `Math.random`). */
    random?: () => number;
  } = {},
): string[] {
  const holders = options.holders ?? new Map<string, string>();
  const random = options.random ?? Math.random;
  const used = new Set(taken);
  const out: string[] = [];
  for (const r of requests) {
    let slug: string;
    if ("slug" in r) {
      if (used.has(r.slug)) {
        const holder = holders.get(r.slug);
        throw usageError(
          "slug_taken",
          `${options.scope ?? "this crew"} already has a member ${r.slug}${
            holder ? ` (${holder})` : " (given twice)"
          }`,
          "pick another --slug or release that lease first",
        );
      }
      slug = r.slug;
    } else if ("role" in r) {
      slug = nextNumbered(r.role, used);
    } else {
      slug = generatedSlug(used, random);
    }
    used.add(slug);
    out.push(slug);
  }
  return out;
}

function nextNumbered(role: string, used: ReadonlySet<string>): string {
  for (let n = 1;; n++) {
    const slug = `${role}-${n}`;
    if (slug.length > MAX_NAME_LENGTH) {
      throw usageError("bad_role", `--role ${role} leaves no room for a member number`);
    }
    if (!used.has(slug)) return slug;
  }
}

function generatedSlug(used: ReadonlySet<string>, random: () => number): string {
  const pick = (words: readonly string[]) =>
    words[Math.floor(random() * words.length) % words.length];
  for (let i = 0; i < 64; i++) {
    const slug = `${pick(ADJECTIVES)}-${pick(NOUNS)}`;
    if (!used.has(slug)) return slug;
  }
  // A crowded crew: number the last pick.
  return nextNumbered(`${pick(ADJECTIVES)}-${pick(NOUNS)}`, used);
}
