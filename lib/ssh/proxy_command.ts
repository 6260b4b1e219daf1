/**
 * How to start this crabbox again as a child of ssh: the argv of
 * `crabbox proxy …`, built from the running executable (a compiled binary, or
 * `deno run` with the script path, its config and the permissions the proxy
 * needs). The argv never holds a secret: the proxy reads credentials from the
 * environment and config itself.
 *
 * @module
 */

import { dirOf, joinPath } from "../core/fs.ts";

/** What the running process is. */
export interface SelfInvocation {
  /** `Deno.execPath()`: the deno binary, or the compiled crabbox. */
  execPath: string;
  /**
   * URL of crabbox's own `cli.ts` (next to this library, whatever script
   * imported it: the CLI, a user's script, a bench).
   */
  cliModule: string;
  /** The deno.json(c) to pass with `--config`, if the script has one. */
  configFile?: string;
}

/** Permissions `crabbox proxy` needs under `deno run`: config/claims, env, the proxy socket. */
export const PROXY_PERMISSIONS = ["--allow-read", "--allow-env", "--allow-net"] as const;

/**
 * argv that starts the crabbox CLI again: `[binary]` when compiled, else
 * `[deno, run, -q, --no-prompt, perms…, (--config f), script]`.
 *
 * @example
 * ```ts
 * import { selfArgv } from "./proxy_command.ts";
 * selfArgv({ execPath: "/usr/local/bin/crabbox", cliModule: "file:///x/cli.ts" });
 * // ["/usr/local/bin/crabbox"]
 * selfArgv({ execPath: "/usr/bin/deno", cliModule: "file:///src/crabbox/cli.ts" });
 * // ["/usr/bin/deno", "run", "-q", "--no-prompt", "--allow-read", "--allow-env", "--allow-net", "/src/crabbox/cli.ts"]
 * ```
 */
export function selfArgv(self: SelfInvocation): string[] {
  const base = self.execPath.split("/").pop() ?? "";
  if (!/^deno(\.exe)?$/.test(base)) return [self.execPath];
  const script = self.cliModule.startsWith("file:")
    ? decodeURIComponent(new URL(self.cliModule).pathname)
    : self.cliModule;
  return [
    self.execPath,
    "run",
    "-q",
    "--no-prompt",
    ...PROXY_PERMISSIONS,
    ...(self.configFile ? ["--config", self.configFile] : []),
    script,
  ];
}

/** Where `crabbox proxy` should reach. */
export interface ProxyTarget {
  /** The crabbox home the lease lives in. */
  home: string;
  /** Provider name. */
  provider: string;
  /** The provider's id of the box. */
  providerId: string;
  /** Lease id. */
  leaseId: string;
  /** TCP port on the box (sshd). */
  port: number;
}

/**
 * The full ProxyCommand argv for a box: the provider and box id are given
 * explicitly so that the proxy works while the lease is still being created
 * (before its claim is complete).
 *
 * @example
 * ```ts
 * import { proxyArgv } from "./proxy_command.ts";
 * proxyArgv({ home: "/h", provider: "sprites", providerId: "crabbox-api-0a", leaseId: "cbx-0123456789ab", port: 22 },
 *   { execPath: "/usr/local/bin/crabbox", cliModule: "file:///cli.ts" });
 * // ["/usr/local/bin/crabbox", "proxy", "--home", "/h", "--provider", "sprites", "--box", "crabbox-api-0a", "--port", "22", "cbx-0123456789ab"]
 * ```
 */
export function proxyArgv(
  target: ProxyTarget,
  self: SelfInvocation = currentInvocation(),
): string[] {
  return [
    ...selfArgv(self),
    "proxy",
    "--home",
    target.home,
    "--provider",
    target.provider,
    "--box",
    target.providerId,
    "--port",
    String(target.port),
    target.leaseId,
  ];
}

let cached: SelfInvocation | undefined;

/** This process: its executable, crabbox's `cli.ts` and the deno.json next to (or above) it. */
export function currentInvocation(): SelfInvocation {
  if (cached) return cached;
  const self: SelfInvocation = {
    execPath: Deno.execPath(),
    cliModule: new URL("../../cli.ts", import.meta.url).href,
  };
  if (self.cliModule.startsWith("file:")) {
    let dir = dirOf(decodeURIComponent(new URL(self.cliModule).pathname));
    for (let i = 0; i < 20 && dir !== ""; i++) {
      const found = ["deno.json", "deno.jsonc"].map((n) => joinPath(dir, n)).find(isFile);
      if (found) {
        self.configFile = found;
        break;
      }
      const up = dirOf(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return cached = self;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
