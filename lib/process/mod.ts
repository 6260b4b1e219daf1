/**
 * The ground floor: process identity (pid + start time + argv) and the
 * anchor that ties detached children to their parent.
 *
 * @module
 */

export * from "./find.ts";
export * from "./identity.ts";
export * from "./run.ts";
