// A load generator that runs in its own process (so it never shares an event loop with the thing it
// measures): keep-alive HTTP/1.1 GETs over a unix socket, closed-loop or at a fixed rate.
//
// Run: node bench/lib/load.ts '<json LoadSpec>' [stoppable]  → prints one JSON LoadReport line on stdout.
// With `stoppable`, a 'stop' message from the parent ends the run early (runLoad's signal sends it).

import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';

export interface LoadSpec {
  socketPath: string;
  durationMs: number;
  /** Concurrent connections (closed loop: each sends its next request when the last answered). */
  concurrency: number;
  /** When set, requests start at this fixed rate (per second) instead of closed-loop. */
  ratePerSecond?: number;
  /** Open a new connection per request (what a client sees across swaps), instead of keep-alive. */
  fresh?: boolean;
}

export interface LoadReport {
  ok: number;
  failed: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: string[];
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function generate(spec: LoadSpec, stoppable = false): Promise<LoadReport> {
  const agent = new Agent({ keepAlive: !spec.fresh, maxSockets: spec.concurrency });
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  let failed = 0;
  const started = performance.now();
  let deadline = started + spec.durationMs;
  const stop = (message: unknown) => {
    if (message === 'stop') deadline = Math.min(deadline, performance.now());
  };
  if (stoppable) process.on('message', stop);

  const once = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = request(
        { socketPath: spec.socketPath, path: '/', agent: spec.fresh ? false : agent, timeout: 5000 },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - t0);
            else failed++;
            resolve();
          });
          res.on('error', () => {
            failed++;
            resolve();
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        failed++;
        errors.set(err.code ?? err.message, (errors.get(err.code ?? err.message) ?? 0) + 1);
        resolve();
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });

  if (spec.ratePerSecond) {
    const interval = 1000 / spec.ratePerSecond;
    const inflight: Promise<void>[] = [];
    for (let next = started; next < deadline; next += interval) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (next >= deadline) break; // stopped while waiting
      inflight.push(once());
    }
    await Promise.all(inflight);
  } else {
    await Promise.all(
      Array.from({ length: spec.concurrency }, async () => {
        while (performance.now() < deadline) await once();
      }),
    );
  }
  agent.destroy();
  if (stoppable) process.off('message', stop);
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    ok: latencies.length,
    failed,
    requestsPerSecond: latencies.length / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    errors: [...errors].map(([k, v]) => `${k}×${v}`),
  };
}

/**
 * Starts the generator in a child process; resolves with its report when the duration is over, or
 * early once `signal` aborts (the report then covers the requests started until then, all awaited).
 */
export function runLoad(spec: LoadSpec, signal?: AbortSignal): Promise<LoadReport> {
  return new Promise((resolve, reject) => {
    const args = signal ? [JSON.stringify(spec), 'stoppable'] : [JSON.stringify(spec)];
    const child = fork(import.meta.filename, args, {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    const stop = () => {
      if (child.connected) child.send('stop');
    };
    if (signal?.aborted) child.once('spawn', stop);
    else signal?.addEventListener('abort', stop, { once: true });
    child.once('exit', () => signal?.removeEventListener('abort', stop));
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load exited ${code}`)),
    );
  });
}

if (import.meta.main) {
  const stoppable = process.argv[3] === 'stoppable';
  const report = await generate(JSON.parse(process.argv[2]!), stoppable);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  // The IPC channel a stoppable run listened on would keep this process alive; let it exit.
  if (stoppable) process.disconnect?.();
}
