/**
 * crabbox — lease machines ("boxes") from many providers into **crews** and
 * make the members of a crew reach each other.
 *
 * What a `deno run` script needs: leases, crews and their SSH-mesh, the
 * tailnet policy, `doctor`, and the errors. Every effectful function takes
 * an optional options bag last (`{ home, env, config, fetch, log, providers,
 * signal, process }`, see {@link CrabboxOptions}) so scripts and tests can
 * inject each effect.
 *
 * @example
 * ```ts
 * import { leaseCrew, listLeases } from "@crabbox/crabbox";
 *
 * await using _crew = await leaseCrew("pr-42", [
 *   { slug: "api", provider: "local", expose: [8080] },
 *   { slug: "db", provider: "local", expose: [5432] },
 * ]);
 * console.log((await listLeases({ crew: "pr-42" })).map((l) => l.slug)); // ["api", "db"]
 * ```
 *
 * @module
 */

// Errors and options
export {
  type Config,
  CrabboxError,
  type CrabboxErrorOptions,
  type EnvReader,
  ExitStatus,
  type ExitStatusName,
  type ExpiryReason,
  isCrabboxError,
  type Labels,
  type MeshPaths,
  normalizeCrewName,
  normalizeSlug,
  type Shape,
} from "./lib/core/mod.ts";
export type { CrabboxOptions, Runtime } from "./lib/runtime.ts";
export type {
  ChildProcess,
  CommandOptions,
  CommandOutput,
  IdentityBackend,
  ProcessRunner,
} from "./lib/process/mod.ts";

// Leases
export {
  attachToLease,
  type BadClaim,
  cleanupExpired,
  type CleanupOptions,
  type CleanupResult,
  type CreatorRef,
  type Crew,
  type ExpiredLease,
  findExpiredLeases,
  findLease,
  type Lease,
  leaseBox,
  leaseCrew,
  type LeaseOptions,
  leaseSshArgs,
  type LeaseState,
  listLeases,
  type ListSelector,
  type MemberSpec,
  type NetworkMode,
  type Reachability,
  releaseCrew,
  releaseLease,
  type ReleaseResult,
  runOnLease,
  touchCrew,
  touchLease,
  type TouchOptions,
  type TouchResult,
  type Transport,
  type UnqueriedProvider,
} from "./lib/lease/mod.ts";
export type {
  HostKeyPolicy,
  RemoteCommand,
  SshIdentity,
  SshResult,
  SshTarget,
} from "./lib/ssh/mod.ts";

// Crews: the SSH-mesh
export {
  connectCrew,
  type ConnectOptions,
  type ConnectPhase,
  type ConnectTiming,
  type CrewDescription,
  crewDown,
  type CrewDrift,
  type CrewManifest,
  type CrewMesh,
  crewPeers,
  type CrewReleaseResult,
  crewUp,
  type CrewUpOptions,
  type CrewUpPlan,
  type CrewUpResult,
  type DaemonIntent,
  type DaemonProcess,
  type DaemonResult,
  type DaemonState,
  describeCrew,
  disconnectAndReleaseCrew,
  disconnectCrew,
  type DisconnectOptions,
  type DisconnectResult,
  exposePort,
  loadCrewManifest,
  type ManifestMember,
  type ManifestOptions,
  type MemberPeers,
  type MemberState,
  type MemberStatus,
  type MeshEvent,
  type MeshForward,
  type MeshMember,
  type MeshPlan,
  parseCrewManifest,
  type PeerInfo,
  type PeerMode,
  planCrew,
  planCrewUp,
  type SkippedMember,
  startCrewDaemons,
  validateCrewManifest,
} from "./lib/mesh/mod.ts";

// The tailnet
export { crewTag, ownerFor, type OwnerOptions } from "./lib/core/mod.ts";
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
  type PolicyBootstrapResult,
  type PolicyRowsPresence,
  policyRowsPresent,
  type PolicyShape,
  type RequestSpec,
  type TailnetAuth,
  TailnetClient,
  type TailnetClientOptions,
  type TailnetOps,
  type TailnetPolicy,
  type TailnetResponse,
  type TailnetScope,
  type TextInsertion,
} from "./lib/tailnet/mod.ts";

// doctor
export {
  type CheckStatus,
  type DialCell,
  type DialRunner,
  type DoctorCheck,
  type DoctorOptions,
  type DoctorReport,
  runDoctor,
  type TailnetPolicyProbe,
} from "./lib/doctor/mod.ts";

// Providers (for custom providers passed as `options.providers`)
export type {
  ByteTunnel,
  CreateSpec,
  Feature,
  LeaseSelector,
  Provider,
  ProviderContext,
  ProviderLease,
  TailnetFacts,
} from "./providers/mod.ts";
export { providerNames } from "./providers/mod.ts";
