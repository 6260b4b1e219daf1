/**
 * `doctor`: what is ready, what is missing and how to fix it, including the
 * tailnet policy probe.
 *
 * @module
 */

export * from "./checks.ts";
export * from "./peer_plane.ts";
export * from "./tailnet_probe.ts";
export * from "./tailnet_dial.ts";
