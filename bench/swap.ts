// Swap pause and downtime: a fixed-rate client through the stable front while the node engine swaps
// the plugin K times with real processes, TryActivate and Recreate side by side in one run.
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { NodeEngine } from '../src/agent/node-engine.ts';
import type { EffectTiming } from '../src/agent/plugin-host.ts';
import type { ActivationStrategy } from '../src/api/index.ts';
import { echoSpec, PLUGIN, stageEchoArtifact } from './lib/artifact.ts';
import type { Benchmark } from './lib/benchmark.ts';
import { type LoadReport, runLoad } from './lib/load.ts';
import { median } from './lib/stats.ts';
import type { Row } from './lib/table.ts';

const RATE_PER_SECOND = 200;
/** The client runs this long before the first swap, so the swaps hit a load already flowing. */
const WARMUP_MS = 500;
const COOLDOWN_MS = 200;
const STRATEGIES: ActivationStrategy[] = ['TryActivate', 'Recreate'];

/** What one strategy's K swaps measured. */
export interface StrategyRun {
  strategy: ActivationStrategy;
  swaps: number;
  load: LoadReport;
  /** Per swap: probe success → front switched to the new process (ms). */
  pausesMs: number[];
  /** Per swap: how long the front had no backend and refused connections (ms; 0 for TryActivate). */
  gapsMs: number[];
  /** Per swap: the whole activation, stage to retire (ms). */
  activationsMs: number[];
}

/**
 * The swap pause and the no-backend window of one activation, from its effect timings. The front
 * switches inside the Swap effect (its last step), so Swap's end is when new connections reach the
 * new process; Recreate's window opens when StopActive closes the front to new connections.
 */
export function swapWindows(timings: readonly EffectTiming[]): { pauseMs: number; gapMs: number } {
  const end = (effect: string) => timings.find((t) => t.effect === effect)?.endedAt;
  const swapped = end('Swap');
  const probed = end('Probe');
  if (swapped === undefined || probed === undefined)
    throw new Error(`the activation never swapped (effects: ${timings.map((t) => t.effect).join(', ')})`);
  const unloaded = timings.find((t) => t.effect === 'StopActive')?.startedAt;
  return { pauseMs: swapped - probed, gapMs: unloaded === undefined ? 0 : swapped - unloaded };
}

/** One GET through the front on a fresh connection; resolves with the response body. */
function get(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/', agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function runStrategy(
  dir: string,
  strategy: ActivationStrategy,
  swaps: number,
  log: (line: string) => void,
): Promise<StrategyRun> {
  const root = join(dir, strategy, 'root');
  const staging = join(dir, strategy, 'staging');
  const engine = new NodeEngine({ root, stagingRoot: staging, logger: pino({ level: 'silent' }) });
  await engine.recover();
  const frontSocket = join(root, 'plugins', PLUGIN, 'front.sock');
  const overrides = {
    // One gRPC health check passes a healthy candidate; no post-swap window, so swaps follow each other.
    health: { probes: [{ grpc: {}, periodSeconds: 1, failureThreshold: 2 }] },
    activation: { strategy, drainSeconds: 1, verifySeconds: 0 },
    retention: { keepSnapshots: 0 },
  };
  try {
    const first = await stageEchoArtifact(staging, '1.0.0');
    const initial = await engine.activate(echoSpec(first, 'r0', overrides));
    if (initial.phase !== 'Active') throw new Error(`the first activation ended ${initial.phase}`);
    // Artifacts are on the node before the release names them, as in production.
    const candidates = [];
    for (let i = 1; i <= swaps; i++) candidates.push(await stageEchoArtifact(staging, `1.${i}.0`));

    const stop = new AbortController();
    const load = runLoad(
      {
        socketPath: frontSocket,
        durationMs: 600_000,
        concurrency: 1,
        ratePerSecond: RATE_PER_SECOND,
        fresh: true,
      },
      stop.signal,
    );
    const pausesMs: number[] = [];
    const gapsMs: number[] = [];
    const activationsMs: number[] = [];
    try {
      await sleep(WARMUP_MS);
      for (const [i, candidate] of candidates.entries()) {
        const timings: EffectTiming[] = [];
        const started = performance.now();
        const status = await engine.activate(echoSpec(candidate, `r${i + 1}`, overrides), {
          onEffect: (t) => timings.push(t),
        });
        activationsMs.push(performance.now() - started);
        if (status.phase !== 'Active')
          throw new Error(`${strategy} swap ${i + 1} ended ${status.phase}: ${status.message}`);
        const { pauseMs, gapMs } = swapWindows(timings);
        pausesMs.push(pauseMs);
        gapsMs.push(gapMs);
      }
      await sleep(COOLDOWN_MS);
    } finally {
      stop.abort();
    }
    const report = await load;
    const body = await get(frontSocket);
    const last = candidates.at(-1)!.version;
    if (!body.includes(`from ${last} `)) throw new Error(`after the swaps the front served "${body.trim()}"`);
    log(
      `${strategy}: ${swaps} swaps, ${report.ok + report.failed} requests, ${report.failed} failed${
        report.errors.length ? ` (${report.errors.join(', ')})` : ''
      }`,
    );
    return { strategy, swaps, load: report, pausesMs, gapsMs, activationsMs };
  } finally {
    await engine.close(true);
  }
}

