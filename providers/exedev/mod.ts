/**
 * The `exe-dev` provider.
 *
 * @module
 */

export * from "./provider.ts";
