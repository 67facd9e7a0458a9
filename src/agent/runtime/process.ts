// Plugin processes: spawn detached and contained, read the handshake, adopt after a restart, stop the tree.
import type { ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import { access, chown, mkdir, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { type HandshakeResult, NodeReason } from '../../api/index.ts';
import { systemClock } from '../../runtime/clock.ts';
import { crashPoint } from '../actions/crash-point.ts';
import { ActivationError } from '../errors.ts';
import {
  applyLimits,
  type Containment,
  type ContainmentRecord,
  createContainment,
  INSTANCE_ENV,
  joinCgroup,
  killContainment,
} from './containment.ts';
import { openGate, spawnContained, usesGate } from './gate.ts';
import {
  formatProtocolVersions,
  type HandshakeLine,
  isHandshakeAttempt,
  MAX_HANDSHAKE_LINE,
  parseHandshakeLine,
} from './handshake.ts';
import { type LogLimits, tailLog, watchLogs } from './logs.ts';
import type { LaunchOptions, PluginProcess, PluginProcessRecord, ProcessExit } from './types.ts';

export const STDOUT_LOG = 'stdout.log';
export const STDERR_LOG = 'stderr.log';
export const PROCESS_RECORD = 'process.json';
export const PROCESS_IDENTITY = 'pid.json';
/** Written before the spawn: the containment (marker, cgroup) every process of this run dir is in. */
export const CONTAINMENT_RECORD = 'containment.json';

/** Grace between SIGTERM and SIGKILL whenever the agent stops a plugin process. */
export const STOP_GRACE_MS = 2000;
const DEFAULT_MAX_HANDSHAKE_BYTES = 64 * 1024;
const POLL_MS = 20;
const ADOPTED_POLL_MS = 200;
const STDERR_LINES_IN_MESSAGES = 10;
const NOISE_LINES_LOGGED = 10;

/**
 * Starts the plugin and returns once it printed a valid handshake line.
 * Preconditions: `entrypoint` is executable; `runDir` may not exist yet (it is created).
 * Effects: `runDir/containment.json` (before the spawn, so recovery finds the process whatever the
 * moment of a crash), a detached process group led by the plugin inside its containment (a cgroup v2
 * leaf, or the PLUGIN_RELEASE_INSTANCE marker; docs/containment.md), `runDir/{stdout,stderr}.log` (O_APPEND,
 * capped and rotated while this agent runs) and, on success, `runDir/process.json`. On any failure the
 * whole containment is gone before the promise rejects.
 * Throws ActivationError SpawnFailed | HandshakeTimeout | HandshakeInvalid | ProtocolVersionMismatch |
 * PluginExited (each is the candidate's fault: do not retry the same revision), or `signal.reason`.
 */
export async function launchPlugin(opts: LaunchOptions): Promise<PluginProcess> {
  opts.signal?.throwIfAborted();
  crashPoint('launch:start');
  const { logger } = opts;
  const stdoutPath = join(opts.runDir, STDOUT_LOG);
  const stderrPath = join(opts.runDir, STDERR_LOG);
  const { containment, out, err } = await prepareRunDir(opts, stdoutPath, stderrPath);
  const record = containment.record;
  const unappliedLimits = limitResources(containment, opts);
  const gated = usesGate(record);
  const { child, pid, exited } = await spawnPlugin(opts, record, gated, [out, err]);
  if (record.cgroup !== undefined) await joinOrWarn(record, pid, logger);
  if (gated) openGate(child);
  crashPoint('launch:spawned');
  const stopLogs = [watchLogs([stderrPath], opts.logs)];
  const startTime = readProcStat(pid)?.startTime ?? '';
  // Written before the handshake, so a recovering agent can find (and stop) a candidate it never adopted.
  const identityWritten = writeFile(
    join(opts.runDir, PROCESS_IDENTITY),
    `${JSON.stringify({ pid, startTime })}\n`,
  );
  const log = logger.child({ pid });
  log.info(
    { entrypoint: opts.entrypoint, args: opts.args, cgroup: record.cgroup, instance: record.instance },
    'plugin process started',
  );

  const pending: { handshake: HandshakeResult } = {
    handshake: { coreProtocol: 0, appProtocol: 0, network: 'tcp', address: '' },
  };
  const handle = new ProcessHandle(
    { pid, startTime, runDir: opts.runDir, containment: record },
    exited,
    true,
    () => pending.handshake,
    () => {
      for (const stop of stopLogs) stop();
    },
    unappliedLimits,
  );
  const line = await handshakeOrStop(handle, identityWritten, stdoutPath, exited, opts);
  // stdout is rotated only now: the handshake reader read it from offset 0 up to here.
  stopLogs.push(watchLogs([stdoutPath], opts.logs));
  const { coreProtocol, appProtocol, network, address } = line;
  pending.handshake = { coreProtocol, appProtocol, network, address };
  if (line.protocol !== 'grpc') {
    log.warn(
      { protocol: line.protocol },
      'plugin speaks go-plugin netrpc: grpc probes and the contract call need grpc',
    );
  }
  try {
    await writeFile(join(opts.runDir, PROCESS_RECORD), `${JSON.stringify(handle.record())}\n`);
  } catch (cause) {
    return stopAndFail(
      handle,
      opts,
      NodeReason.SpawnFailed,
      `The agent could not record the plugin process: ${(cause as Error).message}.`,
    );
  }
  log.info({ handshake: pending.handshake }, 'plugin handshake accepted');
  return handle;
}

/**
 * Launch phase 1, before the spawn: the run and socket directories, the containment (recorded in
 * `containment.json`) and the opened log files. Throws ActivationError SpawnFailed.
 */
async function prepareRunDir(
  opts: LaunchOptions,
  stdoutPath: string,
  stderrPath: string,
): Promise<{ containment: Containment; out: number; err: number }> {
  try {
    await mkdir(opts.runDir, { recursive: true });
    // The socket directory is the plugin's own: a runAsUser plugin cannot create a socket in the
    // root-owned run directory, and the run directory must stay root's (recovery trusts pid.json).
    const sockets = socketDirectory(opts.runDir);
    if (sockets.startsWith(opts.runDir)) {
      await mkdir(sockets, { recursive: true, mode: 0o700 });
      if (opts.runAsUser !== undefined || opts.runAsGroup !== undefined) {
        await chown(
          sockets,
          opts.runAsUser ?? process.getuid?.() ?? 0,
          opts.runAsGroup ?? process.getgid?.() ?? 0,
        );
      }
    }
    const containment = await createContainment(basename(opts.runDir), opts.containment);
    // Before the spawn: whatever instant a SIGKILL hits the agent, recovery knows what to look for.
    await writeFile(join(opts.runDir, CONTAINMENT_RECORD), `${JSON.stringify(containment.record)}\n`);
    // O_APPEND: after a copytruncate rotation the plugin's writes continue at the new end of the file.
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_APPEND;
    const out = openSync(stdoutPath, flags, 0o644);
    const err = openSync(stderrPath, flags, 0o644);
    return { containment, out, err };
  } catch (cause) {
    throw new ActivationError(
      NodeReason.SpawnFailed,
      `The plugin's run directory ${opts.runDir} is not writable: ${(cause as Error).message}.`,
      { cause },
    );
  }
}

/** The containment's resource limits (spec.process.resources), with a warning for what cannot apply. */
function limitResources(containment: Containment, opts: LaunchOptions): string | undefined {
  if (containment.noCgroupReason) {
    opts.logger.warn(
      { reason: containment.noCgroupReason },
      'no cgroup for the plugin: contained by its environment marker only (descendants that exec with a ' +
        'cleared environment escape; resource limits cannot be applied)',
    );
  }
  const wantsLimits = opts.resources?.memoryMax !== undefined || opts.resources?.cpuMax !== undefined;
  const unapplied = wantsLimits ? applyLimits(containment.record, opts.resources ?? {}) : undefined;
  if (unapplied) opts.logger.warn({ resources: opts.resources }, unapplied);
  return unapplied;
}

/**
 * Launch phase 2: the detached process, its stdout and stderr on the log files `logs` (closed here),
 * listened to for its exit before anything else is awaited. Throws ActivationError SpawnFailed, with
 * the containment killed.
 */
async function spawnPlugin(
  opts: LaunchOptions,
  record: ContainmentRecord,
  gated: boolean,
  logs: [number, number],
): Promise<{ child: ChildProcess; pid: number; exited: Promise<ProcessExit> }> {
  let child: ChildProcess;
  try {
    // Through the gate a missing entrypoint would be the shell's exit 125: say it plainly instead.
    if (gated && opts.entrypoint.includes('/')) await access(opts.entrypoint, constants.X_OK);
    child = spawnContained(gated, opts.entrypoint, opts.args, {
      cwd: opts.cwd,
      env: pluginEnvironment(opts, record.instance),
      stdio: ['ignore', ...logs],
      detached: true,
      ...(opts.runAsUser !== undefined ? { uid: opts.runAsUser } : {}),
      ...(opts.runAsGroup !== undefined ? { gid: opts.runAsGroup } : {}),
    });
  } catch (cause) {
    await killContainment(record);
    throw new ActivationError(NodeReason.SpawnFailed, `The plugin could not be started: ${String(cause)}.`, {
      cause,
    });
  } finally {
    for (const fd of logs) closeSync(fd);
  }
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (e) => resolve(e));
  });
  if (spawned || child.pid === undefined) {
    await killContainment(record);
    throw new ActivationError(
      NodeReason.SpawnFailed,
      `The plugin ${opts.entrypoint} could not be started: ${spawned?.message ?? 'no pid'}.`,
      { cause: spawned },
    );
  }
  child.unref();
  // Listening before the next await: an exit while the agent moves the process must not go unseen.
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, pid: child.pid, exited };
}

