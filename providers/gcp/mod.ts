/**
 * The `gcp` provider: Google Compute Engine instances.
 *
 * @module
 */

export * from "./provider.ts";
