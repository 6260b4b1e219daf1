/**
 * The `local` provider: boxes are network namespaces with their own sshd.
 *
 * @module
 */

export { createLocalProvider } from "./provider.ts";
export {
  checkLocalPrerequisites,
  localPrerequisiteError,
  type PrerequisiteProbe,
} from "./prerequisites.ts";
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
