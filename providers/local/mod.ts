/**
 * The `local` provider: boxes are network namespaces with their own sshd.
 *
 * @module
 */

export * from "./provider.ts";
