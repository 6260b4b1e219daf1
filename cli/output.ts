/**
 * Printing for the CLI: the {@link CliIo} every command writes through
 * (stdout/stderr lines, JSON, the exit status it sets, the library options
 * it passes on), tables, errors as one line, and a TTY-only spinner.
 *
 * @module
 */

import { CrabboxError } from "../lib/core/errors.ts";
import { processEnv } from "../lib/core/fs.ts";
import { redact, SECRET_ENV_NAME, SECRET_ENV_NAMES, secretEnvValues } from "../lib/core/redact.ts";
import type { CrabboxOptions } from "../lib/runtime.ts";
import { type CliTiming, cliTiming } from "./timing.ts";

/** Where a CLI run writes and what it hands to the library. */
export interface CliIo {
  /** Write a line to stdout. */
  out(line?: string): void;
  /** Write a line to stderr. */
  err(line: string): void;
  /** Print a value as pretty JSON on stdout. */
  printJson(value: unknown): void;
  /** Write raw text to stdout (help, completion scripts). */
  writeOut(text: string): void;
  /** Write raw text to stderr (help after a missing subcommand, JSON errors). */
  writeErr(text: string): void;
  /** The exit status the command sets (0 unless it says otherwise). */
  status: number;
  /** Options for every library call (home, env, providers, process, …). */
  options: CrabboxOptions;
  /** Whether to draw a spinner on stderr (a real terminal only). */
  spinner: boolean;
  /** Help text width for given streams (80); `undefined`: the terminal's. */
  helpWidth?: number;
  /** `--json` was given: errors go to stderr as one JSON object. */
  json?: boolean;
  /** `CRABBOX_TIMING=1`: where the command's time went (see `timing.ts`). */
  timing: CliTiming;
}

/** Output sinks of {@link makeIo}; each receives whole chunks of text. */
export interface CliStreams {
  /** stdout (default: the process's stdout). */
  stdout?: (text: string) => void;
  /** stderr (default: the process's stderr). */
  stderr?: (text: string) => void;
}

const enc = new TextEncoder();
const processStdout = (text: string) => void Deno.stdout.writeSync(enc.encode(text));
const processStderr = (text: string) => void Deno.stderr.writeSync(enc.encode(text));

/**
 * A {@link CliIo} over the given streams (default: the process's own; then
 * the spinner is drawn when stderr is a terminal).
 *
 * @example
 * ```ts
 * import { makeIo } from "./output.ts";
 * let text = "";
 * const io = makeIo({ stdout: (t) => text += t }, {});
 * io.out("hello"); // text === "hello\n"
 * ```
 */
export function makeIo(streams: CliStreams, options: CrabboxOptions): CliIo {
  // Every secret value in the environment is redacted from everything written,
  // whatever its form (an `hskey-…` echoed inside a provider error included).
  const secrets = secretEnvValues(options.env ?? processEnv, secretNames(options));
  const clean = (write: (text: string) => void) => (text: string) => write(redact(text, secrets));
  const stdout = clean(streams.stdout ?? processStdout);
  const stderr = clean(streams.stderr ?? processStderr);
  return {
    out: (line = "") => stdout(line + "\n"),
    err: (line) => stderr(line + "\n"),
    printJson: (value) => stdout(JSON.stringify(value, null, 2) + "\n"),
    writeOut: stdout,
    writeErr: stderr,
    status: 0,
    options,
    spinner: streams.stderr === undefined && Deno.stderr.isTerminal(),
    helpWidth: streams.stdout === undefined ? undefined : 80,
    timing: cliTiming(options.env ?? processEnv),
  };
}

/** Secret variable names: the known ones, plus the process's own that look secret. */
function secretNames(options: CrabboxOptions): string[] {
  if (options.env !== undefined) return [...SECRET_ENV_NAMES];
  let own: string[] = [];
  try {
    own = Object.keys(Deno.env.toObject()).filter((n) => SECRET_ENV_NAME.test(n));
  } catch { /* no env permission: the known names only */ }
  return [...new Set([...SECRET_ENV_NAMES, ...own])];
}

