/**
 * The `sprites` provider.
 *
 * @module
 */

export * from "./provider.ts";
