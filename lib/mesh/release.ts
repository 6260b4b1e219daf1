/**
 * Releasing a whole crew the safe way: stop its `--export` SSH-mesh daemons
 * first (their tunnels would otherwise retry against deleted boxes), then
 * release every lease across providers.
 *
 * @module
 */

import { releaseCrew, type ReleaseResult } from "../lease/release.ts";
import type { CrabboxOptions } from "../runtime.ts";
import { disconnectCrew, type DisconnectResult } from "./daemon.ts";

/** What {@link disconnectAndReleaseCrew} did. */
export interface CrewReleaseResult extends ReleaseResult {
  /** The crew's daemons that were stopped. */
  disconnected: DisconnectResult;
}

/**
 * Disconnect a crew's SSH-mesh daemons, then release all its leases. One
 * failed release does not stop the rest; failures are returned.
 *
 * @example
 * ```ts
 * import { disconnectAndReleaseCrew } from "@crabbox/crabbox";
 * const { disconnected, released, failed } = await disconnectAndReleaseCrew("pr-42");
 * console.log(disconnected.stopped, released.length, failed.length);
 * ```
 */
export async function disconnectAndReleaseCrew(
  name: string,
  options: CrabboxOptions & { allOwners?: boolean } = {},
): Promise<CrewReleaseResult> {
  const disconnected = await disconnectCrew(name, options);
  const released = await releaseCrew(disconnected.crew, options);
  return { ...released, disconnected };
}
