// The process runtime: launch, adopt, contract-check and probe go-plugin-compatible plugin processes.
//
// Contract with the engine (the plugin host and its actions). Everything that fails ends in an
// ActivationError with a NodeReason:
//
// launchPlugin(opts) → PluginProcess
//   Spawns `entrypoint` without a shell, detached into its own process group (so the plugin outlives a
//   SIGKILLed agent) and contained with all its descendants (a cgroup v2 leaf entered through a /bin/sh
//   gate before the plugin runs, or the PLUGIN_RELEASE_INSTANCE environment marker; recorded in
//   `runDir/containment.json` before the spawn; docs/containment.md), stdout/stderr to `runDir/stdout.log`
//   and `runDir/stderr.log` (files, not pipes: a pipe breaks when the agent dies; O_APPEND, capped and
//   rotated by copytruncate while the agent runs). Reads the go-plugin handshake line
//   `CORE|APP|NETWORK|ADDR|PROTOCOL[|SERVERCERT[|MUX]]` from stdout within handshake.timeoutSeconds,
//   tolerating (and logging) noise lines before it, reading at most maxHandshakeBytes, and checks the app
//   protocol against handshake.protocolVersions. Writes `runDir/process.json` (the PluginProcessRecord).
//   On failure the process group is killed (SIGTERM, SIGKILL after stopGraceMs) before it throws
//   SpawnFailed | HandshakeTimeout | HandshakeInvalid | ProtocolVersionMismatch | PluginExited, the message
//   ending with the plugin's last stderr lines. An abort via `signal` kills it too and throws the abort reason.
//
// adoptPlugin(record) → PluginProcess | undefined
//   After an agent restart: a handle on that exact process (pid AND /proc start time match, not a zombie),
//   or undefined when it is gone or the pid now belongs to another process.
//   readProcessIdentity(runDir) + isSameProcess(pid, startTime) find a candidate that a crash left behind
//   before its handshake (launchPlugin writes `runDir/pid.json` right after spawn); stopOrphan(runDir,
//   graceMs) stops such a process and everything in its containment, even one killed before pid.json.
//
// checkContract(handshake, expect, timeoutMs, signal?) → ContractReport
//   Calls the unary gRPC method `pluginrelease.contract.v1.Contract/Describe` (docs/plugin-contract.md) on
//   the announced address and compares name, version and capabilities. Called only when
//   requiredCapabilities is non-empty. Throws ContractMismatch | MissingCapability.
//
// runProbes(target, health, opts) → void
//   grpc (grpc.health.v1.Health/Check, service "plugin" by default), httpGet (tcp or unix socket),
//   tcpSocket, exec (no shell; PLUGIN_ADDRESS and PLUGIN_NETWORK in its env), each with its period,
//   timeout and success/failure thresholds; then soakSeconds of continued probing. until 'window': probe
//   for windowMs, failing on a failure threshold (post-swap verification). An empty probe list resolves at
//   once. Throws ProbeFailed naming the probe and its last error, or PluginExited when opts.process exits.
//
// Extensions beyond the first published contract (all optional, nothing broken):
// - LaunchOptions.stopGraceMs (default 2000) and maxHandshakeBytes (default 64 KiB);
// - PluginProcess.runDir and record() (what to persist for adoptPlugin);
// - ProbeOptions.process: pass the PluginProcess so its exit during probing reports PluginExited and
//   ProbeFailed messages quote its stderr; in 'window' mode with no probes it still watches the exit;
// - isSameProcess, readProcessIdentity, stopOrphan for recovery; the handshake helpers for tests;
// - LaunchOptions.containment / ProbeOptions.containment (cgroup or marker), LaunchOptions.logs (caps),
//   PluginProcessRecord.containment; exec probes are contained and killed as a tree at exit or timeout.

export {
  applyLimits,
  type ContainmentMode,
  type ContainmentOptions,
  type ContainmentRecord,
  INSTANCE_ENV,
  killContainment,
  markedProcesses,
  parseCpuMax,
  parseMemoryMax,
  type ResourceLimits,
} from './containment.ts';
export { CONTRACT_METHOD, checkContract } from './contract.ts';
export {
  CORE_PROTOCOL_VERSION,
  formatProtocolVersions,
  type HandshakeLine,
  isHandshakeAttempt,
  negotiateProtocol,
  parseHandshakeLine,
  parseProtocolVersions,
} from './handshake.ts';
export {
  DEFAULT_LOG_FILES,
  DEFAULT_LOG_MAX_BYTES,
  type LogLimits,
  rotateLog,
  tailLog,
  watchLogs,
} from './logs.ts';
export { HEALTH_METHOD, probeName, runProbes } from './probes.ts';
export {
  adoptPlugin,
  CONTAINMENT_RECORD,
  isSameProcess,
  launchPlugin,
  PROCESS_IDENTITY,
  PROCESS_RECORD,
  pluginEnvironment,
  readContainmentRecord,
  readProcessIdentity,
  STDERR_LOG,
  STDOUT_LOG,
  STOP_GRACE_MS,
  socketDirectory,
  stopOrphan,
  withStderr,
} from './process.ts';
export type {
  ContractExpectation,
  ContractReport,
  Handshake,
  Health,
  LaunchOptions,
  PluginProcess,
  PluginProcessRecord,
  ProbeOptions,
  ProcessExit,
} from './types.ts';
