// Front overhead: requests/s and latency through the agent's stable front (in this process, and held by
// a keeper process as the agent runs it) vs straight to the plugin.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Front } from '../src/agent/front/index.ts';
import { ensureKeeper } from '../src/agent/front/keeper.ts';
import type { Benchmark } from './lib/benchmark.ts';
import { type LoadReport, runLoad } from './lib/load.ts';
import { startExamplePlugin } from './lib/plugin.ts';
import type { Row } from './lib/table.ts';

const CONCURRENCY = 16;

export const benchmark: Benchmark = {
  name: 'front',
  title: 'Front overhead',
  async run({ quick, smoke, log }) {
    const durationMs = smoke ? 300 : quick ? 2000 : 5000;
    const rounds = smoke ? 1 : 2;
    const dir = mkdtempSync(join(tmpdir(), 'bench-front-'));
    const plugin = await startExamplePlugin(join(dir, 'plugin'), '1.0.0');
    const front = await Front.listen(`unix://${join(dir, 'front.sock')}`, pino({ level: 'silent' }));
    front.switchTo({ network: 'unix', address: plugin.socketPath });
    // The same Front, held by a keeper process (what `plugin-release agent` uses by default).
    const keeper = await ensureKeeper(dir, pino({ level: 'silent' }));
    const keeperFront = `unix://${join(dir, 'keeper-front.sock')}`;
    await keeper.call('open', { address: keeperFront });
    await keeper.call('switch', {
      address: keeperFront,
      backend: { network: 'unix', address: plugin.socketPath },
    });
    const paths = {
      direct: plugin.socketPath,
      front: join(dir, 'front.sock'),
      keeper: join(dir, 'keeper-front.sock'),
    };
    const best: Partial<Record<keyof typeof paths, LoadReport>> = {};
    try {
      // Alternate the paths so drift on a noisy machine hits all alike; keep each path's best round.
      for (let round = 0; round < rounds; round++) {
        for (const path of ['direct', 'front', 'keeper'] as const) {
          const socketPath = paths[path];
          const report = await runLoad({ socketPath, durationMs, concurrency: CONCURRENCY });
          log(
            `${path} round ${round + 1}: ${report.requestsPerSecond.toFixed(0)} req/s, ${report.failed} failed`,
          );
          if (!best[path] || report.requestsPerSecond > best[path].requestsPerSecond) best[path] = report;
        }
      }
    } finally {
      await front.close();
      await keeper.call('close', { address: keeperFront }).catch(() => {});
      const { pid } = await keeper.hello();
      keeper.close();
      process.kill(pid, 'SIGTERM');
      await plugin.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const direct = best.direct!;
    const viaFront = best.front!;
    const viaKeeper = best.keeper!;
    const row = (path: string, r: LoadReport): Row => ({
      path,
      'req/s': Math.round(r.requestsPerSecond),
      'p50 ms': r.p50Ms,
      'p99 ms': r.p99Ms,
      failed: r.failed,
    });
    const ratio = viaFront.requestsPerSecond / direct.requestsPerSecond;
    const keeperRatio = viaKeeper.requestsPerSecond / direct.requestsPerSecond;
    return {
      name: 'front',
      title: 'Front overhead',
      notes: [
        `${CONCURRENCY} keep-alive HTTP/1.1 clients in a separate process, ${durationMs} ms per round, best of ${rounds} alternating rounds per path.`,
        "The plugin is the example echo plugin on a unix socket; the front is the agent's layer-4 proxy on another unix socket, once in the benchmark's own process and once held by a `plugin-release keeper` process, which is where the agent keeps its fronts so that they outlive it.",
        `Front throughput is ${(ratio * 100).toFixed(0)}% of direct in-process and ${(keeperRatio * 100).toFixed(0)}% through the keeper (target ≥ 80%).`,
      ],
      tables: [
        {
          caption: 'Through the front vs direct',
          rows: [
            row('direct', direct),
            row('front (in-process)', viaFront),
            row('front (keeper process)', viaKeeper),
          ],
        },
      ],
      figures: {
        frontThroughputRatio: Number(ratio.toFixed(3)),
        keeperThroughputRatio: Number(keeperRatio.toFixed(3)),
        directRps: Math.round(direct.requestsPerSecond),
        frontRps: Math.round(viaFront.requestsPerSecond),
        keeperRps: Math.round(viaKeeper.requestsPerSecond),
      },
    };
  },
};