/** Moves `pid` into its cgroup; when it cannot, the marker alone contains it and the cgroup goes. */
async function joinOrWarn(
  record: ContainmentRecord,
  pid: number,
  logger: LaunchOptions['logger'],
): Promise<void> {
  try {
    joinCgroup(record, pid);
  } catch (error) {
    logger.warn(
      { cgroup: record.cgroup, error: (error as Error).message },
      'the plugin could not join its cgroup: contained by its environment marker only',
    );
    await rmdir(record.cgroup as string).catch(() => {});
    delete record.cgroup;
  }
}

/**
 * Launch phase 3: the handshake line, once `pid.json` is written. On any failure the candidate is
 * stopped first; then an ActivationError (with its last stderr lines), or the abort reason.
 */
async function handshakeOrStop(
  handle: ProcessHandle,
  identityWritten: Promise<void>,
  stdoutPath: string,
  exited: Promise<ProcessExit>,
  opts: LaunchOptions,
): Promise<HandshakeLine> {
  try {
    await identityWritten;
    return await readHandshake(stdoutPath, exited, opts);
  } catch (error) {
    if (error instanceof ActivationError) return stopAndFail(handle, opts, error.reason, error.message);
    if (!opts.signal?.aborted) {
      const detail = `The agent could not watch the plugin: ${(error as Error).message}.`;
      return stopAndFail(handle, opts, NodeReason.SpawnFailed, detail);
    }
    await handle.stop(opts.stopGraceMs ?? STOP_GRACE_MS);
    throw error;
  }
}

