/**
 * The `runpod` provider.
 *
 * @module
 */

export * from "./provider.ts";
