/**
 * The `semaphore` provider.
 *
 * @module
 */

export * from "./provider.ts";