export const benchmark: Benchmark = {
  name: 'swap',
  title: 'Swap pause and downtime',
  async run({ quick, smoke, log }) {
    const swaps = smoke ? 2 : quick ? 3 : 10;
    const dir = mkdtempSync(join(tmpdir(), 'bench-swap-'));
    const runs: StrategyRun[] = [];
    try {
      for (const strategy of STRATEGIES) runs.push(await runStrategy(dir, strategy, swaps, log));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const row = (r: StrategyRun): Row => ({
      strategy: r.strategy,
      swaps: r.swaps,
      requests: r.load.ok + r.load.failed,
      failed: r.load.failed,
      'p50 ms': r.load.p50Ms,
      'p99 ms': r.load.p99Ms,
      'max ms': r.load.maxMs,
      'swap pause ms (median / max)': `${median(r.pausesMs).toFixed(2)} / ${Math.max(...r.pausesMs).toFixed(2)}`,
      'no-backend window ms (median)': median(r.gapsMs),
      'activation ms (median)': median(r.activationsMs),
    });
    const [tried, recreated] = runs as [StrategyRun, StrategyRun];
    return {
      name: 'swap',
      title: 'Swap pause and downtime',
      notes: [
        `A client in a separate process sends ${RATE_PER_SECOND} GET/s, each on a new connection (the front fixes a connection's backend when it accepts it, so new connections are what see a swap), through the agent's stable front (unix socket) while the node engine activates ${swaps} new versions of the example echo plugin back to back (real processes, artifacts already on the node); the client starts ${WARMUP_MS} ms before the first swap and stops ${COOLDOWN_MS} ms after the last, so its latencies are those during swaps.`,
        'Each candidate passes one gRPC health probe; drain 1 s, no post-swap verification window (it would only lengthen each activation, not the pause).',
        "Swap pause: from the Probe effect ending (probe success) to the Swap effect ending, whose last step switches the front (journal intent with fsync, `previous`/`current` renames, front switch), timed by the engine's onEffect hook. Under TryActivate the old process serves throughout it; Recreate wrote its journal intent earlier, at StopActive, so its pause is only the renames and the switch.",
        'No-backend window: Recreate only, from StopActive closing the front to new connections until the Swap effect switches it to the new process (stop old, spawn, handshake, probe, swap); every connection in it is refused.',
        `TryActivate failed ${tried.load.failed} of ${tried.load.ok + tried.load.failed} requests (target 0); Recreate failed ${recreated.load.failed} of ${recreated.load.ok + recreated.load.failed}${recreated.load.errors.length ? ` (${recreated.load.errors.join(', ')})` : ''}.`,
      ],
      tables: [{ caption: `${swaps} swaps per strategy, same run`, rows: runs.map(row) }],
      figures: {
        swaps,
        tryActivateRequests: tried.load.ok + tried.load.failed,
        tryActivateFailed: tried.load.failed,
        tryActivateP99Ms: Number(tried.load.p99Ms.toFixed(2)),
        tryActivateMaxMs: Number(tried.load.maxMs.toFixed(2)),
        tryActivateSwapPauseMedianMs: Number(median(tried.pausesMs).toFixed(3)),
        tryActivateSwapPauseMaxMs: Number(Math.max(...tried.pausesMs).toFixed(3)),
        recreateRequests: recreated.load.ok + recreated.load.failed,
        recreateFailed: recreated.load.failed,
        recreateP99Ms: Number(recreated.load.p99Ms.toFixed(2)),
        recreateMaxMs: Number(recreated.load.maxMs.toFixed(2)),
        recreateSwapPauseMedianMs: Number(median(recreated.pausesMs).toFixed(3)),
        recreateNoBackendWindowMedianMs: Number(median(recreated.gapsMs).toFixed(1)),
      },
    };
  },
};
