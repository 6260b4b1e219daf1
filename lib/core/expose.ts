/**
 * `--expose` parsing and the exposed-ports label value.
 *
 * @module
 */

import { usageError } from "./errors.ts";

/** At most this many distinct ports per lease (fits a 63-character label). */
export const MAX_EXPOSED_PORTS = 10;

const PLAIN_PORT = /^[1-9][0-9]{0,4}$/;

/**
 * Parse repeatable, comma-separated `--expose` values into a sorted list of
 * distinct TCP ports. Each part must be plain digits in 1..65535 (no sign,
 * no leading zero). Throws a usage error naming the offending value.
 *
 * @example
 * ```ts
 * import { parseExposedPorts } from "./expose.ts";
 * parseExposedPorts(["8080", "9090", "9090", "80,443"]); // [80, 443, 8080, 9090]
 * ```
 */
export function parseExposedPorts(values: readonly string[]): number[] {
  const ports = new Set<number>();
  for (const raw of values) {
    const parts = raw.split(",").map((p) => p.trim()).filter((p) => p !== "");
    if (parts.length === 0) {
      throw usageError("bad_expose", `--expose value ${JSON.stringify(raw)} must not be empty`);
    }
    for (const part of parts) ports.add(parsePort(part));
  }
  if (ports.size > MAX_EXPOSED_PORTS) {
    throw usageError(
      "bad_expose",
      `--expose accepts at most ${MAX_EXPOSED_PORTS} distinct ports per lease (got ${ports.size})`,
    );
  }
  return [...ports].sort((a, b) => a - b);
}

function parsePort(part: string): number {
  const n = PLAIN_PORT.test(part) ? Number(part) : NaN;
  if (!(n >= 1 && n <= 65535)) {
    throw usageError(
      "bad_expose",
      `--expose ${JSON.stringify(part)} must be a TCP port in 1..65535`,
    );
  }
  return n;
}

/**
 * Validate one port given programmatically (e.g. to {@link parseExposedPorts}'s
 * callers or `exposePort`).
 *
 * @example
 * ```ts
 * import { validatePort } from "./expose.ts";
 * validatePort(8080); // 8080
 * ```
 */
export function validatePort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw usageError("bad_expose", `port ${port} must be a TCP port in 1..65535`);
  }
  return port;
}

/**
 * Render ports as a label value: ascending, joined by `-` (`5432-8080`).
 *
 * @example
 * ```ts
 * import { exposeLabelValue } from "./expose.ts";
 * exposeLabelValue([8080, 5432]); // "5432-8080"
 * ```
 */
export function exposeLabelValue(ports: readonly number[]): string {
  return [...new Set(ports)].sort((a, b) => a - b).join("-");
}

/**
 * Read an exposed-ports label back, ignoring junk tokens.
 *
 * @example
 * ```ts
 * import { parseExposeLabel } from "./expose.ts";
 * parseExposeLabel("8080-xyz-9090-bad-80"); // [80, 8080, 9090]
 * ```
 */
export function parseExposeLabel(value: string | undefined): number[] {
  const ports = new Set<number>();
  for (const token of (value ?? "").trim().split("-")) {
    const t = token.trim();
    if (!/^[0-9]{1,5}$/.test(t)) continue;
    const n = Number(t);
    if (n >= 1 && n <= 65535) ports.add(n);
  }
  return [...ports].sort((a, b) => a - b);
}
