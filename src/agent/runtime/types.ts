// The process runtime's public types: how the engine launches, adopts, checks and probes a plugin process.
import type { Logger } from 'pino';
import type { z } from 'zod';
import type {
  HandshakeResult,
  Handshake as HandshakeSchema,
  Health as HealthSchema,
  ProbeResult,
} from '../../api/index.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { ContainmentOptions, ContainmentRecord, ResourceLimits } from './containment.ts';
import type { LogLimits } from './logs.ts';

/** The release's handshake settings, defaults applied (src/api exports only the schema). */
export type Handshake = z.infer<typeof HandshakeSchema>;
/** The release's health settings, defaults applied. */
export type Health = z.infer<typeof HealthSchema>;

/** What `launchPlugin` needs to start one plugin process. */
export interface LaunchOptions {
  /** A per-process directory the agent owns: `stdout.log`, `stderr.log` and `process.json` land here. */
  runDir: string;
  /** Absolute path of the executable (already staged and digest-verified). */
  entrypoint: string;
  args: string[];
  /** The staged release directory. */
  cwd: string;
  /**
   * Extra environment from the spec. The runtime adds PATH (the agent's, unless given here), then the
   * protocol variables, which always win: the magic cookie, PLUGIN_PROTOCOL_VERSIONS, PLUGIN_CONFIG,
   * PLUGIN_MIN_PORT/PLUGIN_MAX_PORT and PLUGIN_UNIX_SOCKET_DIR.
   */
  env: Record<string, string>;
  /** Path of the staged config file, exported as PLUGIN_CONFIG. */
  configPath?: string;
  /** protocolVersions, magicCookie and timeoutSeconds are read; requiredCapabilities is checkContract's. */
  handshake: Handshake;
  runAsUser?: number;
  runAsGroup?: number;
  signal?: AbortSignal;
  logger: Logger;
  /** Grace between SIGTERM and SIGKILL when a failed launch kills the candidate. Default 2000 ms. */
  stopGraceMs?: number;
  /** Upper bound on the stdout bytes read while looking for the handshake line. Default 64 KiB. */
  maxHandshakeBytes?: number;
  /** Cgroup or marker (default: a cgroup where the agent can make one; env PLUGIN_RELEASE_CONTAINMENT). */
  containment?: ContainmentOptions;
  /** Cap and rotation of stdout.log/stderr.log (default 10 MiB per stream, one rotated copy, 250 ms checks). */
  logs?: LogLimits;
  /**
   * memory.max / cpu.max of the plugin's cgroup (spec.process.resources; default none). Applied only in
   * cgroup mode with the controllers available; otherwise the launch goes on and
   * PluginProcess.unappliedLimits says why.
   */
  resources?: ResourceLimits;
  /** Reads the time for the handshake deadline (default the system clock). */
  clock?: Clock;
}

/** How a process ended: the exit code, or the signal that killed it (both null when unknown, e.g. adopted). */
export interface ProcessExit {
  code: number | null;
  signal: string | null;
}

/** A running plugin process: launched by this agent, or adopted after an agent restart. */
export interface PluginProcess {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot): with the pid, it names this process uniquely. */
  readonly startTime: string;
  readonly handshake: HandshakeResult;
  readonly runDir: string;
  /** Resolves once the process is gone. Never rejects. */
  readonly exited: Promise<ProcessExit>;
  /** The last `lines` lines (default 20) of the process's stderr log. */
  stderrTail(lines?: number): string[];
  /**
   * SIGTERM to the process group, SIGKILL after `graceMs`; then SIGKILL to everything left in its
   * containment (descendants that left the group with setsid too); resolves when all of it is gone.
   * Never signals a pid whose start time no longer matches (a reused pid is somebody else's process).
   */
  stop(graceMs: number): Promise<void>;
  /** What the engine persists (journal) to adopt this process after a restart. */
  record(): PluginProcessRecord;
  /**
   * Set when LaunchOptions.resources asked for limits that could not be applied: a sentence for the
   * activation message ("Resource limits were not applied: ..."). Undefined when applied or none asked.
   */
  readonly unappliedLimits?: string;
}

/**
 * The persisted identity of a plugin process, as `adoptPlugin` takes it. A type, not an interface, so it
 * is assignable to the journal's loose (index-signature) schema type.
 */
export type PluginProcessRecord = {
  pid: number;
  startTime: string;
  handshake: HandshakeResult;
  runDir: string;
  /** The cgroup and marker holding the process and its descendants (absent in records of older agents). */
  containment?: ContainmentRecord;
};

/** What `checkContract` compares the plugin's report with. */
export interface ContractExpectation {
  plugin: string;
  version: string;
  requiredCapabilities: string[];
}

/** What a plugin reports through `pluginrelease.contract.v1.Contract/Describe`. */
export interface ContractReport {
  pluginName: string;
  pluginVersion: string;
  capabilities: string[];
}

export interface ProbeOptions {
  signal?: AbortSignal;
  /** Injected sleep; every wait in runProbes (periods, attempt timeouts, soak, window) goes through it. */
  delay?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => Date;
  onResult?: (r: ProbeResult) => void;
  /** Base environment of exec probes (PATH); PLUGIN_ADDRESS and PLUGIN_NETWORK are added. */
  env?: Record<string, string>;
  /** 'healthy' (default): until every probe passed, then soakSeconds more. 'window': probe for windowMs. */
  until?: 'healthy' | 'window';
  windowMs?: number;
  /**
   * The process behind `target`, when known: its exit during probing rejects with PluginExited (more
   * specific than a failing probe), and ProbeFailed messages carry its last stderr lines.
   */
  process?: Pick<PluginProcess, 'exited' | 'stderrTail' | 'pid'>;
  /** How exec probes are contained (each attempt gets its own cgroup or marker, killed when it ends). */
  containment?: ContainmentOptions;
}
