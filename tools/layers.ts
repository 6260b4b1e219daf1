/**
 * The layer check: fails on any import cycle, on any import from a lower area
 * into a higher one, on an import of another area's private file (one its
 * `mod.ts` does not re-export), and on `await import(` outside `cli/` and
 * `providers/registry.ts`.
 *
 * An import that leaves its folder names either the folder's `mod.ts` or one
 * of the files that `mod.ts` re-exports (`export * from "./x.ts"`,
 * `export { … } from "./x.ts"`): the folder's public modules. Naming the
 * public file that holds what is used, instead of `mod.ts`, keeps a command
 * from loading the whole area (issue #17: `crew connect --json` evaluated 111
 * modules through the areas' `mod.ts`, 76 through their public files).
 *
 * Areas, lowest first:
 * `process < core < ssh < providers < runtime < tailnet < lease < mesh < doctor < mod.ts < cli`.
 *
 * Run: `deno run --allow-read --allow-run tools/layers.ts` (part of `deno task check`).
 *
 * @module
 */

/** The areas in order; an area may import only itself and lower areas. */
export const AREAS = [
  "process",
  "core",
  "ssh",
  "providers",
  "runtime",
  "tailnet",
  "lease",
  "mesh",
  "doctor",
  "mod",
  "cli",
] as const;

/** One area of the layout. */
export type Area = typeof AREAS[number];

/**
 * The area of a repo-relative path (`lib/mesh/live.ts` → `mesh`), or
 * `undefined` for files outside the layered code (tests, bench, tools).
 */
export function areaOf(path: string): Area | undefined {
  if (path === "mod.ts") return "mod";
  if (path === "cli.ts" || path.startsWith("cli/")) return "cli";
  if (path === "lib/runtime.ts") return "runtime";
  if (path.startsWith("providers/")) return "providers";
  const m = /^lib\/([a-z_]+)\//.exec(path);
  if (m && (AREAS as readonly string[]).includes(m[1])) return m[1] as Area;
  return undefined;
}

/**
 * The folder an import must go through when it leaves its own folder:
 * `lib/<area>/`, `providers/<name>/` or `providers/` itself.
 */
function unitOf(path: string): string {
  if (path.startsWith("providers/")) {
    const parts = path.split("/");
    return parts.length > 2 ? `providers/${parts[1]}` : "providers";
  }
  const m = /^lib\/([a-z_]+)\//.exec(path);
  return m ? `lib/${m[1]}` : path;
}

/** Whether `from` may import `to`: its own folder, a `mod.ts`, or a public module of another folder. */
function importAllowed(from: string, to: string, publicModules: ReadonlySet<string>): boolean {
  if (to === "lib/runtime.ts" || to === "mod.ts" || to.endsWith("/mod.ts")) return true;
  const fromUnit = unitOf(from);
  const toUnit = unitOf(to);
  if (fromUnit === toUnit) return true;
  // A provider folder uses the seam's types and the registry of its own area.
  if (fromUnit.startsWith("providers/") && toUnit === "providers") return true;
  // The CLI's own files.
  if (areaOf(from) === "cli" && areaOf(to) === "cli") return true;
  return publicModules.has(to);
}

/**
 * The public modules of every folder: the files each `mod.ts` re-exports
 * from (repo-relative paths), given the text of every `mod.ts` by path.
 *
 * @example
 * ```ts
 * import { publicModules } from "./layers.ts";
 * publicModules(new Map([["lib/core/mod.ts", 'export * from "./fs.ts";']])); // Set { "lib/core/fs.ts" }
 * ```
 */
export function publicModules(modTexts: ReadonlyMap<string, string>): Set<string> {
  const out = new Set<string>();
  for (const [path, text] of modTexts) {
    const dir = path.slice(0, path.lastIndexOf("/") + 1);
    for (
      const m of text.matchAll(/^export\s+(?:type\s+)?(?:\*|\{[^}]*\})\s+from\s+"\.\/([^"]+)";/gm)
    ) {
      out.add(dir + m[1]);
    }
  }
  return out;
}

/** An import edge between two repo files. */
export interface Edge {
  /** Importing file (repo-relative). */
  from: string;
  /** Imported file (repo-relative). */
  to: string;
}

/**
 * The problems of an import graph, one line each; `publicModules` are the
 * files other folders may import besides `mod.ts` (see {@link publicModules}).
 */