/** Stops the candidate, then throws ActivationError `reason` with its last stderr lines. */
async function stopAndFail(
  handle: ProcessHandle,
  opts: LaunchOptions,
  reason: NodeReason,
  detail: string,
): Promise<never> {
  await handle.stop(opts.stopGraceMs ?? STOP_GRACE_MS);
  throw new ActivationError(reason, withStderr(detail, handle.stderrTail(STDERR_LINES_IN_MESSAGES)));
}

/**
 * A handle on the process a record names, if that very process still runs (pid and start time match,
 * and it is not a zombie); undefined when it is gone or the pid was reused. Signals nothing while the
 * process runs; once it is gone, the rest of its containment is killed (descendants die with the plugin).
 * While the handle lives it caps and rotates the run dir's logs (`logs`, defaults otherwise).
 */
export function adoptPlugin(
  record: PluginProcessRecord,
  opts: { logs?: LogLimits } = {},
): PluginProcess | undefined {
  if (!isSameProcess(record.pid, record.startTime)) return undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    const timer = setInterval(() => {
      if (isSameProcess(record.pid, record.startTime)) return;
      clearInterval(timer);
      resolve({ code: null, signal: null });
    }, ADOPTED_POLL_MS);
    timer.unref();
  });
  const containment = record.containment ?? readContainmentRecord(record.runDir);
  const stopLogs = watchLogs([join(record.runDir, STDOUT_LOG), join(record.runDir, STDERR_LOG)], opts.logs);
  return new ProcessHandle(
    { ...record, ...(containment ? { containment } : {}) },
    exited,
    false,
    () => record.handshake,
    stopLogs,
  );
}

