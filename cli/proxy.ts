/**
 * `crabbox proxy <lease>`: ssh's `ProxyCommand` for boxes reachable only
 * through their provider's proxy (Sprites, Namespace). It joins stdin/stdout
 * to the box's sshd; credentials come from the environment and config, never
 * from argv.
 *
 * @module
 */

import { arg, command, value } from "./args/command.ts";
import { usageError } from "../lib/core/errors.ts";
import type { CliIo } from "./output.ts";

/**
 * The `proxy` command. Its stdin/stdout are a byte stream for ssh, so it uses
 * the process's own streams; `io` gives it the library options.
 */
export function proxyCommand(io: CliIo) {
  return command({
    name: "proxy",
    description:
      "join stdin/stdout to a box's sshd through its provider's proxy (ssh ProxyCommand)",
    args: { lease: arg("lease id (cbx-…)") },
    options: {
      port: value("--port <port>", "TCP port on the box", { default: "22" }),
      home: value("--home <dir>", "crabbox home of the lease", { hidden: true }),
      provider: value("--provider <name>", "provider of the box (skips the claim)", {
        hidden: true,
      }),
      box: value("--box <id>", "the provider's id of the box", { hidden: true }),
    },
    action: async (flags, { lease: leaseId }) => {
      const { proxyToLease } = await import("../lib/lease/proxy.ts");
      if (!/^[0-9]+$/.test(flags.port)) {
        throw usageError("bad_port", `--port ${JSON.stringify(flags.port)} must be 1..65535`);
      }
      await proxyToLease(
        { leaseId, provider: flags.provider, providerId: flags.box, port: Number(flags.port) },
        Deno.stdin.readable,
        Deno.stdout.writable,
        flags.home === undefined ? io.options : { ...io.options, home: flags.home },
      );
    },
  });
}
