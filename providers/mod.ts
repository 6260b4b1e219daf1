/**
 * The provider seam (types) and the registry of built-in providers.
 *
 * @module
 */

export * from "./types.ts";
export * from "./registry.ts";
