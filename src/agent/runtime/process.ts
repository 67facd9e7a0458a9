// Plugin processes: spawn detached, read the handshake, adopt after a restart, stop by process group.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HandshakeResult, NodeReason } from '../../api/index.ts';
import { ActivationError } from '../errors.ts';
import {
  formatProtocolVersions,
  type HandshakeLine,
  isHandshakeAttempt,
  MAX_HANDSHAKE_LINE,
  parseHandshakeLine,
} from './handshake.ts';
import type { LaunchOptions, PluginProcess, PluginProcessRecord, ProcessExit } from './types.ts';

export const STDOUT_LOG = 'stdout.log';
export const STDERR_LOG = 'stderr.log';
export const PROCESS_RECORD = 'process.json';
export const PROCESS_IDENTITY = 'pid.json';

const DEFAULT_STOP_GRACE_MS = 2000;
const DEFAULT_MAX_HANDSHAKE_BYTES = 64 * 1024;
const POLL_MS = 20;
const ADOPTED_POLL_MS = 200;
const STDERR_LINES_IN_MESSAGES = 10;
const NOISE_LINES_LOGGED = 10;

/**
 * Starts the plugin and returns once it printed a valid handshake line.
 * Preconditions: `entrypoint` is executable; `runDir` may not exist yet (it is created).
 * Effects: a detached process group led by the plugin; `runDir/{stdout,stderr}.log` and, on success,
 * `runDir/process.json`. On any failure the process group is gone before the promise rejects.
 * Throws ActivationError SpawnFailed | HandshakeTimeout | HandshakeInvalid | ProtocolVersionMismatch |
 * PluginExited (each is the candidate's fault: do not retry the same revision), or `signal.reason`.
 */
