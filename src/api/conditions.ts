// Condition types and reasons: the vocabulary every status in pluginrelease.io speaks.
// Every reason here is documented in docs/troubleshooting.md (a test checks it).

export const ConditionType = {
  /** kstatus: the release (or activation) reached its desired state. */
  Ready: 'Ready',
  /** kstatus: work is in progress. Present only while True. */
  Reconciling: 'Reconciling',
  /** kstatus: progress stopped and needs a person: a rollback, an invalid spec, exhausted retries. */
  Stalled: 'Stalled',
  /** A candidate was rejected or reverted on at least one node. */
  RolledBack: 'RolledBack',
  /** Dry run: the fleet-wide try-activate result. */
  Probed: 'Probed',
  /** The active plugin exited on its own and is being restarted (True while it crash-loops). */
  Degraded: 'Degraded',
  /** A deleted activation's plugin was taken off its node; the controller then lets the activation go. */
  Uninstalled: 'Uninstalled',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/** Reasons the controller sets on a PluginRelease. */
export const ReleaseReason = {
  RolloutProgressing: 'RolloutProgressing',
  RolloutPaused: 'RolloutPaused',
  CanaryPaused: 'CanaryPaused',
  RolloutComplete: 'RolloutComplete',
  RolloutHalted: 'RolloutHalted',
  RolloutAborted: 'RolloutAborted',
  FleetRolledBack: 'FleetRolledBack',
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  InvalidSpec: 'InvalidSpec',
  PluginConflict: 'PluginConflict',
  NoMatchingNodes: 'NoMatchingNodes',
  DryRunPassed: 'DryRunPassed',
  DryRunFailed: 'DryRunFailed',
  DryRunProgressing: 'DryRunProgressing',
  NodeRolledBack: 'NodeRolledBack',
  NodeFailed: 'NodeFailed',
} as const;
export type ReleaseReason = (typeof ReleaseReason)[keyof typeof ReleaseReason];

/**
 * Reasons the agent sets on a PluginActivation; the controller copies them into `failedNodes`.
 * `InvalidSpec` is shared with ReleaseReason: the same fault, on the object whose spec it is.
 */
export const NodeReason = {
  // refused before anything ran: the activation's spec does not parse
  InvalidSpec: 'InvalidSpec',
  // progress
  Pending: 'Pending',
  Staged: 'Staged',
  Probing: 'Probing',
  Verifying: 'Verifying',
  Activated: 'Activated',
  ProbeSucceeded: 'ProbeSucceeded',
  RolledBackToSnapshot: 'RolledBackToSnapshot',
  Recovered: 'Recovered',
  // rejected while staging: nothing was touched
  ArtifactOutsideStagingRoot: 'ArtifactOutsideStagingRoot',
  ArtifactNotFound: 'ArtifactNotFound',
  ArtifactUnreadable: 'ArtifactUnreadable',
  UnsafeSymlink: 'UnsafeSymlink',
  DigestMismatch: 'DigestMismatch',
  ConfigNotFound: 'ConfigNotFound',
  ConfigDigestMismatch: 'ConfigDigestMismatch',
  EntrypointNotFound: 'EntrypointNotFound',
  ManifestInvalid: 'ManifestInvalid',
  StageFailed: 'StageFailed',
  SnapshotMissing: 'SnapshotMissing',
  // refused as hostile or damaged input (docs/security.md): nothing was touched
  InvalidRevision: 'InvalidRevision',
  PathOutsideRoot: 'PathOutsideRoot',
  SnapshotCorrupt: 'SnapshotCorrupt',
  HardLinkRefused: 'HardLinkRefused',
  UnsupportedFileType: 'UnsupportedFileType',
  // rejected while probing: the candidate was killed, the active version kept serving
  SpawnFailed: 'SpawnFailed',
  HandshakeTimeout: 'HandshakeTimeout',
  HandshakeInvalid: 'HandshakeInvalid',
  ProtocolVersionMismatch: 'ProtocolVersionMismatch',
  PluginExited: 'PluginExited',
  ContractMismatch: 'ContractMismatch',
  MissingCapability: 'MissingCapability',
  ProbeFailed: 'ProbeFailed',
  // the candidate's announced address (it must own it before the swap)
  AddressInUse: 'AddressInUse',
  AddressNotServing: 'AddressNotServing',
  // the agent root is held by another live agent (docs/agent.md, the lock)
  RootLocked: 'RootLocked',
  // the active plugin, supervised after its activation
  PluginDown: 'PluginDown',
  CrashLoopBackOff: 'CrashLoopBackOff',
  PluginRestarted: 'PluginRestarted',
  // after the swap
  VerifyFailed: 'VerifyFailed',
  SwapFailed: 'SwapFailed',
  RollbackFailed: 'RollbackFailed',
  // runtime Host (docs/host-runtime.md): the host failed, or judged the candidate
  HostUnreachable: 'HostUnreachable',
  HostUnhealthy: 'HostUnhealthy',
  HostError: 'HostError',
  HostTokenInvalid: 'HostTokenInvalid',
  HostPluginDirRefused: 'HostPluginDirRefused',
  TryActivateRejected: 'TryActivateRejected',
  ActivateFailed: 'ActivateFailed',
  PluginInstallFailed: 'PluginInstallFailed',
  PluginReloadFailed: 'PluginReloadFailed',
  // a damaged agent root, found by recovery (docs/recovery.md)
  JournalQuarantined: 'JournalQuarantined',
  RestoreTargetMissing: 'RestoreTargetMissing',
  JournalWriteFailed: 'JournalWriteFailed',
  FrontUnavailable: 'FrontUnavailable',
  RecoveryFailed: 'RecoveryFailed',
  InternalError: 'InternalError',
  // a deleted activation
  Uninstalled: 'Uninstalled',
} as const;
export type NodeReason = (typeof NodeReason)[keyof typeof NodeReason];

export const AllReasons: readonly string[] = [
  ...new Set([...Object.values(ReleaseReason), ...Object.values(NodeReason)]),
];

/** Reasons of the Kubernetes Events the controller records on a PluginRelease. */
export const EventReason = {
  RolloutStarted: 'RolloutStarted',
  NodeActivated: 'NodeActivated',
  NodeRolledBack: 'NodeRolledBack',
  NodeFailed: 'NodeFailed',
  RolloutComplete: 'RolloutComplete',
  RolloutHalted: 'RolloutHalted',
  RolloutAborted: 'RolloutAborted',
  /** A Stalled rollout of the same revision progresses again (a late node reported, or a retry). */
  RolloutResumed: 'RolloutResumed',
  FleetRollbackStarted: 'FleetRollbackStarted',
  // recorded by the agent on a PluginActivation being deleted
  PluginUninstalled: 'PluginUninstalled',
  DryRunComplete: 'DryRunComplete',
  // recorded by the agent on a PluginActivation
  PluginCrashed: 'PluginCrashed',
  PluginRestarted: 'PluginRestarted',
} as const;
export type EventReason = (typeof EventReason)[keyof typeof EventReason];
