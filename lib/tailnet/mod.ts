/**
 * Tailscale: the API client, credentials, keys, the policy (HuJSON) editor and
 * the join of a box-to-be.
 *
 * @module
 */

export * from "./api.ts";
export * from "./config.ts";
export * from "./ensure.ts";
export * from "./hujson.ts";
export * from "./hujson_append.ts";
export * from "./join.ts";
export * from "./keys.ts";
export * from "./ops.ts";
export * from "./policy.ts";
export * from "./policy_read.ts";
export * from "./policy_snippet.ts";
export * from "./devices.ts";
export * from "./hostname.ts";