export async function launchPlugin(opts: LaunchOptions): Promise<PluginProcess> {
  opts.signal?.throwIfAborted();
  const { logger } = opts;
  const stdoutPath = join(opts.runDir, STDOUT_LOG);
  const stderrPath = join(opts.runDir, STDERR_LOG);
  let out: number;
  let err: number;
  try {
    await mkdir(opts.runDir, { recursive: true });
    out = openSync(stdoutPath, 'w');
    err = openSync(stderrPath, 'w');
  } catch (cause) {
    throw new ActivationError(
      NodeReason.SpawnFailed,
      `The plugin's run directory ${opts.runDir} is not writable: ${(cause as Error).message}.`,
      { cause },
    );
  }
  let child: ChildProcess;
  try {
    child = spawn(opts.entrypoint, opts.args, {
      cwd: opts.cwd,
      env: pluginEnvironment(opts),
      stdio: ['ignore', out, err],
      detached: true,
      ...(opts.runAsUser !== undefined ? { uid: opts.runAsUser } : {}),
      ...(opts.runAsGroup !== undefined ? { gid: opts.runAsGroup } : {}),
    });
  } catch (cause) {
    throw new ActivationError(NodeReason.SpawnFailed, `The plugin could not be started: ${String(cause)}.`, {
      cause,
    });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (e) => resolve(e));
  });
  if (spawned || child.pid === undefined) {
    throw new ActivationError(
      NodeReason.SpawnFailed,
      `The plugin ${opts.entrypoint} could not be started: ${spawned?.message ?? 'no pid'}.`,
      { cause: spawned },
    );
  }
  child.unref();
  const pid = child.pid;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const startTime = readProcStat(pid)?.startTime ?? '';
  // Written before the handshake, so a recovering agent can find (and stop) a candidate it never adopted.
  const identityWritten = writeFile(
    join(opts.runDir, PROCESS_IDENTITY),
    `${JSON.stringify({ pid, startTime })}\n`,
  );
  const log = logger.child({ pid });
  log.info({ entrypoint: opts.entrypoint, args: opts.args }, 'plugin process started');

  const fail = async (reason: NodeReason, detail: string): Promise<never> => {
    await handle.stop(opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    throw new ActivationError(reason, withStderr(detail, handle.stderrTail(STDERR_LINES_IN_MESSAGES)));
  };
  const pending: { handshake: HandshakeResult } = {
    handshake: { coreProtocol: 0, appProtocol: 0, network: 'tcp', address: '' },
  };
  const handle = new ProcessHandle(pid, startTime, opts.runDir, exited, true, () => pending.handshake);

  let line: HandshakeLine;
  try {
    await identityWritten;
    line = await readHandshake(stdoutPath, exited, opts);
  } catch (error) {
    if (error instanceof HandshakeProblem) return fail(error.reason, error.message);
    if (error instanceof ActivationError) return fail(error.reason, error.message);
    if (!opts.signal?.aborted) {
      return fail(
        NodeReason.SpawnFailed,
        `The agent could not watch the plugin: ${(error as Error).message}.`,
      );
    }
    await handle.stop(opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    throw error;
  }
  pending.handshake = {
    coreProtocol: line.coreProtocol,
    appProtocol: line.appProtocol,
    network: line.network,
    address: line.address,
  };
  if (line.protocol !== 'grpc') {
    log.warn(
      { protocol: line.protocol },
      'plugin speaks go-plugin netrpc: grpc probes and the contract call need grpc',
    );
  }
  try {
    await writeFile(join(opts.runDir, PROCESS_RECORD), `${JSON.stringify(handle.record())}\n`);
  } catch (cause) {
    return fail(
      NodeReason.SpawnFailed,
      `The agent could not record the plugin process: ${(cause as Error).message}.`,
    );
  }
  log.info({ handshake: pending.handshake }, 'plugin handshake accepted');
  return handle;
}

/**
 * A handle on the process a record names, if that very process still runs (pid and start time match,
 * and it is not a zombie); undefined when it is gone or the pid was reused. Never signals anything.
 */
export function adoptPlugin(record: PluginProcessRecord): PluginProcess | undefined {
  if (!isSameProcess(record.pid, record.startTime)) return undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    const timer = setInterval(() => {
      if (isSameProcess(record.pid, record.startTime)) return;
      clearInterval(timer);
      resolve({ code: null, signal: null });
    }, ADOPTED_POLL_MS);
    timer.unref();
  });
  return new ProcessHandle(
    record.pid,
    record.startTime,
    record.runDir,
    exited,
    false,
    () => record.handshake,
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
 * Recovery after a crash mid-launch: stops the process `runDir/pid.json` names if that very process still
 * runs (SIGTERM, SIGKILL after graceMs, whole group). Resolves true when it stopped one, false when none ran.
 */
export async function stopOrphan(runDir: string, graceMs: number): Promise<boolean> {
  const identity = readProcessIdentity(runDir);
  if (!identity) return false;
  const handle = adoptPlugin({
    ...identity,
    runDir,
    handshake: { coreProtocol: 0, appProtocol: 0, network: 'tcp', address: '' },
  });
  if (!handle) return false;
  await handle.stop(graceMs);
  return true;
}

/** The environment a plugin starts with; the protocol variables are set last so the spec cannot clobber them. */
export function pluginEnvironment(opts: LaunchOptions): Record<string, string> {
  const socketDir = opts.runDir.length + 24 <= 107 ? opts.runDir : tmpdir();
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
  return env;
}

class HandshakeProblem extends Error {
  readonly reason: NodeReason;
  constructor(reason: NodeReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Tails the stdout file until a handshake line, the byte bound, the timeout, an exit or an abort. */
async function readHandshake(
  path: string,
  exited: Promise<ProcessExit>,
  opts: LaunchOptions,
): Promise<HandshakeLine> {
  const timeoutMs = opts.handshake.timeoutSeconds * 1000;
  const maxBytes = opts.maxHandshakeBytes ?? DEFAULT_MAX_HANDSHAKE_BYTES;
  const deadline = Date.now() + timeoutMs;
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
          throw new HandshakeProblem(
            NodeReason.HandshakeInvalid,
            `The plugin printed ${offset} bytes (${noise} lines) to stdout without a handshake line; ` +
              `the agent reads at most ${maxBytes} bytes before giving up.`,
          );
        }
        if (offset >= maxBytes + 1) break;
      }
      if (exitedBeforeRead) throw exitedProblem(exitedBeforeRead, 'before its handshake');
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (Date.now() >= deadline) {
        throw new HandshakeProblem(
          NodeReason.HandshakeTimeout,
          `The plugin printed no handshake line within ${opts.handshake.timeoutSeconds}s` +
            (noise > 0 ? ` (it printed ${noise} other lines).` : '.'),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    closeSync(fd);
  }
}

function exitedProblem(exit: ProcessExit, when: string): HandshakeProblem {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return new HandshakeProblem(NodeReason.PluginExited, `The plugin ${how} ${when}.`);
}

function withStderr(message: string, tail: string[]): string {
  if (tail.length === 0) return `${message} It wrote nothing to stderr.`;
  return `${message} Last stderr lines:\n${tail.map((l) => `  ${l}`).join('\n')}`;
}

class ProcessHandle implements PluginProcess {
  readonly pid: number;
  readonly startTime: string;
  readonly runDir: string;
  readonly exited: Promise<ProcessExit>;
  readonly #ours: boolean;
  readonly #handshake: () => HandshakeResult;
  #gone = false;

  constructor(
    pid: number,
    startTime: string,
    runDir: string,
    exited: Promise<ProcessExit>,
    ours: boolean,
    handshake: () => HandshakeResult,
  ) {
    this.pid = pid;
    this.startTime = startTime;
    this.runDir = runDir;
    this.#ours = ours;
    this.#handshake = handshake;
    this.exited = exited.then((e) => {
      this.#gone = true;
      return e;
    });
  }

  get handshake(): HandshakeResult {
    return this.#handshake();
  }

  record(): PluginProcessRecord {
    return { pid: this.pid, startTime: this.startTime, handshake: this.handshake, runDir: this.runDir };
  }

  stderrTail(lines = 20): string[] {
    return tailLines(join(this.runDir, STDERR_LOG), lines);
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
          await this.exited;
        }
      }
    } finally {
      clearTimeout(grace);
      clearInterval(keepAlive);
    }
    // Children the plugin left in its group die with it: no orphan keeps serving an old revision.
    killGroup(this.pid, 'SIGKILL');
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

function tailLines(path: string, lines: number): string[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = statSync(path).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const all = buffer.toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    if (length < size) all.shift();
    return all.slice(-lines).map((l) => (l.length > 1024 ? `${l.slice(0, 1024)}…` : l));
  } finally {
    closeSync(fd);
  }
}
