// Health probes: grpc, httpGet, tcpSocket and exec, with periods, thresholds, soak and verification windows.
//
// Each probe runs in its own loop at its own period, like a kubelet probe: successThreshold consecutive
// successes pass it, failureThreshold consecutive failures reject the candidate. In 'healthy' mode the
// run resolves once every probe passed and soakSeconds more went by without a probe reaching its failure
// threshold; in 'window' mode (post-swap verification) it resolves after windowMs without that.
// Every wait goes through the injected `delay`, so tests can drive time.
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type HandshakeResult, NodeReason, type Probe } from '../../api/index.ts';
import { http } from '../../runtime/node-http.ts';
import { ActivationError } from '../errors.ts';
import {
  type ContainmentOptions,
  createContainment,
  INSTANCE_ENV,
  joinCgroup,
  killContainment,
} from './containment.ts';
import { openGate, spawnContained, usesGate } from './gate.ts';
import { decodeFields, stringField, unaryCall } from './grpc.ts';
import type { Health, ProbeOptions } from './types.ts';

export const HEALTH_METHOD = '/grpc.health.v1.Health/Check';

type Delay = (ms: number, signal?: AbortSignal) => Promise<void>;
interface Outcome {
  ok: boolean;
  message: string;
}

const defaultDelay: Delay = async (ms, signal) => {
  await sleep(ms, undefined, { signal });
};

/** The name a probe goes by in status and logs: its `name`, or its kind. */
export function probeName(probe: Probe): string {
  return probe.name ?? probeKind(probe);
}

function probeKind(probe: Probe): 'grpc' | 'httpGet' | 'tcpSocket' | 'exec' {
  if (probe.grpc) return 'grpc';
  if (probe.httpGet) return 'httpGet';
  if (probe.tcpSocket) return 'tcpSocket';
  return 'exec';
}

/**
 * Probes `target` until healthy (then soaks) or for a verification window.
 * Throws ActivationError ProbeFailed (a probe reached its failure threshold; the message names it and
 * its last error) or PluginExited (opts.process exited meanwhile), or the abort reason of opts.signal.
 */
export async function runProbes(target: HandshakeResult, health: Health, opts: ProbeOptions): Promise<void> {
  opts.signal?.throwIfAborted();
  const delay = opts.delay ?? defaultDelay;
  const now = opts.now ?? (() => new Date());
  const until = opts.until ?? 'healthy';
  const probes = health.probes;
  if (probes.length === 0 && !(until === 'window' && opts.process)) return;

  const stop = new AbortController();
  const onAbort = () => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const aborted = new Promise<never>((_, reject) => {
    stop.signal.addEventListener('abort', () => reject(stop.signal.reason), { once: true });
  });
  aborted.catch(() => {});

  let markPassed: () => void = () => {};
  const allPassed = new Promise<void>((resolve) => {
    markPassed = resolve;
  });
  const passed = new Set<number>();
  if (probes.length === 0) markPassed();

  const loop = async (probe: Probe, index: number): Promise<never> => {
    const name = probeName(probe);
    let successes = 0;
    let failures = 0;
    for (;;) {
      const outcome = await attempt(probe, target, opts.env, delay, stop.signal, opts.containment);
      stop.signal.throwIfAborted();
      opts.onResult?.({
        time: now().toISOString(),
        probe: name,
        success: outcome.ok,
        ...(outcome.message ? { message: outcome.message.slice(0, 4096) } : {}),
      });
      if (outcome.ok) {
        successes++;
        failures = 0;
        if (successes >= probe.successThreshold && !passed.has(index)) {
          passed.add(index);
          if (passed.size === probes.length) markPassed();
        }
      } else {
        failures++;
        successes = 0;
        if (failures >= probe.failureThreshold) {
          await preferExit(opts, delay, stop.signal);
          throw new ActivationError(
            NodeReason.ProbeFailed,
            withStderr(
              `Probe ${name} failed ${failures} time${failures === 1 ? '' : 's'} in a row; last error: ${outcome.message}.`,
              opts,
            ),
          );
        }
      }
      await delay(probe.periodSeconds * 1000, stop.signal);
    }
  };

  const exit = opts.process
    ? opts.process.exited.then((e): never => {
        throw exitedError(e, opts);
      })
    : new Promise<never>(() => {});
  const done =
    until === 'window'
      ? delay(opts.windowMs ?? 0, stop.signal)
      : allPassed.then(() => delay(health.soakSeconds * 1000, stop.signal));
  try {
    await Promise.race([done, exit, aborted, ...probes.map(loop)]);
  } finally {
    stop.abort(new Error('probing finished'));
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** A failing probe against a process that just died is reported as PluginExited, the more useful reason. */
async function preferExit(opts: ProbeOptions, delay: Delay, signal: AbortSignal): Promise<void> {
  if (!opts.process) return;
  const grace = delay(250, signal).catch(() => {});
  const exit = await Promise.race([opts.process.exited, grace]);
  if (exit) throw exitedError(exit, opts);
}

function exitedError(
  exit: { code: number | null; signal: string | null },
  opts: ProbeOptions,
): ActivationError {
  const how = exit.signal
    ? `was killed by ${exit.signal}`
    : exit.code === null
      ? 'exited'
      : `exited with code ${exit.code}`;
  return new ActivationError(
    NodeReason.PluginExited,
    withStderr(`The plugin ${how} while it was probed.`, opts),
  );
}

function withStderr(message: string, opts: ProbeOptions): string {
  const tail = opts.process?.stderrTail(10) ?? [];
  if (tail.length === 0) return message;
  return `${message} Last stderr lines:\n${tail.map((l) => `  ${l}`).join('\n')}`;
}

/** One probe attempt, bounded by the probe's timeout; never throws except on abort. */
async function attempt(
  probe: Probe,
  target: HandshakeResult,
  env: Record<string, string> | undefined,
  delay: Delay,
  signal: AbortSignal,
  containment: ContainmentOptions | undefined,
): Promise<Outcome> {
  const timeoutMs = probe.timeoutSeconds * 1000;
  const own = new AbortController();
  const relay = () => own.abort(signal.reason);
  signal.addEventListener('abort', relay, { once: true });
  try {
    const timeout = delay(timeoutMs, own.signal).then(
      (): Outcome => ({ ok: false, message: `timed out after ${probe.timeoutSeconds}s` }),
    );
    const run = (async (): Promise<Outcome> => {
      try {
        if (probe.grpc) return await grpcCheck(target, probe.grpc.service, timeoutMs, own.signal);
        if (probe.httpGet) return await httpCheck(target, probe.httpGet.path, timeoutMs, own.signal);
        if (probe.tcpSocket) return await tcpCheck(target, own.signal);
        return await execCheck(probe.exec?.command ?? [], target, env, own.signal, containment);
      } catch (error) {
        return { ok: false, message: (error as Error).message };
      }
    })();
    return await Promise.race([run, timeout]);
  } finally {
    own.abort(new Error('attempt finished'));
    signal.removeEventListener('abort', relay);
  }
}

async function grpcCheck(
  target: HandshakeResult,
  service: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Outcome> {
  const reply = await unaryCall(target, HEALTH_METHOD, stringField(1, service), timeoutMs, signal);
  const status = decodeFields(reply).get(1)?.[0] ?? 0;
  const names = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
  if (status === 1) return { ok: true, message: '' };
  return { ok: false, message: `health of service "${service}" is ${names[Number(status)] ?? status}` };
}

function httpCheck(
  target: HandshakeResult,
  path: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    const where = target.network === 'unix' ? { socketPath: target.address } : hostPort(target.address);
    const req = http.get(
      { ...where, path, agent: false, timeout: timeoutMs, signal, headers: { host: 'localhost' } },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 400) resolve({ ok: true, message: '' });
        else resolve({ ok: false, message: `GET ${path} answered ${code}` });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', (e) => reject(new Error(`GET ${path}: ${e.message}`)));
  });
}

function tcpCheck(target: HandshakeResult, signal: AbortSignal): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    const socket =
      target.network === 'unix'
        ? net.connect({ path: target.address })
        : net.connect(hostPort(target.address));
    const onAbort = () => socket.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve({ ok: true, message: '' });
    });
    socket.once('error', (e) => {
      signal.removeEventListener('abort', onAbort);
      reject(new Error(`connect ${target.address}: ${e.message}`));
    });
  });
}

