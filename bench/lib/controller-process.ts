// The real controller in a process of its own, for benchmarks that measure its CPU and memory:
// spawnController() starts controller-child.js on a tree (the sources or the build) and reads its
// reports, one JSON line each on stdout ("ready" once its caches synced, "sample" per stdin "sample" or
// "gc" line, "stopped" after SIGTERM).
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NODE_FLAGS } from '../../bin/runtime.js';
import { SOURCES, type Tree } from './tree.ts';

const CHILD = join(import.meta.dirname, 'controller-child.js');

/** One report of the process's resource use, as controller-child.js writes it. */
export interface ProcessSample {
  event: 'ready' | 'sample' | 'stopped';
  /** process.uptime() when sampled (s). */
  uptimeSeconds: number;
  /** User + system CPU since the process started (s). */
  cpuSeconds: number;
  rssBytes: number;
  /** Peak RSS since the process started (VmHWM; controller-child.js says why not ru_maxrss). */
  maxRssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** Connections the process's HTTP client (src/kube/rest.ts) has opened so far. */
  connections: number;
}

export interface ControllerChild {
  pid: number;
  /** The "ready" report: caches synced, workers started. */
  ready: ProcessSample;
  sample(): Promise<ProcessSample>;
  /** A sample taken right after a full garbage collection. */
  sampleAfterGc(): Promise<ProcessSample>;
  /** SIGTERM, then the "stopped" report (cpu and peak RSS over the process's whole life). */
  stop(): Promise<ProcessSample>;
  /** The last lines the controller logged (warnings and errors), for diagnostics. */
  stderrTail(): string;
}

/**
 * Spawns `tree`'s controller (same Node binary, the V8 flags bin/ gives it, --expose-gc) against
 * `kubeconfig` and resolves with its "ready" report; rejects if it exits first or is not ready within
 * `readyTimeoutMs`.
 */
export async function spawnController(
  kubeconfig: string,
  { tree = SOURCES, readyTimeoutMs = 60_000 }: { tree?: Tree; readyTimeoutMs?: number } = {},
): Promise<ControllerChild> {
  // BENCH_CONTROLLER_NODE_ARGS adds Node flags to the controller, e.g. `--cpu-prof --cpu-prof-dir=…`
  // to find where its CPU goes.
  const extra = (process.env.BENCH_CONTROLLER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(
    process.execPath,
    [...NODE_FLAGS.controller, ...extra, '--expose-gc', CHILD, tree.root, tree.ext, kubeconfig],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    stderr = (stderr + d).slice(-8192);
  });
  const waiting: Array<(s: ProcessSample) => void> = [];
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) =>
      reject(new Error(`the controller exited (${signal ?? code}) before reporting:\n${stderr}`)),
    ),
  );
  exited.catch(() => {});
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    waiting.shift()?.(JSON.parse(line) as ProcessSample);
  });
  const next = (command?: string) => {
    const report = new Promise<ProcessSample>((resolve) => waiting.push(resolve));
    if (command) child.stdin!.write(`${command}\n`);
    return Promise.race([report, exited]);
  };
  let timer: NodeJS.Timeout | undefined;
  const ready = await Promise.race([
    next(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the controller was not ready in ${readyTimeoutMs} ms`)),
        readyTimeoutMs,
      );
    }),
  ]).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  clearTimeout(timer);
  return {
    pid: child.pid!,
    ready,
    sample: () => next('sample'),
    sampleAfterGc: () => next('gc'),
    stop: async () => {
      const stopped = next();
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
      try {
        return await stopped;
      } finally {
        clearTimeout(kill);
      }
    },
    stderrTail: () => stderr,
  };
}
