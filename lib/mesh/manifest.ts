/**
 * Crew files (`crew.yaml`): a crew and its members as code. Parsing keeps
 * `file:line` for every value; validation is complete — every unknown key and
 * bad value is reported — before anything is created.
 *
 * ```yaml
 * crew: pr-42
 * provider: local          # default for members (else config's)
 * ttl: 2h                  # default for members; also idleTimeout
 * members:
 *   - slug: db
 *     expose: [5432]
 *   - role: worker         # worker-1 .. worker-3
 *     count: 3
 *     expose: 8080
 *     init: ./worker-init.sh   # relative to this file
 * ```
 *
 * @module
 */

import { parseYamlSource } from "../core/config.ts";
import { parseSeconds } from "../core/duration.ts";
import { CrabboxError, usageError } from "../core/errors.ts";
import { parseExposedPorts } from "../core/expose.ts";
import { dirOf, joinPath } from "../core/fs.ts";
import { normalizeCrewName, normalizeSlug, roleOf } from "../core/names.ts";
import { type Shape, validateShape } from "../core/shape.ts";
import {
  type CrabboxOptions,
  providerFeatures,
  providerShapeRules,
  resolveRuntime,
} from "../runtime.ts";

/** One member of a crew file, after validation (`role` + `count` expanded). */
export interface ManifestMember {
  /** Normalized slug (`worker-2` for the second of `role: worker`). */
  slug: string;
  /** Role (slug without a trailing `-<digits>`). */
  role: string;
  /** Provider name, or undefined for config's default. */
  provider?: string;
  /** Exposed ports, sorted. */
  expose: number[];
  /** Join the tailnet. */
  tailscale: boolean;
  /** The init script's text (read from the file the manifest names). */
  init?: string;
  /** The init file as written in the manifest. */
  initFile?: string;
  /** TTL seconds (0 = none), undefined: default. */
  ttl?: number;
  /** Idle timeout seconds (0 = none), undefined: default. */
  idleTimeout?: number;
  /** Machine type, location, image, arch (validated against the provider's rules). */
  shape: Shape;
  /** Where the member is declared (`crew.yaml:7`). */
  at: string;
}

/** A validated crew file. */
export interface CrewManifest {
  /** Where it was read from (or `"manifest"`). */
  source: string;
  /** Normalized crew name. */
  crew: string;
  /** Members, expanded, in file order. */
  members: ManifestMember[];
}

const ROOT_KEYS = ["crew", "provider", "ttl", "idleTimeout", "members"];
const MEMBER_KEYS = [
  "slug",
  "role",
  "count",
  "provider",
  "expose",
  "tailscale",
  "init",
  "ttl",
  "idleTimeout",
  "type",
  "location",
  "image",
  "arch",
];
/** Most members one `role` + `count` entry may declare. */
export const MAX_COUNT = 100;

function manifestError(errors: string[]): CrabboxError {
  return new CrabboxError(
    "usage",
    "bad_manifest",
    errors.length === 1 ? errors[0] : `${errors.length} problems:\n  ${errors.join("\n  ")}`,
    { hint: "fix the crew file; nothing was created", details: { errors } },
  );
}

/**
 * Read and validate a crew file. Every problem is collected and reported at
 * once as a usage error (exit 2) whose lines name `file:line`.
 *
 * @example
 * ```ts
 * import { loadCrewManifest } from "@crabbox/crabbox";
 * const m = await loadCrewManifest("crew.yaml");
 * m.members.map((x) => x.slug); // ["db", "worker-1", "worker-2", "worker-3"]
 * ```
 */
export async function loadCrewManifest(
  path: string,
  options: CrabboxOptions = {},
): Promise<CrewManifest> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw usageError(
      "bad_manifest",
      `crew file ${JSON.stringify(path)} cannot be read: ${(e as Error).message.split("\n")[0]}`,
    );
  }
  return await parseCrewManifest(text, path, options);
}

/**
 * Validate crew-file text (`source` names it in errors and anchors `init`
 * paths). See {@link loadCrewManifest}.
 *
 * @example
 * ```ts
 * import { parseCrewManifest } from "@crabbox/crabbox";
 * const m = await parseCrewManifest("crew: ci\nmembers:\n  - slug: api\n", "crew.yaml");
 * m.crew; // "ci"
 * ```
 */
