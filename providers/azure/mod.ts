/**
 * The `azure` provider: Azure virtual machines.
 *
 * @module
 */

export * from "./provider.ts";
