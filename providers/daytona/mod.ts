/**
 * The `daytona` provider.
 *
 * @module
 */

export * from "./provider.ts";
