// Swap pause and downtime: a fixed-rate client through the stable front while the node engine swaps
// the plugin K times with real processes, TryActivate and Recreate side by side in one run; then the
// same client while the agent process is SIGKILLed and restarted, and while a newer agent takes over.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { KeeperClient } from '../src/agent/front/keeper.ts';
import { NodeEngine } from '../src/agent/node-engine.ts';
import type { EffectTiming } from '../src/agent/plugin-host.ts';
import type { ActivationStrategy } from '../src/api/index.ts';
import { type EchoArtifact, echoSpec, PLUGIN, stageEchoArtifact } from './lib/artifact.ts';
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

/**
 * The fixed-rate client on fresh connections through `frontSocket`, from WARMUP_MS before `act` until
 * `settleMs` after it; what it saw.
 */
async function underLoad(
  frontSocket: string,
  settleMs: number,
  act: () => Promise<void>,
): Promise<LoadReport> {
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
  try {
    await sleep(WARMUP_MS);
    await act();
    await sleep(settleMs);
  } finally {
    stop.abort();
  }
  return load;
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
    const candidates: EchoArtifact[] = [];
    for (let i = 1; i <= swaps; i++) candidates.push(await stageEchoArtifact(staging, `1.${i}.0`));

    const pausesMs: number[] = [];
    const gapsMs: number[] = [];
    const activationsMs: number[] = [];
    const report = await underLoad(frontSocket, COOLDOWN_MS, async () => {
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
    });
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

const AGENT = join(import.meta.dirname, 'lib', 'agent-process.ts');

/** What clients saw while the agent process went away: SIGKILL and restart, or a hand-over. */
interface AgentRun {
  event: string;
  load: LoadReport;
}

function startAgent(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [AGENT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('READY')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`the agent exited with ${code} before it was ready`)));
  });
}

const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((resolve) => child.once('exit', () => resolve()));

/**
 * An agent (engine process, fronts in the keeper) serves v1; under load it is SIGKILLed and started
 * again `restartAfterMs` later; then a newer build takes the root over through the hand-over.
 */
async function runAgentContinuity(
  dir: string,
  restartAfterMs: number,
  log: (line: string) => void,
): Promise<AgentRun[]> {
  const root = join(dir, 'agent', 'root');
  const staging = join(dir, 'agent', 'staging');
  const first = await stageEchoArtifact(staging, '1.0.0');
  const specFile = join(dir, 'agent', 'spec.json');
  writeFileSync(
    specFile,
    JSON.stringify(
      echoSpec(first, 'r0', {
        health: { probes: [{ grpc: {}, periodSeconds: 1, failureThreshold: 2 }] },
        activation: { drainSeconds: 1, verifySeconds: 0 },
      }),
    ),
  );
  const frontSocket = join(root, 'plugins', PLUGIN, 'front.sock');
  const under = async (event: string, act: () => Promise<void>): Promise<AgentRun> => {
    const report = await underLoad(frontSocket, 1000, act);
    log(`${event}: ${report.ok + report.failed} requests, ${report.failed} failed`);
    return { event, load: report };
  };
  let agent = await startAgent([root, staging, '1', '0', specFile]);
  const runs: AgentRun[] = [];
  try {
    runs.push(
      await under(`agent SIGKILL, restarted ${restartAfterMs / 1000} s later`, async () => {
        agent.kill('SIGKILL');
        await exited(agent);
        await sleep(restartAfterMs);
        agent = await startAgent([root, staging, '1', '0']);
      }),
    );
    runs.push(
      await under('agent upgrade (hand-over to a newer build)', async () => {
        const old = agent;
        agent = await startAgent([root, staging, '2', '1']);
        await exited(old);
      }),
    );
  } finally {
    agent.kill('SIGKILL');
    const keeper = await KeeperClient.connect(root).catch(() => undefined);
    if (keeper) {
      await keeper.call('close', { address: `unix://${frontSocket}` }).catch(() => {});
      const { pid } = await keeper.hello();
      keeper.close();
      process.kill(pid, 'SIGTERM');
    }
    // The plugin outlives its agents by design: stop it through a last engine on the root.
    const last = new NodeEngine({ root, stagingRoot: staging, logger: pino({ level: 'silent' }) });
    await last.recover();
    await last.close(true);
  }
  return runs;
}

