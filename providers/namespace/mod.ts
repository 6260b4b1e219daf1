/**
 * The `namespace` provider.
 *
 * @module
 */

export * from "./provider.ts";
