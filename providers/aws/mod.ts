/**
 * The `aws` provider: EC2 instances.
 *
 * @module
 */

export * from "./provider.ts";