/**
 * The pid and start time of the last process launched in `runDir` (from `runDir/pid.json`, written right
 * after spawn, before the handshake), or undefined. With isSameProcess it finds a candidate that an agent
 * crash left behind mid-launch.
 */
export function readProcessIdentity(runDir: string): { pid: number; startTime: string } | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(runDir, PROCESS_IDENTITY), 'utf8')) as unknown;
    const { pid, startTime } = parsed as { pid?: unknown; startTime?: unknown };
    if (typeof pid === 'number' && typeof startTime === 'string') return { pid, startTime };
  } catch {
    // no launch recorded here
  }
  return undefined;
}

/**
 * The containment a launch in `runDir` used (`runDir/containment.json`, written before the spawn), or
 * undefined when no launch got that far (then no process of this run dir ever ran).
 */
export function readContainmentRecord(runDir: string): ContainmentRecord | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(runDir, CONTAINMENT_RECORD), 'utf8')) as unknown;
    const { instance, cgroup } = parsed as { instance?: unknown; cgroup?: unknown };
    if (typeof instance === 'string' && instance !== '') {
      return { instance, ...(typeof cgroup === 'string' ? { cgroup } : {}) };
    }
  } catch {
    // no launch got as far as the spawn here
  }
  return undefined;
}

/**
 * Recovery after a crash: stops every process a launch in `runDir` started. The process `pid.json` names,
 * if that very process still runs, gets SIGTERM (whole group) and SIGKILL after graceMs; then everything
 * left in the run dir's containment (cgroup members, processes carrying its marker) is SIGKILLed and the
 * cgroup removed. This covers a crash at any instant of a launch, including between the spawn and
 * pid.json. Resolves true when it stopped at least one process, false when none ran. Never throws.
 */
export async function stopOrphan(runDir: string, graceMs: number): Promise<boolean> {
  const containment = readContainmentRecord(runDir);
  const identity = readProcessIdentity(runDir);
  let stopped = false;
  if (identity) {
    const handle = adoptPlugin({
      ...identity,
      runDir,
      handshake: { coreProtocol: 0, appProtocol: 0, network: 'tcp', address: '' },
      ...(containment ? { containment } : {}),
    });
    if (handle) {
      await handle.stop(graceMs);
      stopped = true;
    }
  }
  if (containment && (await killContainment(containment)) > 0) stopped = true;
  return stopped;
}

/**
 * The environment a plugin starts with; the protocol variables are set last so the spec cannot clobber
 * them, and the containment marker (when given) last of all.
 */
