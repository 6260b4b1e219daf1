/**
 * Pure vocabulary and local state: errors, files (atomic writes, locks,
 * private dirs), paths under `$CRABBOX_HOME`, config, names, labels, exposed
 * ports, redaction, sleep and bounded parallelism.
 *
 * @module
 */

export * from "./async.ts";
export * from "./base64.ts";
export * from "./config.ts";
export * from "./duration.ts";
export * from "./errors.ts";
export * from "./expose.ts";
export * from "./fs.ts";
export * from "./home.ts";
export * from "./home_check.ts";
export * from "./labels.ts";
export * from "./lifetime.ts";
export * from "./names.ts";
export * from "./order.ts";
export * from "./redact.ts";
export * from "./retry_after.ts";
export * from "./shape.ts";
export * from "./slugs.ts";
