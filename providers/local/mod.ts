/**
 * The `local` provider: boxes are network namespaces with their own sshd.
 *
 * @module
 */

export { createLocalProvider } from "./provider.ts";
export {
  checkLocalPrerequisites,
  LOCAL_REQUIREMENTS,
  localPrerequisiteError,
  type PackageRequirement,
  type PrerequisiteProbe,
  requirementMet,
  systemPrerequisiteProbe,
} from "./prerequisites.ts";
export {
  aptInstallArgv,
  ensurePackages,
  type EnsurePackagesOptions,
  type InstallFacts,
  type InstallPlan,
  planInstall,
  SSHD_RUN_DIR,
} from "./install.ts";
export {
  boxHostname,
  localBoxDir,
  type LocalBoxRecord,
  loopbackAddressFor,
  type ProcRef,
  SSHD_PATH,
} from "./box.ts";
export { renderSshdConfig, restartSshd, stopSshd } from "./sshd.ts";
export { relayArgv } from "./relay.ts";
export {
  BOX_CREW_IFACE,
  boxEtcDir,
  CREW_BRIDGE,
  type CrewNetAddress,
  crewNetNamespace,
  renderBoxHosts,
} from "./crew_net.ts";
