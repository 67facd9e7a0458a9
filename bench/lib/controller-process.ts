// The real controller in a process of its own, for benchmarks that measure its CPU and memory: run as
// a script it prints one JSON line per report on stdout ("ready" once its caches synced, "sample" per
// stdin "sample" or "gc" line, "stopped" after SIGTERM) and logs warnings to stderr;
// spawnController() starts it and reads those reports.
import { type ChildProcess, spawn } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { NODE_FLAGS } from '../../bin/runtime.js';
import { narrowClientNode } from '../../src/kube/loader.ts';

/** One report of the process's resource use. */
export interface ProcessSample {
  event: 'ready' | 'sample' | 'stopped';
  /** process.uptime() when sampled (s). */
  uptimeSeconds: number;
  /** User + system CPU since the process started (s). */
  cpuSeconds: number;
  rssBytes: number;
  /** Peak RSS since the process started (getrusage ru_maxrss). */
  maxRssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** Connections the process's HTTP client (src/kube/rest.ts) has opened so far. */
  connections: number;
}

let connections = 0;

function sample(event: ProcessSample['event']): ProcessSample {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return {
    event,
    uptimeSeconds: process.uptime(),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    rssBytes: memory.rss,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    connections,
  };
}

const report = (event: ProcessSample['event']) => process.stdout.write(`${JSON.stringify(sample(event))}\n`);

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
 * Spawns the controller (same Node binary, --expose-gc) against `kubeconfig` and resolves with its
 * "ready" report; rejects if it exits first or is not ready within `readyTimeoutMs`.
 */
export async function spawnController(kubeconfig: string, readyTimeoutMs = 60_000): Promise<ControllerChild> {
  // BENCH_CONTROLLER_NODE_ARGS adds Node flags to the controller, e.g. `--cpu-prof --cpu-prof-dir=…`
  // to find where its CPU goes.
  const extra = (process.env.BENCH_CONTROLLER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(
    process.execPath,
    [...NODE_FLAGS.controller, ...extra, '--expose-gc', import.meta.filename, kubeconfig],
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

async function main(kubeconfig: string) {
  // node:net announces every client socket it connects here, TLS or not.
  subscribe('net.client.socket', () => {
    connections++;
  });
  // As bin/plugin-release.js runs it: the hook first, then the controller's modules.
  narrowClientNode();
  const [{ startController }, { loadKubeConfig }] = await Promise.all([
    import('../../src/controller/manager.ts'),
    import('../../src/kube/index.ts'),
  ]);
  const logger = pino({ level: process.env.BENCH_CONTROLLER_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const controller = await startController({ kubeConfig: loadKubeConfig(kubeconfig), logger });
  report('ready');
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = line.trim();
    if (command === 'gc') (globalThis as { gc?: () => void }).gc?.();
    if (command === 'sample' || command === 'gc') report('sample');
  });
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    lines.close();
    void controller.stop().finally(() => {
      report('stopped');
      process.exit(0);
    });
  });
}

if (import.meta.main) {
  const kubeconfig = process.argv[2];
  if (!kubeconfig) {
    process.stderr.write('usage: controller-process.ts <kubeconfig>\n');
    process.exit(2);
  }
  await main(kubeconfig);
}
