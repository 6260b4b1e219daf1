/**
 * Reserved labels as flat tags, for providers that store only a list of
 * strings (exe.dev tags, Sprites labels): `crabbox` for `crabbox=true`, and
 * `crabbox-<key>-<value>` for every other reserved key, with the `crabbox-`
 * prefix of a key not repeated (`crabbox-lease=cbx-…` → `crabbox-lease-cbx-…`,
 * `crew=pr-42` → `crabbox-crew-pr-42`). Tags are lowercase `[a-z0-9-]`, like
 * label keys and values. Decoding knows the reserved keys, so values may
 * contain `-`; unknown tags are ignored.
 *
 * @module
 */

import { LabelKey, type Labels } from "../../lib/core/labels.ts";

const short = (key: string) => key.replace(/^crabbox-/, "");

/** Reserved keys other than `crabbox`, by their short name. */
const KEYS = new Map(
  Object.values(LabelKey).filter((k) => k !== LabelKey.crabbox).map((k) => [short(k), k]),
);

/**
 * Encode labels as flat tags, in label order.
 *
 * @example
 * ```ts
 * import { encodeFlatTags } from "./flat_tags.ts";
 * encodeFlatTags({ crabbox: "true", "crabbox-lease": "cbx-0123456789ab", crew: "pr-42" });
 * // ["crabbox", "crabbox-lease-cbx-0123456789ab", "crabbox-crew-pr-42"]
 * ```
 */
export function encodeFlatTags(labels: Labels): string[] {
  return Object.entries(labels)
    .filter(([k, v]) => k !== LabelKey.crabbox || v === "true")
    .map(([k, v]) => k === LabelKey.crabbox ? "crabbox" : `crabbox-${short(k)}-${v}`);
}

/**
 * Decode flat tags back into labels; tags that are not reserved are skipped.
 *
 * @example
 * ```ts
 * import { decodeFlatTags } from "./flat_tags.ts";
 * decodeFlatTags(["crabbox", "crabbox-crew-pr-42", "mine"]); // { crabbox: "true", crew: "pr-42" }
 * ```
 */
export function decodeFlatTags(tags: readonly unknown[]): Labels {
  const labels: Labels = {};
  for (const tag of tags) {
    if (typeof tag !== "string") continue;
    if (tag === "crabbox") {
      labels[LabelKey.crabbox] = "true";
      continue;
    }
    if (!tag.startsWith("crabbox-")) continue;
    const rest = tag.slice("crabbox-".length);
    for (const [name, key] of KEYS) {
      if (rest.startsWith(`${name}-`)) {
        labels[key] = rest.slice(name.length + 1);
        break;
      }
    }
  }
  return labels;
}