export function pluginEnvironment(opts: LaunchOptions, instance?: string): Record<string, string> {
  const socketDir = socketDirectory(opts.runDir);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    PLUGIN_MIN_PORT: '10000',
    PLUGIN_MAX_PORT: '25000',
    PLUGIN_UNIX_SOCKET_DIR: socketDir,
    ...opts.env,
    [opts.handshake.magicCookie.key]: opts.handshake.magicCookie.value,
    PLUGIN_PROTOCOL_VERSIONS: formatProtocolVersions(opts.handshake.protocolVersions),
  };
  if (opts.configPath) env.PLUGIN_CONFIG = opts.configPath;
  if (instance !== undefined) env[INSTANCE_ENV] = instance;
  return env;
}

/** Linux sun_path holds 107 bytes; go-plugin names its socket plugin<9 digits> inside the directory. */
const SOCKET_NAME_ROOM = 24;

/**
 * PLUGIN_UNIX_SOCKET_DIR for a run dir: `<runDir>/sock` (mode 0700, owned by runAsUser/runAsGroup,
 * created by launchPlugin), or the system temp dir when socket paths there would not fit in sun_path.
 */
export function socketDirectory(runDir: string): string {
  const dir = join(runDir, 'sock');
  return dir.length + SOCKET_NAME_ROOM <= 107 ? dir : tmpdir();
}

