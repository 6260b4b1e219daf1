/**
 * What the local provider needs on this machine (root, programs) and the one
 * error that says what to install.
 *
 * @module
 */

import { CrabboxError, processEnv } from "../../lib/core/mod.ts";
import { SSHD_PATH } from "./box.ts";

const COMMANDS: ReadonlyArray<{ name: string; pkg: string; path?: string }> = [
  { name: "ip", pkg: "iproute2" },
  { name: "sshd", pkg: "openssh-server", path: SSHD_PATH },
  { name: "socat", pkg: "socat" },
  { name: "unshare", pkg: "util-linux" },
  { name: "setsid", pkg: "util-linux" },
  { name: "ssh", pkg: "openssh-client" },
  { name: "ssh-keygen", pkg: "openssh-client" },
];

/** Seams for {@link checkLocalPrerequisites}; the defaults probe the real system. */
export interface PrerequisiteProbe {
  /** Effective uid (`null` when unknown). */
  euid: () => number | null;
  /** True when `path` is an executable file. */
  isExecutable: (path: string) => boolean;
  /** The `PATH` search list. */
  path: () => string;
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

const systemProbe: PrerequisiteProbe = {
  euid: () => {
    try {
      const status = Deno.readTextFileSync("/proc/self/status");
      const m = /^Uid:\s+\d+\s+(\d+)/m.exec(status);
      return m ? Number(m[1]) : Deno.uid();
    } catch {
      return Deno.uid();
    }
  },
  isExecutable: isExecutableFile,
  path: () => processEnv("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
};

/**
 * What the local provider is missing on this machine: `"root"` when not
 * running as euid 0, then the names of missing programs (`ip`, `sshd`,
 * `socat`, `unshare`, `setsid`, `ssh`, `ssh-keygen`). Empty when all is there.
 *
 * @example
 * ```ts
 * import { checkLocalPrerequisites } from "./prerequisites.ts";
 * const missing = checkLocalPrerequisites(); // e.g. ["socat"]
 * ```
 */
export function checkLocalPrerequisites(probe: PrerequisiteProbe = systemProbe): string[] {
  const missing: string[] = [];
  if (probe.euid() !== 0) missing.push("root");
  const dirs = probe.path().split(":").filter((d) => d.startsWith("/"));
  for (const cmd of COMMANDS) {
    const found = cmd.path
      ? probe.isExecutable(cmd.path)
      : dirs.some((d) => probe.isExecutable(`${d}/${cmd.name}`));
    if (!found) missing.push(cmd.name);
  }
  return missing;
}

/**
 * The one error for missing prerequisites (kind `prerequisite`, exit 6); its
 * message says exactly what to run.
 *
 * @example
 * ```ts
 * import { localPrerequisiteError } from "./prerequisites.ts";
 * localPrerequisiteError(["root", "socat"]).message;
 * // "local provider needs root and: apt-get install -y socat (missing: root, socat)"
 * ```
 */
export function localPrerequisiteError(missing: readonly string[]): CrabboxError {
  const needsRoot = missing.includes("root");
  const pkgs = [
    ...new Set(COMMANDS.filter((c) => missing.includes(c.name)).map((c) => c.pkg)),
  ];
  const install = pkgs.length > 0 ? `apt-get install -y ${pkgs.join(" ")}` : "";
  const what = needsRoot
    ? (install ? `root and: ${install}` : "root (run crabbox as root, e.g. with sudo)")
    : install;
  return new CrabboxError(
    "prerequisite",
    "local_prerequisites",
    `local provider needs ${what} (missing: ${missing.join(", ")})`,
    {
      hint: "local provider needs root and: " +
        "apt-get install -y openssh-server openssh-client iproute2 socat util-linux",
      details: { missing: [...missing] },
    },
  );
}
