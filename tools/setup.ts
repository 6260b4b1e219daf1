/**
 * The set-up step of README's test command (`deno task test` runs it first):
 * as root with `apt-get`, installs the packages the test suite needs that are
 * missing (printing the exact command); otherwise prints that command and
 * exits 6. Nothing missing: prints nothing.
 *
 * ```sh
 * deno run -A tools/setup.ts
 * ```
 *
 * @module
 */

import { CrabboxError } from "../lib/core/mod.ts";
import {
  ensurePackages,
  LOCAL_REQUIREMENTS,
  type PackageRequirement,
} from "../providers/local/mod.ts";

/**
 * What the test suite needs beyond the local provider: `jq` and `dash` for
 * the boxes' scripts, cloud-init and PyYAML for the cloud-init tests, `ps`,
 * and `openssl` for the test CA of the `wss:` tests.
 */
export const TEST_REQUIREMENTS: readonly PackageRequirement[] = [
  { name: "jq", pkg: "jq" },
  { name: "dash", pkg: "dash" },
  { name: "cloud-init", pkg: "cloud-init" },
  { name: "yaml", pkg: "python3-yaml", file: "/usr/lib/python3/dist-packages/yaml/__init__.py" },
  { name: "ps", pkg: "procps" },
  { name: "openssl", pkg: "openssl" },
];

/** Every package the test task installs: the local provider's, then the suite's. */
export const SETUP_REQUIREMENTS: readonly PackageRequirement[] = [
  ...LOCAL_REQUIREMENTS,
  ...TEST_REQUIREMENTS,
];

if (import.meta.main) {
  try {
    await ensurePackages(SETUP_REQUIREMENTS, { log: (line) => console.log(line) });
  } catch (e) {
    if (!(e instanceof CrabboxError)) throw e;
    console.error(`crabbox: ${e.message}`);
    Deno.exit(e.exitStatus);
  }
}
