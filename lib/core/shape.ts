/**
 * A member's shape — machine type, location, image, CPU architecture — as
 * `--type`, `--location`/`--region`, `--image` and `--arch` give it: checked
 * against what its provider documents (the rules come from the provider
 * registry), and recorded as labels. Pure.
 *
 * @module
 */

import { usageError } from "./errors.ts";

/** The shape flags. */
export type ShapeKey = "type" | "location" | "image" | "arch";

/** A member's shape; absent fields are the provider's configured defaults. */
export interface Shape {
  /** Machine type (`cpx22`, `t3.small`, …). */
  type?: string;
  /** Location, region or zone. */
  location?: string;
  /** Image name or id. */
  image?: string;
  /** CPU architecture (`x86`, `arm`). */
  arch?: string;
}

/** What a provider accepts for one shape flag. */
export interface ShapeRule {
  /** The documented values, when the provider has a fixed list. */
  known?: readonly string[];
  /** The form a value must have, when there is no fixed list. */
  pattern?: RegExp;
  /** An example value for the error message. */
  example: string;
}

/** A provider's shape rules: flags it does not list are not supported by it. */
export interface ShapeRules {
  /** Rules per flag. */
  flags: Partial<Record<ShapeKey, ShapeRule>>;
  /** Checks across flags (`--arch arm` with an x86 `--type`); returns the problem. */
  consistent?: (shape: Shape) => string | undefined;
}

/** Shape label keys. */
export const ShapeLabel: Readonly<Record<ShapeKey, string>> = {
  type: "crabbox-type",
  location: "crabbox-location",
  image: "crabbox-image",
  arch: "crabbox-arch",
};

const KEYS: readonly ShapeKey[] = ["type", "location", "image", "arch"];

/**
 * Check a shape against a provider's rules (`undefined`: the provider takes
 * no shape flags). Each problem is a usage error naming the flag, the value
 * and the provider. Returns the shape with empty fields dropped.
 *
 * @example
 * ```ts
 * import { validateShape } from "./shape.ts";
 * validateShape({ type: "cpx32" }, { flags: { type: { pattern: /^cpx\d+$/, example: "cpx22" } } }, "hetzner");
 * // { type: "cpx32" }
 * ```
 */
export function validateShape(
  shape: Shape,
  rules: ShapeRules | undefined,
  provider: string,
): Shape {
  const out: Shape = {};
  for (const key of KEYS) {
    const value = shape[key]?.trim();
    if (!value) continue;
    const rule = rules?.flags[key];
    const flag = `--${key}`;
    if (!rule) {
      const supported = KEYS.filter((k) => rules?.flags[k]).map((k) => `--${k}`);
      throw usageError(
        "unsupported_shape",
        `${flag} is not supported by provider ${provider}${
          supported.length ? ` (it takes ${supported.join(", ")})` : " (it takes no shape flags)"
        }`,
      );
    }
    const ok = rule.known
      ? rule.known.includes(value)
      : rule.pattern
      ? rule.pattern.test(value)
      : true;
    // deno-lint-ignore no-control-regex
    if (!ok || /[\x00-\x20\x7f]/.test(value)) {
      throw usageError(
        "bad_shape",
        `${flag} ${JSON.stringify(value.slice(0, 60))} is not a ${provider} ${key}${
          rule.known ? ` (known: ${rule.known.join(", ")})` : ` (e.g. ${rule.example})`
        }`,
      );
    }
    out[key] = value;
  }
  const problem = rules?.consistent?.(out);
  if (problem) throw usageError("bad_shape", `provider ${provider}: ${problem}`);
  return out;
}

/**
 * The shape as label values valid everywhere: lowercased, every run outside
 * `[a-z0-9]` one `-`, at most 63 characters (`Standard_B2s` → `standard-b2s`).
 *
 * @example
 * ```ts
 * import { shapeLabels } from "./shape.ts";
 * shapeLabels({ type: "t3.small", image: "ubuntu-24.04" });
 * // { "crabbox-type": "t3-small", "crabbox-image": "ubuntu-24-04" }
 * ```
 */
export function shapeLabels(shape: Shape): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of KEYS) {
    const v = shape[key];
    if (!v) continue;
    const safe = v.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63)
      .replace(/-+$/, "");
    if (safe) out[ShapeLabel[key]] = safe;
  }
  return out;
}

/**
 * The shape labels read back (label-safe values).
 *
 * @example
 * ```ts
 * import { readShape } from "./shape.ts";
 * readShape({ "crabbox-type": "cpx32" }); // { type: "cpx32" }
 * ```
 */
export function readShape(labels: Record<string, string> | undefined): Shape {
  const out: Shape = {};
  for (const key of KEYS) {
    const v = labels?.[ShapeLabel[key]];
    if (v) out[key] = v;
  }
  return out;
}