/** Tails the stdout file until a handshake line, the byte bound, the timeout, an exit or an abort. */
async function readHandshake(
  path: string,
  exited: Promise<ProcessExit>,
  opts: LaunchOptions,
): Promise<HandshakeLine> {
  const timeoutMs = opts.handshake.timeoutSeconds * 1000;
  const maxBytes = opts.maxHandshakeBytes ?? DEFAULT_MAX_HANDSHAKE_BYTES;
  const clock = opts.clock ?? systemClock;
  const deadline = clock.now().getTime() + timeoutMs;
  let exit: ProcessExit | undefined;
  void exited.then((e) => {
    exit = e;
  });
  const fd = openSync(path, 'r');
  const buffer = Buffer.alloc(16 * 1024);
  let offset = 0;
  let partial = '';
  let noise = 0;
  try {
    for (;;) {
      const exitedBeforeRead = exit;
      for (;;) {
        const n = readSync(fd, buffer, 0, Math.min(buffer.length, maxBytes + 1 - offset), offset);
        if (n <= 0) break;
        offset += n;
        partial += buffer.subarray(0, n).toString('utf8');
        let newline = partial.indexOf('\n');
        while (newline >= 0) {
          const text = partial.slice(0, newline);
          partial = partial.slice(newline + 1);
          newline = partial.indexOf('\n');
          if (isHandshakeAttempt(text)) {
            const line = parseHandshakeLine(text, opts.handshake.protocolVersions);
            if (exitedBeforeRead) throw exitedProblem(exitedBeforeRead, 'right after its handshake');
            return line;
          }
          noise++;
          if (noise <= NOISE_LINES_LOGGED) {
            opts.logger.info({ line: text.slice(0, 512) }, 'plugin printed a line before its handshake');
          }
        }
        if (offset > maxBytes || partial.length > MAX_HANDSHAKE_LINE) {
          throw new ActivationError(
            NodeReason.HandshakeInvalid,
            `The plugin printed ${offset} bytes (${noise} lines) to stdout without a handshake line; ` +
              `the agent reads at most ${maxBytes} bytes before giving up.`,
          );
        }
        if (offset >= maxBytes + 1) break;
      }
      if (exitedBeforeRead) throw exitedProblem(exitedBeforeRead, 'before its handshake');
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (clock.now().getTime() >= deadline) {
        throw new ActivationError(
          NodeReason.HandshakeTimeout,
          `The plugin printed no handshake line within ${opts.handshake.timeoutSeconds}s` +
            (noise > 0 ? ` (it printed ${noise} other lines).` : '.') +
            ' Its stdout is a file, not a terminal: a plugin whose language buffers stdout (C stdio, ' +
            'Python, Ruby, Java) must flush it after the handshake line; a slow starter needs a larger ' +
            'handshake.timeoutSeconds.',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    closeSync(fd);
  }
}

function exitedProblem(exit: ProcessExit, when: string): ActivationError {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return new ActivationError(NodeReason.PluginExited, `The plugin ${how} ${when}.`);
}

/** `message`, then the last stderr lines (or that there were none), for a failure an operator reads. */
export function withStderr(message: string, tail: string[]): string {
  if (tail.length === 0) return `${message} It wrote nothing to stderr.`;
  return `${message} Last stderr lines:\n${tail.map((l) => `  ${l}`).join('\n')}`;
}

class ProcessHandle implements PluginProcess {
  readonly pid: number;
  readonly startTime: string;
  readonly runDir: string;
  readonly exited: Promise<ProcessExit>;
  readonly containment: ContainmentRecord | undefined;
  readonly unappliedLimits: string | undefined;
  readonly #ours: boolean;
  readonly #handshake: () => HandshakeResult;
  #gone = false;

  constructor(
    identity: Pick<PluginProcessRecord, 'pid' | 'startTime' | 'runDir' | 'containment'>,
    exited: Promise<ProcessExit>,
    ours: boolean,
    handshake: () => HandshakeResult,
    stopLogs: () => void,
    unappliedLimits?: string,
  ) {
    this.unappliedLimits = unappliedLimits;
    this.pid = identity.pid;
    this.startTime = identity.startTime;
    this.runDir = identity.runDir;
    this.containment = identity.containment;
    this.#ours = ours;
    this.#handshake = handshake;
    this.exited = exited.then(async (e) => {
      this.#gone = true;
      stopLogs();
      // Descendants do not outlive the plugin: what it left running would serve an old revision.
      killGroup(this.pid, 'SIGKILL');
      if (this.containment) await killContainment(this.containment);
      return e;
    });
  }

  get handshake(): HandshakeResult {
    return this.#handshake();
  }

  record(): PluginProcessRecord {
    return {
      pid: this.pid,
      startTime: this.startTime,
      handshake: this.handshake,
      runDir: this.runDir,
      ...(this.containment ? { containment: { ...this.containment } } : {}),
    };
  }

  stderrTail(lines = 20): string[] {
    return tailLog(join(this.runDir, STDERR_LOG), lines);
  }

  async stop(graceMs: number): Promise<void> {
    // The child and the adopted-exit poll are unref'd (the agent may exit and leave plugins running), so
    // a ref'd timer keeps the event loop alive until the process is really gone.
    const keepAlive = setInterval(() => {}, 1000);
    let grace: NodeJS.Timeout | undefined;
    try {
      if (!this.#gone) {
        this.#signal('SIGTERM');
        const timer = new Promise<'timeout'>((resolve) => {
          grace = setTimeout(resolve, graceMs, 'timeout');
        });
        if ((await Promise.race([this.exited, timer])) === 'timeout') {
          this.#signal('SIGKILL');
        }
      }
      await this.exited;
      // Children the plugin left in its group, and those that left the group (setsid), die with it.
      killGroup(this.pid, 'SIGKILL');
      if (this.containment) await killContainment(this.containment);
    } finally {
      clearTimeout(grace);
      clearInterval(keepAlive);
    }
  }

  #signal(signal: NodeJS.Signals): void {
    // Our own child cannot be reused before we saw its exit; an adopted pid must still be that process.
    if (this.#gone || (!this.#ours && !isSameProcess(this.pid, this.startTime))) return;
    killGroup(this.pid, signal);
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // no such group: the leader and its children are gone
  }
}

/** State and start time from /proc/<pid>/stat; undefined when there is no such process. */
export function readProcStat(pid: number): { state: string; startTime: string } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const startTime = rest[19];
  if (state === undefined || startTime === undefined) return undefined;
  return { state, startTime };
}

/** Whether `pid` is alive and is the process that started at `startTime` (zombies count as gone). */
export function isSameProcess(pid: number, startTime: string): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
}
