/**
 * The `proxmox` provider.
 *
 * @module
 */

export * from "./provider.ts";
