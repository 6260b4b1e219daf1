/**
 * The host-side relay of a box: a `socat` on its loopback address that runs
 * `ip netns exec <ns> socat STDIO TCP:127.0.0.1:22` per connection.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { joinPath } from "../../lib/core/fs.ts";
import { bindable, type LocalBoxRecord, type ProcRef, requireLeaseId } from "./box.ts";
import { killRef, startDetached, tailFile, waitListening } from "./procs.ts";

/**
 * The relay's argv: socat on the host loopback address that, per connection,
 * runs `ip netns exec <ns> socat STDIO TCP:127.0.0.1:22` (socat's EXEC splits
 * on spaces; `:` and `,` of the inner address are escaped).
 */
export function relayArgv(leaseId: string, ip: string, port: number): string[] {
  requireLeaseId(leaseId);
  if (!/^127\.77\.\d{1,3}\.\d{1,3}$/.test(ip) || !Number.isInteger(port)) {
    throw new CrabboxError("provider", "local_bad_relay", `bad relay address ${ip}:${port}`);
  }
  return [
    "socat",
    `TCP-LISTEN:${port},bind=${ip},reuseaddr,fork,backlog=512,nodelay`,
    `EXEC:ip netns exec ${leaseId} socat STDIO TCP\\:127.0.0.1\\:22\\,nodelay`,
  ];
}

/** Start the host-side relay on box.loopback (port 22 if bindable, else ephemeral). */
export async function startRelay(boxDir: string, box: LocalBoxRecord): Promise<ProcRef> {
  const ip = box.loopback.ip;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = (attempt === 0 ? bindable(ip, 22) : undefined) ?? bindable(ip, 0);
    if (port === undefined) continue;
    const ref = await startDetached(
      relayArgv(box.leaseId, ip, port),
      joinPath(boxDir, "relay.log"),
    );
    if (await waitListening(ref, ip, port, "socat")) {
      box.loopback.port = port;
      return ref;
    }
    killRef(ref, true);
  }
  const log = await tailFile(joinPath(boxDir, "relay.log"));
  throw new CrabboxError(
    "provider",
    "local_relay_failed",
    `relay for ${box.leaseId} on ${ip} did not start`,
    {
      hint: log ? `relay.log: ${log}` : undefined,
    },
  );
}