export function layerProblems(
  edges: readonly Edge[],
  publicModules: ReadonlySet<string> = new Set(),
): string[] {
  const problems: string[] = [];
  for (const { from, to } of edges) {
    const a = areaOf(from);
    const b = areaOf(to);
    if (a === undefined || b === undefined) continue;
    if (AREAS.indexOf(b) > AREAS.indexOf(a)) {
      problems.push(`upward import: ${from} (${a}) imports ${to} (${b})`);
    } else if (!importAllowed(from, to, publicModules)) {
      problems.push(
        `import of a private file: ${from} imports ${to} (not re-exported by its mod.ts)`,
      );
    }
  }
  for (const cycle of cycles(edges)) problems.push(`cycle among: ${cycle.join(", ")}`);
  return problems;
}

/** Every strongly connected component with more than one file (or a self-import). */
export function cycles(edges: readonly Edge[]): string[][] {
  const graph = new Map<string, string[]>();
  for (const { from, to } of edges) {
    if (!graph.has(from)) graph.set(from, []);
    if (!graph.has(to)) graph.set(to, []);
    graph.get(from)!.push(to);
  }
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)!.includes(v)) out.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/**
 * The one lazy import below the CLI, by file: `yaml` in config parsing. The
 * CLI loads `lib/core` for every command; importing yaml statically costs
 * `crabbox --help` about 25 ms (55 → 80 ms measured), so it is loaded only when
 * a config file exists.
 */
export const ALLOWED_LAZY: Readonly<Record<string, string>> = {
  "lib/core/config.ts": 'await import("yaml")',
};

/** Files that contain `await import(` in code, outside `cli/` and `providers/registry.ts`. */
export function lazyImportProblems(files: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  for (const [path, text] of files) {
    if (areaOf(path) === "cli" || path === "providers/registry.ts") continue;
    text.split("\n").forEach((line, i) => {
      const code = line.trimStart();
      if (code.startsWith("*") || code.startsWith("//")) return;
      if (ALLOWED_LAZY[path] !== undefined && line.includes(ALLOWED_LAZY[path])) return;
      if (/\bawait import\(/.test(line)) {
        problems.push(`await import outside cli/ and providers/registry.ts: ${path}:${i + 1}`);
      }
    });
  }
  return problems;
}

interface InfoModule {
  specifier: string;
  dependencies?: {
    code?: { specifier?: string };
    type?: { specifier?: string };
  }[];
}

async function denoInfo(root: string, file: string): Promise<InfoModule[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", file],
    cwd: root,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`deno info ${file} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout)).modules as InfoModule[];
}

async function walk(root: string, dir: string, out: string[]): Promise<void> {
  for await (const e of Deno.readDir(`${root}/${dir}`)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) await walk(root, path, out);
    else if (e.name.endsWith(".ts")) out.push(path);
  }
}

async function main(): Promise<number> {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const prefix = `file://${root}/`;
  const layered: string[] = ["mod.ts", "cli.ts"];
  for (const dir of ["lib", "providers", "cli"]) await walk(root, dir, layered);
  const edges: Edge[] = [];
  const seen = new Set<string>();
  for (const file of layered) {
    if (seen.has(file)) continue;
    for (const m of await denoInfo(root, file)) {
      if (!m.specifier.startsWith(prefix)) continue;
      const from = m.specifier.slice(prefix.length);
      if (seen.has(from)) continue;
      seen.add(from);
      for (const d of m.dependencies ?? []) {
        for (const s of new Set([d.code?.specifier, d.type?.specifier])) {
          if (s?.startsWith(prefix)) edges.push({ from, to: s.slice(prefix.length) });
        }
      }
    }
  }
  const texts = new Map<string, string>();
  for (const file of layered) texts.set(file, await Deno.readTextFile(`${root}/${file}`));
  const mods = new Map([...texts].filter(([path]) => path.endsWith("/mod.ts")));
  const problems = [...layerProblems(edges, publicModules(mods)), ...lazyImportProblems(texts)];
  for (const p of problems) console.error(`layers: ${p}`);
  const areaEdges = new Set(
    edges.map((e) => [areaOf(e.from), areaOf(e.to)]).filter(([a, b]) => a && b && a !== b)
      .map(([a, b]) => `${a}->${b}`),
  );
  console.log(
    `layers: ${seen.size} modules, ${edges.length} imports, ${areaEdges.size} area edges, ` +
      `${problems.length} problem(s)`,
  );
  return problems.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
