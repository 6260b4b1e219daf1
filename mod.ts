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
  type Config,
  type ConfigKeyType,
  CrabboxError,
  type CrabboxErrorOptions,
  crewTag,
  decodeLabels,
  encodeLabels,
  ExitStatus,
  type ExitStatusName,
  exposeLabelValue,
  isCrabboxError,
  isLeaseId,
  LabelKey,
  type Labels,
  type LeaseLabelFacts,
  loadConfig,
  type MeshPaths,
  meshPaths,
  newLeaseId,
  normalizeCrewName,
  normalizeName,
  normalizeSlug,
  ownerFor,
  ownerSegment,
  parseExposedPorts,
  parseExposeLabel,
  type ProviderConfigSchemas,
  redact,
  roleOf,
} from "./lib/core/mod.ts";
export type { Lease, LeaseState } from "./lib/lease/mod.ts";
export type { CrabboxOptions, Runtime } from "./lib/runtime.ts";
export type { EnvReader } from "./lib/core/mod.ts";
export {
  attachToLease,
  type CloudInitOptions,
  type CloudInitTailscale,
  type Crew,
  findLease,
  leaseBox,
  leaseCrew,
  leaseFromProvider,
  type LeaseOptions,
  leaseSshArgs,
  listLeases,
  type ListSelector,
  type MemberSpec,
  memberTransport,
  providerPlanes,
  type Reachability,
  reachabilityMatrix,
  releaseCrew,
  releaseLease,
  type ReleaseResult,
  renderCloudInit,
  runOnLease,
  sshEndpoint,
  type Transport,
  type ValidatedMember,
  validateMember,
} from "./lib/lease/mod.ts";
export { providerFeatures } from "./lib/runtime.ts";
export type { ControlMode, SshResult } from "./lib/ssh/mod.ts";
export type {
  CreateSpec,
  Feature,
  LeaseSelector,
  PrerequisiteReport,
  Provider,
  ProviderContext,
  ProviderEntry,
  ProviderFactory,
  ProviderLease,
  SshTarget,
  TailnetFacts,
} from "./providers/mod.ts";
export { providerNames, providerRegistry } from "./providers/mod.ts";
export {
  ensureTailnetPolicy,
  type EnsureTailnetPolicyOptions,
  type EnsureTailnetPolicyResult,
  type EnvSource,
  manualPolicySnippet,
  type ManualPolicySnippetOptions,
  mergeTailnetPolicy,
  type MergeTailnetPolicyOptions,
  type MergeTailnetPolicyResult,
  mintAuthKey,
  type MintAuthKeyOptions,
  MintedAuthKey,
  POLICY_API_UNAVAILABLE,
  POLICY_CHANGED,
  type PolicyRowsPresence,
  policyRowsPresent,
  type PolicyShape,
  type RequestSpec,
  type TailnetAuth,
  TailnetClient,
  tailnetClientFromEnv,
  type TailnetClientOptions,
  tailnetCredentialsFrom,
  type TailnetCredentialStatus,
  type TailnetPolicy,
  type TailnetResponse,
  type TailnetScope,
  type TextInsertion,
} from "./lib/tailnet/mod.ts";
export {
  type CheckStatus,
  defaultTailnetProbe,
  type DoctorCheck,
  type DoctorOptions,
  type DoctorReport,
  runDoctor,
  type TailnetPolicyProbe,
} from "./lib/doctor/mod.ts";
export type { PolicyBootstrapResult, TailnetJoin, TailnetOps } from "./lib/tailnet/mod.ts";
export {
  addLiveForward,
  connectCrew,
  type ConnectOptions,
  type CrewDescription,
  type CrewMesh,
  crewPeers,
  type DaemonProcess,
  type DaemonResult,
  type DaemonState,
  describeCrew,
  disconnectCrew,
  type DisconnectResult,
  exposePort,
  type MemberState,
  type MemberStatus,
  type MeshEvent,
  type MeshForward,
  type MeshMember,
  type MeshPlan,
  type PeerInfo,
  planCrew,
  type SkippedMember,
  startCrewDaemons,
} from "./lib/mesh/mod.ts";
export { controlForLease } from "./lib/ssh/mod.ts";
export type {
  ChildProcess,
  CommandOptions,
  CommandOutput,
  ProcessRunner,
} from "./lib/process/mod.ts";
