/**
 * The first-run installer of README's quick start: what is missing, whether
 * this is root, whether `apt-get` is there → a plan (install, or print the
 * command and stop). The plan is a pure decision; {@link ensurePackages}
 * carries it out through the injected process runner.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { type ProcessRunner, systemProcess } from "../../lib/process/run.ts";
import {
  type PackageRequirement,
  type PrerequisiteProbe,
  requirementMet,
  systemPrerequisiteProbe,
} from "./prerequisites.ts";

/** What {@link planInstall} decides. */
export type InstallPlan =
  /** Nothing is missing. */
  | { action: "none" }
  /** Run these commands (argv each), in order. */
  | { action: "install"; packages: string[]; commands: string[][] }
  /** Cannot install here: say `command` and why, then stop (exit 6). */
  | { action: "refuse"; packages: string[]; command: string; reason: string };

/** The facts {@link planInstall} decides on. */
export interface InstallFacts {
  /** Missing Debian packages (duplicates are dropped, order kept). */
  packages: readonly string[];
  /** Running as root (euid 0). */
  root: boolean;
  /** `apt-get` is on `PATH`. */
  aptGet: boolean;
}

/**
 * The `apt-get install` argv for `packages` (no recommends, no prompts).
 *
 * @example
 * ```ts
 * import { aptInstallArgv } from "./install.ts";
 * aptInstallArgv(["socat"]).join(" "); // "apt-get install -y --no-install-recommends socat"
 * ```
 */
export function aptInstallArgv(packages: readonly string[]): string[] {
  return ["apt-get", "install", "-y", "--no-install-recommends", ...packages];
}

/**
 * Decide what to do about missing packages: nothing, install them
 * (`apt-get update` then `apt-get install`) when root with `apt-get`, or
 * refuse with the exact command and the reason.
 *
 * @example
 * ```ts
 * import { planInstall } from "./install.ts";
 * planInstall({ packages: ["socat"], root: false, aptGet: true }).action; // "refuse"
 * ```
 */
export function planInstall(facts: InstallFacts): InstallPlan {
  const packages = [...new Set(facts.packages)];
  if (packages.length === 0) return { action: "none" };
  const install = aptInstallArgv(packages);
  if (!facts.root || !facts.aptGet) {
    return {
      action: "refuse",
      packages,
      command: install.join(" "),
      reason: !facts.root ? "not running as root" : "apt-get is not on PATH",
    };
  }
  return { action: "install", packages, commands: [["apt-get", "update", "-qq"], install] };
}

/** Seams of {@link ensurePackages}. */
export interface EnsurePackagesOptions {
  /** Probes root, files and `PATH` (default: the real system). */
  probe?: PrerequisiteProbe;
  /** Starts apt-get (default: real programs). */
  process?: ProcessRunner;
  /** Creates a directory (default `Deno.mkdir`, recursive); used for `/run/sshd`. */
  mkdir?: (path: string) => Promise<void>;
  /** Whether a path exists (default `Deno.stat`). */
  exists?: (path: string) => Promise<boolean>;
  /** One line per step (`crabbox: installing missing packages: apt-get install …`). */
  log: (line: string) => void;
}

/** The directory sshd needs for privilege separation; packages do not always create it. */
export const SSHD_RUN_DIR = "/run/sshd";

async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function missingPackages(reqs: readonly PackageRequirement[], probe: PrerequisiteProbe): string[] {
  return [...new Set(reqs.filter((r) => !requirementMet(r, probe)).map((r) => r.pkg))];
}

function refusal(packages: readonly string[], command: string, reason: string): CrabboxError {
  return new CrabboxError(
    "prerequisite",
    "missing_packages",
    `missing packages: ${packages.join(", ")} (${reason}); run as root: ${command}`,
    { details: { missing: [...packages], command } },
  );
}

/**
 * Make sure every requirement is installed: installs what is missing when
 * root with `apt-get` (printing each command it runs), creates `/run/sshd`
 * when openssh-server is required and root; otherwise throws a
 * `prerequisite` error (exit 6) whose message holds the exact command.
 *
 * @example
 * ```ts ignore
 * import { ensurePackages } from "./install.ts";
 * import { LOCAL_REQUIREMENTS } from "./prerequisites.ts";
 * await ensurePackages(LOCAL_REQUIREMENTS, { log: console.log });
 * ```
 */
export async function ensurePackages(
  reqs: readonly PackageRequirement[],
  opts: EnsurePackagesOptions,
): Promise<void> {
  const probe = opts.probe ?? systemPrerequisiteProbe;
  const runner = opts.process ?? systemProcess;
  const root = probe.euid() === 0;
  const aptGet = requirementMet({ name: "apt-get", pkg: "apt" }, probe);
  const plan = planInstall({ packages: missingPackages(reqs, probe), root, aptGet });
  if (plan.action === "refuse") throw refusal(plan.packages, plan.command, plan.reason);
  if (plan.action === "install") {
    for (const argv of plan.commands) {
      const [program, ...args] = argv;
      opts.log(
        argv[1] === "install"
          ? `crabbox: installing missing packages: ${argv.join(" ")}`
          : `crabbox: ${argv.join(" ")}`,
      );
      const out = await runner.output(program, {
        args,
        env: { DEBIAN_FRONTEND: "noninteractive" },
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).catch(() => ({ success: false, code: 127 }));
      if (!out.success) {
        throw refusal(
          plan.packages,
          aptInstallArgv(plan.packages).join(" "),
          `${argv.join(" ")} failed (exit ${out.code})`,
        );
      }
    }
    const still = missingPackages(reqs, probe);
    if (still.length > 0) {
      throw refusal(still, aptInstallArgv(still).join(" "), "still missing after apt-get install");
    }
  }
  if (root && reqs.some((r) => r.pkg === "openssh-server")) {
    const exists = opts.exists ?? pathExists;
    if (!await exists(SSHD_RUN_DIR)) {
      opts.log(`crabbox: mkdir -p ${SSHD_RUN_DIR}`);
      await (opts.mkdir ?? ((p) => Deno.mkdir(p, { recursive: true, mode: 0o755 })))(SSHD_RUN_DIR);
    }
  }
}
