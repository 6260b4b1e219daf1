/**
 * What the local provider needs on this machine (root, programs) and the one
 * error that says what to install.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { processEnv } from "../../lib/core/fs.ts";
import { SSHD_PATH } from "./box.ts";

/**
 * A Debian package and the program (or file) that shows it is installed:
 * `name` is looked up on `PATH` unless `path` (absolute) is given.
 */
export interface PackageRequirement {
  /** Program name, as reported missing (`socat`). */
  name: string;
  /** The Debian/Ubuntu package that provides it (`socat`). */
  pkg: string;
  /** An absolute path of an executable to test instead of searching `PATH`. */
  path?: string;
  /** An absolute path of a plain file that shows the package is installed (a library). */
  file?: string;
}

/**
 * What the local provider needs, one row per program: the single list the
 * prerequisite check, the first-run installer and the error's hint read.
 */
export const LOCAL_REQUIREMENTS: readonly PackageRequirement[] = [
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
  /** True when a file exists at `path` (default: stat it). */
  exists?: (path: string) => boolean;
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && info.mode !== null && (info.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The probe of the real system (effective uid, files, `PATH`). */
export const systemPrerequisiteProbe: PrerequisiteProbe = {
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
  exists: fileExists,
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
export function checkLocalPrerequisites(
  probe: PrerequisiteProbe = systemPrerequisiteProbe,
): string[] {
  const missing: string[] = [];
  if (probe.euid() !== 0) missing.push("root");
  for (const req of LOCAL_REQUIREMENTS) {
    if (!requirementMet(req, probe)) missing.push(req.name);
  }
  return missing;
}

/**
 * Whether `req` is installed: its `file` exists, its `path` is executable,
 * else `name` is in a `PATH` directory.
 *
 * @example
 * ```ts
 * import { requirementMet, systemPrerequisiteProbe } from "./prerequisites.ts";
 * requirementMet({ name: "sh", pkg: "dash" }, systemPrerequisiteProbe); // true
 * ```
 */
export function requirementMet(req: PackageRequirement, probe: PrerequisiteProbe): boolean {
  if (req.file) return (probe.exists ?? fileExists)(req.file);
  if (req.path) return probe.isExecutable(req.path);
  return probe.path().split(":").filter((d) => d.startsWith("/"))
    .some((d) => probe.isExecutable(`${d}/${req.name}`));
}

// The hint's historical order: the ssh packages first.
const HINT_ORDER = ["openssh-server", "openssh-client", "iproute2", "socat", "util-linux"];
const byHintOrder = (a: string, b: string) => HINT_ORDER.indexOf(a) - HINT_ORDER.indexOf(b);

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
    ...new Set(LOCAL_REQUIREMENTS.filter((c) => missing.includes(c.name)).map((c) => c.pkg)),
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
      hint: "local provider needs root and: apt-get install -y " +
        [...new Set(LOCAL_REQUIREMENTS.map((c) => c.pkg))].sort(byHintOrder).join(" "),
      details: { missing: [...missing] },
    },
  );
}
