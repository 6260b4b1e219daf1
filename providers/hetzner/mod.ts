/**
 * The `hetzner` provider: Hetzner Cloud servers.
 *
 * @module
 */

export * from "./provider.ts";