export const benchmark: Benchmark = {
  name: 'swap',
  title: 'Swap pause and downtime',
  async run({ quick, smoke, log }) {
    const swaps = smoke ? 2 : quick ? 3 : 10;
    const dir = mkdtempSync(join(tmpdir(), 'bench-swap-'));
    const runs: StrategyRun[] = [];
    let agentRuns: AgentRun[] = [];
    try {
      for (const strategy of STRATEGIES) runs.push(await runStrategy(dir, strategy, swaps, log));
      agentRuns = await runAgentContinuity(dir, smoke ? 500 : 2000, log);
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
    const agentRow = (r: AgentRun): Row => ({
      strategy: r.event,
      swaps: 0,
      requests: r.load.ok + r.load.failed,
      failed: r.load.failed,
      'p50 ms': r.load.p50Ms,
      'p99 ms': r.load.p99Ms,
      'max ms': r.load.maxMs,
      'swap pause ms (median / max)': '-',
      'no-backend window ms (median)': 0,
      'activation ms (median)': 0,
    });
    const [tried, recreated] = runs as [StrategyRun, StrategyRun];
    const [killed, upgraded] = agentRuns as [AgentRun, AgentRun];
    return {
      name: 'swap',
      title: 'Swap pause and downtime',
      notes: [
        `A client in a separate process sends ${RATE_PER_SECOND} GET/s, each on a new connection (the front fixes a connection's backend when it accepts it, so new connections are what see a swap), through the agent's stable front (unix socket) while the node engine activates ${swaps} new versions of the example echo plugin back to back (real processes, artifacts already on the node); the client starts ${WARMUP_MS} ms before the first swap and stops ${COOLDOWN_MS} ms after the last, so its latencies are those during swaps.`,
        'Each candidate passes one gRPC health probe; drain 1 s, no post-swap verification window (it would only lengthen each activation, not the pause).',
        "Swap pause: from the Probe effect ending (probe success) to the Swap effect ending, whose last step switches the front (journal intent with fsync, `previous`/`current` renames, front switch), timed by the engine's onEffect hook. Under TryActivate the old process serves throughout it; Recreate wrote its journal intent earlier, at StopActive, so its pause is only the renames and the switch.",
        'No-backend window: Recreate only, from StopActive closing the front to new connections until the Swap effect switches it to the new process (stop old, spawn, handshake, probe, swap); every connection in it is refused.',
        `TryActivate failed ${tried.load.failed} of ${tried.load.ok + tried.load.failed} requests (target 0); Recreate failed ${recreated.load.failed} of ${recreated.load.ok + recreated.load.failed}${recreated.load.errors.length ? ` (${recreated.load.errors.join(', ')})` : ''}.`,
        "The agent rows: the same client while the agent itself goes away. The engine runs in its own process with its fronts in the root's keeper (as `plugin-release agent` does); it is SIGKILLed and started again 2 s later (it adopts the running plugin), then a newer build starts with --takeover and the old one hands over and exits. The keeper holds the front's listening socket throughout, so no connection is refused; the max latency is the slowest request, not a gap.",
        `Agent SIGKILL: ${killed.load.failed} of ${killed.load.ok + killed.load.failed} failed; agent upgrade: ${upgraded.load.failed} of ${upgraded.load.ok + upgraded.load.failed} failed (target 0 for both).`,
      ],
      tables: [
        {
          caption: `${swaps} swaps per strategy, then the agent's SIGKILL and upgrade, same run`,
          rows: [...runs.map(row), ...agentRuns.map(agentRow)],
        },
      ],
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
        agentKillRequests: killed.load.ok + killed.load.failed,
        agentKillFailed: killed.load.failed,
        agentUpgradeRequests: upgraded.load.ok + upgraded.load.failed,
        agentUpgradeFailed: upgraded.load.failed,
      },
    };
  },
};
