/**
 * A connected crew at run time: the in-process registry of foreground
 * meshes, the ControlMaster lookup `crabbox run/ssh --id` reuses, and live
 * forwards added on a member's master without restarting its tunnel.
 *
 * @module
 */

import type { Lease } from "../lease/leases.ts";
import { CrabboxError } from "../core/errors.ts";
import { joinPath, processEnv, withLock, writeFileAtomic } from "../core/fs.ts";
import { meshPaths } from "../core/home.ts";
import { isLoopbackPortFree, MESH_PORT_RANGE, nextFreePort } from "./forwards.ts";
import { readDaemonState } from "./daemon_state.ts";
import { type MeshForward, parseHostsFile, renderDaemonState } from "./files.ts";
import { type ConnectOptions, sortForwards, writeMeshFiles } from "./plan.ts";
import type { Ctx, Tunnel } from "./tunnel.ts";
import { sshDestination, sshOptionArgs, sshProgram } from "../ssh/args.ts";
import { controlForLease } from "../ssh/control.ts";
import { output } from "../process/run.ts";

/** Foreground meshes of this process by `<home>\0<crew>` (set by `connectCrew`). */
export const liveMeshes = new Map<string, { tunnels: Tunnel[]; ctx: Ctx }>();

/**
 * Add a forward for a newly exposed port on a connected member, on its live
 * master (`ssh -O forward -L …`) without restarting the tunnel; updates
 * daemon.json (when the member is a daemon), the in-process mesh (so restarts
 * keep it) and the hosts/env files. Resolves `undefined` when the member is
 * not connected.
 *
 * @example
 * ```ts
 * import { addLiveForward } from "./live.ts";
 * import type { Lease } from "@crabbox/crabbox";
 * declare const api: Lease;
 * const f = await addLiveForward("/home/a/.crabbox", api, 9090);
 * if (f) console.log(`127.0.0.1:${f.localPort}`);
 * ```
 */
export async function addLiveForward(
  home: string,
  lease: Lease,
  port: number,
  options: ConnectOptions = {},
): Promise<MeshForward | undefined> {
  if (!lease.crew || !lease.ssh) return undefined;
  const crew = lease.crew;
  const env = options.env ?? processEnv;
  const control = await controlForLease(home, lease, { env, process: options.process });
  if (control.master !== "no") return undefined;
  const paths = meshPaths(home, crew);
  return await withLock(joinPath(paths.dir, ".forward.lock"), async () => {
    const state = await readDaemonState(paths).catch(() => undefined);
    const live = liveMeshes.get(`${home}\0${crew}`);
    const tunnel = live?.tunnels.find((t) => t.member.lease.id === lease.id);
    const proc = state?.processes.find((p) => p.leaseId === lease.id);
    let hostsText = "";
    try {
      hostsText = await Deno.readTextFile(paths.hosts);
    } catch { /* none yet */ }
    const entries = parseHostsFile(hostsText);
    const peer = tunnel?.member.name ?? proc?.peer ?? lease.slug;
    const existing = entries.find((e) => e.peer === peer && e.remotePort === port);
    if (existing) return { ...existing, leaseId: lease.id };
    const used = new Set([
      ...entries.map((e) => e.localPort),
      ...(state?.processes.flatMap((p) => p.forwards.map((f) => f.localPort)) ?? []),
      ...(live?.ctx.taken ?? []),
    ]);
    const isFree = options.isPortFree ?? isLoopbackPortFree;
    const range = options.portRange ?? MESH_PORT_RANGE;
    let lastErr = "";
    for (let i = 0; i < 20; i++) {
      const localPort = nextFreePort(isFree, used, range);
      used.add(localPort);
      const args = [
        ...sshOptionArgs(lease.ssh!, { knownHostsFile: paths.knownHosts, control }),
        "-O",
        "forward",
        "-L",
        `127.0.0.1:${localPort}:127.0.0.1:${port}`,
        "--",
        sshDestination(lease.ssh!),
      ];
      const out = await output(sshProgram(env), {
        args,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }, options.process);
      if (!out.success) {
        lastErr = new TextDecoder().decode(out.stderr).trim();
        continue;
      }
      const fwd: MeshForward = { peer, leaseId: lease.id, remotePort: port, localPort };
      if (tunnel) {
        tunnel.forwards.push(fwd);
        tunnel.forwards.sort((a, b) => a.remotePort - b.remotePort);
        live!.ctx.taken.add(localPort);
      }
      if (state && proc) {
        proc.forwards.push({ localPort, remotePort: port });
        await writeFileAtomic(paths.daemon, renderDaemonState(state));
      }
      const all = sortForwards([
        ...entries.map((e) => ({
          ...e,
          leaseId: state?.processes.find((p) => p.peer === e.peer)?.leaseId ??
            live?.tunnels.find((t) => t.member.name === e.peer)?.member.lease.id ?? "",
        })),
        fwd,
      ]);
      await writeMeshFiles(paths, crew, all);
      return fwd;
    }
    throw new CrabboxError(
      "ssh",
      "live_forward_failed",
      `could not add a forward for ${peer}:${port} on the live master: ${lastErr}`,
    );
  });
}
