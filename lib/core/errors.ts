/**
 * Typed errors. Every failure crabbox reports is a {@link CrabboxError} with a
 * stable `code`, the process `exitStatus` the CLI exits with, and an optional
 * one-line `hint` that says how to fix it.
 *
 * @module
 */

/** Exit statuses of the `crabbox` CLI, one per failure class. */
export const ExitStatus = {
  /** Success. */
  ok: 0,
  /** A check failed (doctor) or part of a bulk operation failed. */
  failure: 1,
  /** Bad flags, arguments or input values. Nothing was created. */
  usage: 2,
  /** A lease, crew, host or state file does not exist. */
  notFound: 3,
  /** A provider API or provider-side operation failed. */
  provider: 4,
  /** ssh could not connect, or a forward never became reachable. */
  ssh: 5,
  /** A system prerequisite is missing (root, openssh-server, iproute2, socat). */
  prerequisite: 6,
  /** Local state is locked, corrupt or in conflict. */
  state: 7,
  /** No free local port in the forward range. */
  portsExhausted: 8,
  /** Credentials are missing or were rejected. */
  credentials: 9,
  /** The tailnet policy could not be read, merged or written. */
  tailnet: 10,
  /** Configuration file is invalid. */
  config: 11,
  /** Interrupted by a signal before finishing. */
  interrupted: 130,
} as const;

/** A name of one of the {@link ExitStatus} classes. */
export type ExitStatusName = keyof typeof ExitStatus;

/** Options for {@link CrabboxError}. */
export interface CrabboxErrorOptions {
  /** One line telling the user how to fix the problem. */
  hint?: string;
  /** The underlying error, kept for debugging (never printed with secrets). */
  cause?: unknown;
  /** Structured details for `--json` output. */
  details?: Record<string, unknown>;
}

/**
 * The one error type crabbox throws on purpose.
 *
 * @example
 * ```ts
 * import { CrabboxError } from "@crabbox/crabbox";
 * try {
 *   throw new CrabboxError("usage", "bad_expose", '--expose "abc" must be a TCP port in 1..65535');
 * } catch (e) {
 *   if (e instanceof CrabboxError) console.log(e.exitStatus); // 2
 * }
 * ```
 */
export class CrabboxError extends Error {
  /** Stable machine-readable code, e.g. `bad_expose`. */
  readonly code: string;
  /** The failure class. */
  readonly kind: ExitStatusName;
  /** The exit status the CLI uses for this error. */
  readonly exitStatus: number;
  /** How to fix it, if known. */
  readonly hint?: string;
  /** Structured details. */
  readonly details?: Record<string, unknown>;

  /**
   * Create an error of a failure class.
   *
   * @param kind failure class; selects the exit status
   * @param code stable machine-readable code
   * @param message one line, no secrets
   * @param options hint, cause, details
   */
  constructor(
    kind: ExitStatusName,
    code: string,
    message: string,
    options: CrabboxErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CrabboxError";
    this.kind = kind;
    this.code = code;
    this.exitStatus = ExitStatus[kind];
    this.hint = options.hint;
    this.details = options.details;
  }
}

/**
 * Shorthand for a usage error (exit status 2).
 *
 * @example
 * ```ts
 * import { usageError } from "./errors.ts";
 * throw usageError("bad_crew", "--crew must contain at least one letter or digit");
 * ```
 */
export function usageError(code: string, message: string, hint?: string): CrabboxError {
  return new CrabboxError("usage", code, message, { hint });
}

/** True when `e` is a {@link CrabboxError}. */
export function isCrabboxError(e: unknown): e is CrabboxError {
  return e instanceof CrabboxError;
}
