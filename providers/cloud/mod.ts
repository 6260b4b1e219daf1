/**
 * Shared helpers of the cloud providers (ssh waiting, config values, owners
 * of shared resources, API base URLs, backoff).
 *
 * @module
 */

export * from "./common.ts";
export * from "./http.ts";
export * from "./flat_tags.ts";
export * from "./ws_tunnel.ts";
export * from "./http_api.ts";
export * from "./lease_identity.ts";
export * from "./operator_address.ts";
export * from "./request_data.ts";
export * from "./delete_guard.ts";
