/**
 * crabbox — lease machines ("boxes") from many providers into **crews** and
 * make the members of a crew reach each other.
 *
 * Everything the `crabbox` CLI does is a function here, for `deno run`
 * scripts.
 *
 * @example
 * ```ts
 * import { leaseCrew, listLeases } from "./mod.ts";
 *
 * await using crew = await leaseCrew("pr-42", [
 *   { slug: "api", provider: "local", expose: [8080] },
 *   { slug: "db", provider: "local", expose: [5432] },
 * ]);
 * console.log((await listLeases({ crew: "pr-42" })).map((l) => l.slug)); // ["api", "db"]
 * ```
 *
 * @module
 */

export {
  CrabboxError,
  type CrabboxErrorOptions,
  ExitStatus,
  type ExitStatusName,
  isCrabboxError,
} from "./lib/core/errors.ts";
export {
  crewTag,
  isLeaseId,
  newLeaseId,
  normalizeCrewName,
  normalizeName,
  normalizeSlug,
  ownerFor,
  ownerSegment,
  roleOf,
} from "./lib/core/names.ts";
export { exposeLabelValue, parseExposedPorts, parseExposeLabel } from "./lib/core/expose.ts";
export {
  decodeLabels,
  encodeLabels,
  LabelKey,
  type Labels,
  type LeaseLabelFacts,
} from "./lib/core/labels.ts";
export type { Lease, LeaseState } from "./lib/lease/claims.ts";
export type { CrabboxOptions, Runtime } from "./lib/runtime.ts";
export type { EnvReader } from "./lib/core/fs.ts";
export { type Config, loadConfig } from "./lib/core/config.ts";
export {
  exposePort,
  findLease,
  leaseFromProvider,
  listLeases,
  type ListSelector,
  releaseCrew,
  releaseLease,
  type ReleaseResult,
} from "./lib/lease/leases.ts";
export {
  type Crew,
  leaseBox,
  leaseCrew,
  type LeaseOptions,
  type MemberSpec,
  type ValidatedMember,
  validateMember,
} from "./lib/lease/create.ts";
export { providerFeatures } from "./lib/runtime.ts";
export { attachToLease, leaseSshArgs, runOnLease } from "./lib/lease/exec.ts";
export type { SshResult } from "./lib/ssh/args.ts";
export type {
  CreateSpec,
  Feature,
  LeaseSelector,
  Provider,
  ProviderContext,
  ProviderEntry,
  ProviderFactory,
  ProviderLease,
  SshTarget,
  TailnetFacts,
} from "./providers/types.ts";
export { providerNames, providerRegistry } from "./providers/types.ts";
export {
  manualPolicySnippet,
  type ManualPolicySnippetOptions,
  mergeTailnetPolicy,
  type MergeTailnetPolicyOptions,
  type MergeTailnetPolicyResult,
  type PolicyRowsPresence,
  policyRowsPresent,
  type PolicyShape,
  type TextInsertion,
} from "./lib/tailnet/policy.ts";
export {
  ensureTailnetPolicy,
  type EnsureTailnetPolicyOptions,
  type EnsureTailnetPolicyResult,
} from "./lib/tailnet/ensure.ts";
export { mintAuthKey, type MintAuthKeyOptions, MintedAuthKey } from "./lib/tailnet/keys.ts";
export {
  POLICY_API_UNAVAILABLE,
  POLICY_CHANGED,
  type RequestSpec,
  TailnetClient,
  tailnetClientFromEnv,
  type TailnetClientOptions,
  type TailnetPolicy,
  type TailnetResponse,
  type TailnetScope,
} from "./lib/tailnet/api.ts";
export {
  type EnvSource,
  type TailnetAuth,
  tailnetCredentialsFrom,
  type TailnetCredentialStatus,
} from "./lib/tailnet/config.ts";
export { redact } from "./lib/core/redact.ts";
export {
  type CloudInitOptions,
  type CloudInitTailscale,
  renderCloudInit,
} from "./lib/lease/cloud_init.ts";
export {
  type CheckStatus,
  type DoctorCheck,
  type DoctorOptions,
  type DoctorReport,
  runDoctor,
  type TailnetPolicyProbe,
} from "./lib/doctor/checks.ts";
export { defaultTailnetProbe } from "./lib/doctor/tailnet_probe.ts";
export {
  memberTransport,
  providerPlanes,
  type Reachability,
  reachabilityMatrix,
  sshEndpoint,
  type Transport,
} from "./lib/lease/transport.ts";
export type { PolicyBootstrapResult, TailnetJoin, TailnetOps } from "./lib/tailnet/join.ts";
export { connectCrew, type CrewMesh, type MemberStatus } from "./lib/mesh/connect.ts";
export {
  type DaemonResult,
  disconnectCrew,
  type DisconnectResult,
  startCrewDaemons,
} from "./lib/mesh/daemon.ts";
export { addLiveForward, controlForLease } from "./lib/mesh/live.ts";
export { type CrewDescription, crewPeers, describeCrew, type PeerInfo } from "./lib/mesh/peers.ts";
export {
  type ConnectOptions,
  type MemberState,
  type MeshEvent,
  type MeshPlan,
  planCrew,
} from "./lib/mesh/plan.ts";
export {
  type DaemonProcess,
  type DaemonState,
  type MeshForward,
  type MeshPaths,
  meshPaths,
} from "./lib/mesh/files.ts";
export { type MeshMember, type SkippedMember } from "./lib/mesh/forwards.ts";
export type { ControlMode } from "./lib/ssh/args.ts";
