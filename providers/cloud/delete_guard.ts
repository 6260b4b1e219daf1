/**
 * The two refusals every provider's `delete` makes before it removes
 * anything: an id that cannot name one of its resources (exit 2), and a
 * resource that does not carry the lease's identity (never deleted).
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";

/**
 * The usage error for a provider id that is not of the provider's form
 * (code `<provider>_bad_id`).
 *
 * @example
 * ```ts
 * import { badProviderIdError } from "./delete_guard.ts";
 * badProviderIdError("runpod", "../x", "a RunPod pod id").message;
 * // '"../x" is not a RunPod pod id'
 * ```
 */
export function badProviderIdError(provider: string, id: string, what: string): CrabboxError {
  return new CrabboxError("usage", `${provider}_bad_id`, `${JSON.stringify(id)} is not ${what}`);
}

/**
 * The error for a resource that is not the lease being deleted (code
 * `<provider>_not_ours`): `resource` names it, `verb` is what was refused.
 *
 * @example
 * ```ts
 * import { notOursError } from "./delete_guard.ts";
 * notOursError("runpod", "RunPod pod p1 (x)", "cbx-0123456789ab", "deleting").message;
 * // "RunPod pod p1 (x) is not lease cbx-0123456789ab; not deleting it"
 * ```
 */
export function notOursError(
  provider: string,
  resource: string,
  leaseId: string,
  verb: string,
): CrabboxError {
  return new CrabboxError(
    "provider",
    `${provider}_not_ours`,
    `${resource} is not lease ${leaseId}; not ${verb} it`,
  );
}