export async function parseCrewManifest(
  text: string,
  source: string,
  options: CrabboxOptions = {},
): Promise<CrewManifest> {
  const { YAML, root, where } = await parseYamlSource(
    text,
    source,
    (m) => manifestError([m]),
  );
  // Positions of every key and list item, by path ("members.1.expose").
  const lines = new Map<string, string>();
  const walk = (node: unknown, path: string) => {
    if (YAML.isMap(node)) {
      for (const pair of node.items) {
        const key = YAML.isScalar(pair.key) ? String(pair.key.value) : "";
        const p = path ? `${path}.${key}` : key;
        lines.set(p, where(YAML.isNode(pair.key) ? pair.key.range?.[0] : undefined));
        walk(pair.value, p);
      }
    } else if (YAML.isSeq(node)) {
      node.items.forEach((item, i) => {
        const p = `${path}.${i}`;
        lines.set(p, where(YAML.isNode(item) ? item.range?.[0] : undefined));
        walk(item, p);
      });
    }
  };
  walk(root, "");
  const value = root === null ? {} : root.toJSON();
  return await validateCrewManifest(value, {
    ...options,
    source,
    at: (path) => lines.get(path) ?? lines.get(path.split(".").slice(0, -1).join(".")) ?? where(0),
  });
}

/** Options of {@link validateCrewManifest}. */
export interface ManifestOptions extends CrabboxOptions {
  /** Name of the manifest in errors; `init` paths are relative to its directory. */
  source?: string;
  /** `file:line` of a value by its path (`members.0.expose`); default: the source and path. */
  at?: (path: string) => string;
}

/**
 * Validate a crew manifest given as a plain object (what a YAML crew file
 * holds): every problem is collected, then reported as one usage error.
 *
 * @example
 * ```ts
 * import { validateCrewManifest } from "@crabbox/crabbox";
 * const m = await validateCrewManifest({
 *   crew: "pr-42",
 *   members: [{ slug: "db", expose: [5432] }, { role: "worker", count: 2 }],
 * });
 * m.members.map((x) => x.slug); // ["db", "worker-1", "worker-2"]
 * ```
 */
