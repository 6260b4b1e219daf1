/**
 * Printing for the CLI: errors as one line, JSON, simple tables, exit
 * status, and a TTY-only spinner on stderr.
 *
 * @module
 */

import { CrabboxError } from "../lib/core/mod.ts";

let exitStatus = 0;

/** Set the status `main` returns once the command finishes. */
export function setExitStatus(status: number): void {
  exitStatus = status;
}

/** The status set by the command (0 by default). */
export function currentExitStatus(): number {
  return exitStatus;
}

const enc = new TextEncoder();

/** Write a line to stdout. */
export function out(line = ""): void {
  Deno.stdout.writeSync(enc.encode(line + "\n"));
}

/** Write a line to stderr. */
export function err(line: string): void {
  Deno.stderr.writeSync(enc.encode(line + "\n"));
}

/** Print a value as pretty JSON on stdout. */
export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** Render rows as aligned columns (first row is the header). */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join("  "))
    .join("\n");
}

/**
 * Print an error as one line (plus a hint line) on stderr and return the exit
 * status for it. Unexpected errors exit 1 with their message, no stack trace
 * unless `CRABBOX_DEBUG` is set.
 */
export function reportError(e: unknown): number {
  if (e instanceof CrabboxError) {
    err(`crabbox: ${e.message}`);
    if (e.hint) err(`hint: ${e.hint}`);
    return e.exitStatus;
  }
  const message = e instanceof Error ? e.message : String(e);
  err(`crabbox: ${message.split("\n")[0]}`);
  if (Deno.env.get("CRABBOX_DEBUG") && e instanceof Error) err(e.stack ?? "");
  return 1;
}

/** A spinner on stderr while `work` runs, only when stderr is a TTY. */
export async function withSpinner<T>(text: string, work: () => Promise<T>): Promise<T> {
  if (!Deno.stderr.isTerminal()) return await work();
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
