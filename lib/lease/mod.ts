/**
 * Leases: claims, create, list/find/release, running commands over ssh, the
 * transport of a member and cloud-init rendering.
 *
 * @module
 */

export * from "./claims.ts";
export * from "./cleanup.ts";
export * from "./cloud_init.ts";
export * from "./cloud_init_lifetime.ts";
export * from "./cloud_init_refresher.ts";
export * from "./create.ts";
export * from "./exec.ts";
export * from "./leases.ts";
export * from "./refresh.ts";
export * from "./release.ts";
export * from "./touch.ts";
export * from "./transport.ts";
export * from "./readiness.ts";
export * from "./proxy.ts";
export * from "./tailnet_leave.ts";
export * from "./network.ts";
export * from "./tailnet_refresh.ts";