/**
 * Runs an exec probe contained like a plugin (its own cgroup or marker), so that whatever it started in
 * the background dies with it: on its exit (resolving on `exit`, not on `close`, which waits for every
 * holder of the stderr pipe), at the timeout and on abort, the whole containment is killed.
 */
async function execCheck(
  command: string[],
  target: HandshakeResult,
  env: Record<string, string> | undefined,
  signal: AbortSignal,
  containmentOptions: ContainmentOptions | undefined,
): Promise<Outcome> {
  const [file, ...args] = command;
  if (!file) throw new Error('exec probe has no command');
  const { record } = await createContainment('probe', containmentOptions);
  const gated = usesGate(record);
  let child: ChildProcess | undefined;
  try {
    return await new Promise<Outcome>((resolve, reject) => {
      signal.throwIfAborted();
      const options = {
        env: {
          PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
          ...env,
          PLUGIN_ADDRESS: target.address,
          PLUGIN_NETWORK: target.network,
          [INSTANCE_ENV]: record.instance,
        },
        stdio: ['ignore' as const, 'ignore' as const, 'pipe' as const],
      };
      const proc = spawnContained(gated, file, args, options);
      child = proc;
      const onAbort = () => {
        proc.kill('SIGKILL');
        void killContainment(record);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      let stderr = '';
      proc.stderr?.on('data', (c: Buffer) => {
        stderr = (stderr + c.toString()).slice(-1024);
      });
      proc.once('error', (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(new Error(`${file}: ${e.message}`));
      });
      proc.once('spawn', () => {
        if (!gated || proc.pid === undefined) return;
        try {
          joinCgroup(record, proc.pid);
        } catch {
          // cannot join: the marker still names the probe's processes
        }
        openGate(proc);
      });
      proc.once('exit', (code, sig) => {
        signal.removeEventListener('abort', onAbort);
        // Background children die now; they held the stderr pipe open, so give its last bytes a moment.
        const settled = killContainment(record).then(() => undefined);
        const drained = new Promise<void>((done) => {
          if (!proc.stderr || proc.stderr.closed) return done();
          proc.stderr.once('close', () => done());
          setTimeout(done, 200).unref();
        });
        void Promise.all([settled, drained]).then(() => {
          proc.stderr?.destroy();
          if (code === 0) return resolve({ ok: true, message: '' });
          const last = stderr.trim().split('\n').at(-1);
          const how = sig
            ? `was killed by ${sig}`
            : code === 125 && gated
              ? 'could not be run'
              : `exited with code ${code}`;
          resolve({ ok: false, message: `${file} ${how}${last ? `: ${last}` : ''}` });
        });
      });
    });
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child?.stderr?.destroy();
    await killContainment(record);
  }
}

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}
