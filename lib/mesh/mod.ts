/**
 * The SSH mesh of a crew: forwards, mesh files, planning, tunnels, `--export`
 * daemons, live meshes, peers and connect.
 *
 * @module
 */

export * from "./connect.ts";
export * from "./crew_plan.ts";
export * from "./crew_up.ts";
export * from "./daemon.ts";
export * from "./daemon_state.ts";
export * from "./describe.ts";
export * from "./expose.ts";
export * from "./files.ts";
export * from "./forwards.ts";
export * from "./live.ts";
export * from "./peer_box.ts";
export * from "./peer_sync.ts";
export * from "./peer_table.ts";
export * from "./manifest.ts";
export * from "./peers.ts";
export * from "./plan.ts";
export * from "./probe.ts";
export * from "./release.ts";
export * from "./socket_watch.ts";
export * from "./tunnel.ts";