export async function validateCrewManifest(
  value: unknown,
  options: ManifestOptions = {},
): Promise<CrewManifest> {
  const source = options.source ?? "manifest";
  const at = options.at ?? ((path: string) => `${source}: ${path || "(top)"}`);
  const errors: string[] = [];
  const fail = (path: string, message: string) => errors.push(`${at(path)}: ${message}`);
  const attempt = <T>(path: string, f: () => T): T | undefined => {
    try {
      return f();
    } catch (e) {
      fail(path, (e as Error).message);
      return undefined;
    }
  };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw manifestError([`${at("")}: must be a mapping with crew and members`]);
  }
  const root = value as Record<string, unknown>;
  for (const k of Object.keys(root)) {
    if (!ROOT_KEYS.includes(k)) {
      fail(k, `unknown key ${JSON.stringify(k)} (allowed: ${ROOT_KEYS.join(", ")})`);
    }
  }
  let crew = "";
  if (typeof root.crew !== "string") fail("crew", "crew must be a name");
  else crew = attempt("crew", () => normalizeCrewName(root.crew as string)) ?? "";
  const defaultProvider = optionalString(root.provider, "provider", fail);
  const defaultTtl = duration(root.ttl, "ttl", attempt);
  const defaultIdle = duration(root.idleTimeout, "idleTimeout", attempt);
  const members: ManifestMember[] = [];
  if (!Array.isArray(root.members) || root.members.length === 0) {
    fail("members", "members must be a non-empty list");
  } else {
    for (const [i, raw] of root.members.entries()) {
      const p = `members.${i}`;
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        fail(p, "a member must be a mapping with slug or role");
        continue;
      }
      const m = raw as Record<string, unknown>;
      for (const k of Object.keys(m)) {
        if (!MEMBER_KEYS.includes(k)) {
          fail(
            `${p}.${k}`,
            `unknown key ${JSON.stringify(k)} (allowed: ${MEMBER_KEYS.join(", ")})`,
          );
        }
      }
      const provider = optionalString(m.provider, `${p}.provider`, fail) ?? defaultProvider;
      const features = provider === undefined
        ? undefined
        : attempt(`${p}.provider`, () => providerFeatures(options, provider));
      const expose = m.expose === undefined ? [] : attempt(`${p}.expose`, () =>
        parseExposedPorts(
          (Array.isArray(m.expose) ? m.expose : [m.expose]).map((x) =>
            typeof x === "number" || typeof x === "string" ? String(x) : "?"
          ),
        )) ?? [];
      if (m.tailscale !== undefined && typeof m.tailscale !== "boolean") {
        fail(`${p}.tailscale`, "tailscale must be true or false");
      }
      const tailscale = m.tailscale === true;
      if (tailscale && features && !features.has("tailscale")) {
        fail(`${p}.tailscale`, `provider ${provider} cannot join a tailnet`);
      }
      const shapeIn: Shape = {};
      for (const k of ["type", "location", "image", "arch"] as const) {
        const v = optionalString(m[k], `${p}.${k}`, fail);
        if (v !== undefined) shapeIn[k] = v;
      }
      let shape: Shape = {};
      if (Object.keys(shapeIn).length > 0) {
        const name = provider ?? (await resolveRuntime(options)).config.provider;
        const firstKey = Object.keys(shapeIn)[0];
        shape = attempt(`${p}.${firstKey}`, () =>
          validateShape(shapeIn, providerShapeRules(name), name)) ?? {};
      }
      const ttl = duration(m.ttl, `${p}.ttl`, attempt) ?? defaultTtl;
      const idleTimeout = duration(m.idleTimeout, `${p}.idleTimeout`, attempt) ?? defaultIdle;
      const initFile = optionalString(m.init, `${p}.init`, fail);
      let init: string | undefined;
      if (initFile !== undefined) {
        // Relative to the crew file's directory ("crew.yaml" alone: the current one).
        const base = source.includes("/") ? dirOf(source) : ".";
        const file = initFile.startsWith("/") ? initFile : joinPath(base, initFile);
        try {
          init = await Deno.readTextFile(file);
          if (init.includes("\0")) fail(`${p}.init`, `init file ${initFile} contains a NUL byte`);
        } catch (e) {
          fail(
            `${p}.init`,
            `init file ${initFile} cannot be read: ${(e as Error).message.split("\n")[0]}`,
          );
        }
      }
      let slugs: string[] = [];
      if (m.slug !== undefined && m.role !== undefined) {
        fail(p, "give slug or role (with count), not both");
      } else if (m.slug !== undefined) {
        if (m.count !== undefined) fail(`${p}.count`, "count goes with role, not slug");
        const slug = typeof m.slug === "string"
          ? attempt(`${p}.slug`, () => normalizeSlug(m.slug as string))
          : (fail(`${p}.slug`, "slug must be a name"), undefined);
        if (slug) slugs = [slug];
      } else if (m.role !== undefined) {
        const role = typeof m.role === "string"
          ? attempt(`${p}.role`, () => normalizeSlug(m.role as string))
          : (fail(`${p}.role`, "role must be a name"), undefined);
        const count = m.count ?? 1;
        if (!Number.isInteger(count) || (count as number) < 1 || (count as number) > MAX_COUNT) {
          fail(`${p}.count`, `count must be a whole number from 1 to ${MAX_COUNT}`);
        } else if (role) {
          slugs = Array.from({ length: count as number }, (_, n) => `${role}-${n + 1}`);
          const long = slugs.find((s) => s.length > 41);
          if (long) {
            fail(`${p}.role`, `role ${role} is too long for numbered members (${long})`);
            slugs = [];
          }
        }
      } else {
        fail(p, "a member needs a slug, or a role (and count)");
      }
      for (const slug of slugs) {
        const twice = members.find((x) => x.slug === slug);
        if (twice) {
          fail(p, `member ${slug} is declared twice (first at ${twice.at})`);
          continue;
        }
        members.push({
          slug,
          role: roleOf(slug),
          ...(provider === undefined ? {} : { provider }),
          expose,
          tailscale,
          ...(init === undefined ? {} : { init, initFile }),
          ...(ttl === undefined ? {} : { ttl }),
          ...(idleTimeout === undefined ? {} : { idleTimeout }),
          shape,
          at: at(p),
        });
      }
    }
  }
  if (errors.length > 0) throw manifestError(errors);
  return { source, crew, members };
}

function optionalString(
  v: unknown,
  path: string,
  fail: (path: string, message: string) => void,
): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.trim() === "") {
    fail(path, `${path.split(".").pop()} must be a non-empty string`);
    return undefined;
  }
  return v.trim();
}

function duration(
  v: unknown,
  path: string,
  attempt: <T>(path: string, f: () => T) => T | undefined,
): number | undefined {
  if (v === undefined) return undefined;
  const key = path.split(".").pop()!;
  return attempt(path, () => {
    if (typeof v !== "string" && typeof v !== "number") {
      throw usageError("bad_duration", `${key} must be a duration like 90m (0 = none)`);
    }
    return parseSeconds(String(v), key);
  });
}