/** Render rows as aligned columns (first row is the header). */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join("  "))
    .join("\n");
}

/** The `--json` error object: `{"error":{"kind","code","message","hint"}}`. */
export interface JsonError {
  /** The error. */
  error: {
    /** Failure class (`usage`, `notFound`, `provider`, …; see the exit status table). */
    kind: string;
    /** Stable machine-readable code (`bad_expose`, `slug_taken`, …). */
    code: string;
    /** The one-line message (the same text as without `--json`). */
    message: string;
    /** How to fix it, or `null`. */
    hint: string | null;
  };
}

/**
 * The `--json` error object for `e` (unexpected errors are kind `failure`,
 * code `internal`).
 *
 * @example
 * ```ts
 * import { jsonError } from "./output.ts";
 * import { usageError } from "../lib/core/mod.ts";
 * jsonError(usageError("bad_expose", "--expose \"x\" must be a TCP port")).error.kind; // "usage"
 * ```
 */
export function jsonError(e: unknown): JsonError {
  if (e instanceof CrabboxError) {
    return { error: { kind: e.kind, code: e.code, message: e.message, hint: e.hint ?? null } };
  }
  const message = e instanceof Error ? e.message : String(e);
  return {
    error: { kind: "failure", code: "internal", message: message.split("\n")[0], hint: null },
  };
}

/** True when `args` ask for `--json` (before a `--` that starts a remote command). */
export function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).includes("--json");
}

/**
 * Print an error as one line (plus a hint line) on stderr — with `--json`,
 * as one {@link JsonError} object on one line — and return the exit status
 * for it. Unexpected errors exit 1 with their message, no stack trace unless
 * `CRABBOX_DEBUG` is set.
 */
export function reportError(io: CliIo, e: unknown): number {
  if (io.json) {
    io.writeErr(JSON.stringify(jsonError(e)) + "\n");
    return e instanceof CrabboxError ? e.exitStatus : 1;
  }
  if (e instanceof CrabboxError) {
    io.err(`crabbox: ${e.message}`);
    if (e.hint) io.err(`hint: ${e.hint}`);
    return e.exitStatus;
  }
  const message = e instanceof Error ? e.message : String(e);
  io.err(`crabbox: ${message.split("\n")[0]}`);
  if ((io.options.env ?? processEnv)("CRABBOX_DEBUG") && e instanceof Error) io.err(e.stack ?? "");
  return 1;
}

/** A spinner on stderr while `work` runs, only when stderr is a TTY. */
export async function withSpinner<T>(io: CliIo, text: string, work: () => Promise<T>): Promise<T> {
  if (!io.spinner) return await work();
  const { default: spinner } = await import("yocto-spinner");
  const { default: process } = await import("node:process");
  const s = spinner({ text, stream: process.stderr }).start();
  try {
    const result = await work();
    s.success(text);
    return result;
  } catch (e) {
    s.error(text);
    throw e;
  }
}

/**
 * One line per released lease: `released <id> (removed: …)`, or just
 * `released <id>` when nothing was left.
 *
 * @example
 * ```ts
 * import { releasedLine } from "./output.ts";
 * releasedLine("cbx-0123456789ab", ["claim"]); // "released cbx-0123456789ab (removed: claim)"
 * ```
 */
export function releasedLine(id: string, removed: readonly string[] | undefined): string {
  return removed && removed.length > 0
    ? `released ${id} (removed: ${removed.join(", ")})`
    : `released ${id}`;
}

/** Help of `--network` (run, ssh, crew connect). */
export const NETWORK_HELP =
  "how to reach a tailnet member: auto (its tailnet address when this machine sees it online, else public; default), tailscale or public";

/** The `--network` value, validated (undefined: config `network`, else auto). */
export async function networkFlag(value: string | undefined) {
  if (value === undefined) return undefined;
  const { parseNetworkMode } = await import("../lib/lease/network.ts");
  return parseNetworkMode(value);
}
