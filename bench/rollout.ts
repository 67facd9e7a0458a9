// Fleet rollout scale: the real controller (its own process) rolls a PluginRelease out to N simulated
// nodes of the dev cluster, for several N and maxUnavailable; time to Ready, API writes counted by the
// server, controller CPU and peak RSS, and how each grows with N.
import { join } from 'node:path';
import pino from 'pino';
import { type RequestCount, startDevCluster } from '../dev/cluster/index.ts';
import { stageEcho } from '../dev/demo/echo.ts';
import { startLocalFleet } from '../dev/demo/fleet.ts';
import type { PluginRelease } from '../src/api/index.ts';
import { createKubeClients, loadKubeConfig } from '../src/kube/index.ts';
import type { Benchmark } from './lib/benchmark.ts';
import { spawnController } from './lib/controller-process.ts';
import { benchRelease, NAMESPACE, quiet } from './lib/fleet.ts';
import { renderLogLogSvg } from './lib/plot.ts';
import { type SimulatedAgentsStats, startSimulatedAgents } from './lib/simulated-agents.ts';
import { growthExponent } from './lib/stats.ts';
import type { Row } from './lib/table.ts';

const RELEASE = 'echo';
/** Kubernetes verbs that change state; everything else (get, list, watch) is a read. */
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** One rollout to `nodes` nodes with `maxUnavailable`, measured. */
export interface RolloutRun {
  nodes: number;
  maxUnavailable: string;
  /** Release created → Ready=True for its generation, with every node active (s). */
  seconds: number;
  /** Release created → the agents saw the last activation the controller created (s). */
  lastCreateSeconds: number;
  /** Server-side counts from just before the create until the API server was quiet after Ready. */
  requests: RequestCount[];
  controllerCpuSeconds: number;
  controllerPeakRssBytes: number;
  /** Connections the controller opened over the same span. */
  controllerConnections: number;
  /** CPU of the benchmark process (in-process API server + simulated agents) over the same span (s). */
  apiServerAndAgentsCpuSeconds: number;
  agents: SimulatedAgentsStats;
}

/** Writes the controller made in a run: all but the agents' activation status patches. */
function controllerWrites(run: RolloutRun): number {
  const { writes, writesBy } = summarizeRequests(run.requests);
  return (
    writes - (writesBy['pluginactivations/status patch'] ?? 0) - (writesBy['pluginreleases create'] ?? 0)
  );
}

/** Nodes, writes per node and the agents' activation status patches per node, for the calibration table. */
function writesRow(requests: readonly RequestCount[], nodes: number): Row {
  const { writes, writesBy } = summarizeRequests(requests);
  return {
    nodes,
    'writes / node': writes / nodes,
    'activation status patches / node': (writesBy['pluginactivations/status patch'] ?? 0) / nodes,
  };
}

/** Writes and all requests in `counts`, and writes by `resource[/subresource] verb`. */
export function summarizeRequests(counts: readonly RequestCount[]): {
  writes: number;
  total: number;
  writesBy: Record<string, number>;
} {
  let writes = 0;
  let total = 0;
  const writesBy: Record<string, number> = {};
  for (const c of counts) {
    total += c.count;
    if (!WRITE_VERBS.has(c.verb)) continue;
    writes += c.count;
    const label = `${c.resource}${c.subresource ? `/${c.subresource}` : ''} ${c.verb}`;
    writesBy[label] = (writesBy[label] ?? 0) + c.count;
  }
  return { writes, total, writesBy };
}

function isReady(release: PluginRelease | undefined, nodes: number): boolean {
  if (!release?.status) return false;
  const ready = release.status.conditions?.find((c) => c.type === 'Ready');
  return (
    release.status.observedGeneration === release.metadata.generation &&
    ready?.status === 'True' &&
    release.status.ready === `${nodes}/${nodes}`
  );
}

export async function runRollout(
  nodes: number,
  maxUnavailable: string,
  log: (line: string) => void,
): Promise<RolloutRun> {
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const cluster = await startDevCluster({
    nodes,
    // Room for every event of the rollout, so no watch falls behind the history into 410 Gone.
    watchHistory: Math.max(10_000, nodes * 8),
    logger: pino({ level: 'silent' }),
  });
  try {
    const kubeConfig = loadKubeConfig(cluster.kubeconfigPath);
    const clients = createKubeClients(kubeConfig, { fieldManager: 'bench-rollout' });
    const agents = await startSimulatedAgents({ kubeConfig, logger });
    const controller = await spawnController(cluster.kubeconfigPath);
    const releases = clients.informer(clients.releases, { namespace: NAMESPACE, logger });
    try {
      releases.start();
      await releases.waitForSync();
      let resolveReady: () => void = () => {};
      const ready = new Promise<void>((resolve) => {
        resolveReady = resolve;
      });
      releases.on({
        add: (r) => isReady(r, nodes) && resolveReady(),
        update: (_, r) => isReady(r, nodes) && resolveReady(),
      });

      await quiet(cluster);
      cluster.resetRequestCounts();
      const before = await controller.sample();
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      await clients.releases.create(benchRelease(RELEASE, 'echo', maxUnavailable));
      const timeoutMs = 240_000;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const r = releases.get(`${NAMESPACE}/${RELEASE}`);
            reject(
              new Error(
                `${nodes} nodes, maxUnavailable ${maxUnavailable}: not Ready in ${timeoutMs / 1000} s (ready ${r?.status?.ready}, phase ${r?.status?.phase})\n${controller.stderrTail()}`,
              ),
            );
          }, timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
      const seconds = (performance.now() - started) / 1000;
      const after = await controller.sample();
      await quiet(cluster);
      const cpu = process.cpuUsage(cpuBefore);
      const requests = cluster.requestCounts();
      const stopped = await controller.stop();
      const run: RolloutRun = {
        nodes,
        maxUnavailable,
        seconds,
        lastCreateSeconds: ((agents.stats().lastAddedAt ?? Number.NaN) - started) / 1000,
        requests,
        controllerCpuSeconds: after.cpuSeconds - before.cpuSeconds,
        controllerPeakRssBytes: stopped.maxRssBytes,
        controllerConnections: after.connections - before.connections,
        apiServerAndAgentsCpuSeconds: (cpu.user + cpu.system) / 1e6,
        agents: agents.stats(),
      };
      const { writes } = summarizeRequests(requests);
      log(
        `${nodes} nodes, maxUnavailable ${maxUnavailable}: Ready in ${seconds.toFixed(2)} s, ${(writes / nodes).toFixed(2)} writes/node, controller ${run.controllerCpuSeconds.toFixed(2)} CPU s`,
      );
      return run;
    } finally {
      await releases.stop();
      await controller.stop().catch(() => undefined);
      await agents.stop();
    }
  } finally {
    await cluster.stop();
  }
}

/** Writes per node of one rollout to `nodes` real agents running the example echo plugin. */
export interface RealAgentsRun {
  nodes: number;
  seconds: number;
  requests: RequestCount[];
}

/**
 * The same first install on a few real agents (src/agent/daemon.ts, real echo plugin processes,
 * post-swap verification 1 s) and an in-process controller: what the simulator leaves out. A real
 * engine's phases are spread out in time, so the agent's status reporter writes more of them.
 */
export async function runRealAgents(nodes: number, log: (line: string) => void): Promise<RealAgentsRun> {
  const fleet = await startLocalFleet({ nodes, logger: pino({ level: 'silent' }) });
  try {
    const artifact = await stageEcho(join(fleet.stagingRoot, 'echo', '1.0.0'), '1.0.0');
    const cluster = fleet.cluster!;
    await quiet(cluster);
    cluster.resetRequestCounts();
    const manifest = benchRelease(RELEASE, 'echo', '100%');
    manifest.spec = {
      ...manifest.spec,
      artifact: { path: artifact.path, digest: artifact.digest, entrypoint: 'plugin' },
      activation: { drainSeconds: 1, verifySeconds: 1 },
    } as PluginRelease['spec'];
    const started = performance.now();
    await fleet.clients.releases.create(manifest);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const release = await fleet.clients.releases.get({ namespace: NAMESPACE, name: RELEASE });
      if (isReady(release, nodes)) break;
      if (Date.now() > deadline || release.status?.phase === 'Stalled')
        throw new Error(
          `${nodes} real agents: not Ready (${release.status?.phase}, ${release.status?.ready})`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    await quiet(cluster, 1500);
    // The polling GETs above are the benchmark's, not the fleet's.
    const requests = cluster
      .requestCounts()
      .filter((c) => !(c.verb === 'get' && c.resource === 'pluginreleases'));
    log(
      `${nodes} real agents: Ready in ${seconds.toFixed(2)} s, ${(summarizeRequests(requests).writes / nodes).toFixed(2)} writes/node`,
    );
    return { nodes, seconds, requests };
  } finally {
    await fleet.stop();
  }
}

const mb = (bytes: number) => bytes / 2 ** 20;

export const benchmark: Benchmark = {
  name: 'rollout',
  title: 'Fleet rollout scale',
  async run({ quick, smoke, log }) {
    // Two sizes even in smoke mode, so every growth exponent is defined.
    const fleet = smoke ? [5, 10] : quick ? [10, 100] : [10, 100, 1000, 5000];
    const budgets = ['100%', '10%'];
    const runs: RolloutRun[] = [];
    for (const maxUnavailable of budgets)
      for (const nodes of fleet) runs.push(await runRollout(nodes, maxUnavailable, log));
    const real = await runRealAgents(3, log);

    const at = (b: string, n: number) => runs.find((r) => r.maxUnavailable === b && r.nodes === n)!;
    const rows: Row[] = runs.map((r) => {
      const { writes, total } = summarizeRequests(r.requests);
      return {
        maxUnavailable: r.maxUnavailable,
        nodes: r.nodes,
        'Ready s': r.seconds,
        'ms / node': (r.seconds * 1000) / r.nodes,
        'last create s': r.lastCreateSeconds,
        'writes / node': writes / r.nodes,
        'requests / node': total / r.nodes,
        'controller CPU s': r.controllerCpuSeconds,
        'CPU ms / node': (r.controllerCpuSeconds * 1000) / r.nodes,
        'controller peak RSS MB': mb(r.controllerPeakRssBytes),
        'controller connections / write': r.controllerConnections / Math.max(1, controllerWrites(r)),
        'API server + agents CPU s': r.apiServerAndAgentsCpuSeconds,
        'repeated activations': r.agents.activations - r.nodes,
      };
    });
    const labels = [
      ...new Set(runs.flatMap((r) => Object.keys(summarizeRequests(r.requests).writesBy))),
    ].sort();
    const breakdown: Row[] = runs.map((r) => {
      const { writesBy } = summarizeRequests(r.requests);
      return {
        maxUnavailable: r.maxUnavailable,
        nodes: r.nodes,
        ...Object.fromEntries(labels.map((l) => [l, (writesBy[l] ?? 0) / r.nodes])),
      };
    });
    const realSummary = summarizeRequests(real.requests);
    const calibration: Row[] = [
      { agents: 'simulated (instant engine)', ...writesRow(at('100%', fleet[0]!).requests, fleet[0]!) },
      { agents: 'real (echo plugin processes)', ...writesRow(real.requests, real.nodes) },
    ];
    const growth: Row[] = budgets.map((b) => {
      const of = (y: (r: RolloutRun) => number) =>
        growthExponent(runs.filter((r) => r.maxUnavailable === b).map((r) => ({ x: r.nodes, y: y(r) })));
      return {
        maxUnavailable: b,
        'Ready time': of((r) => r.seconds),
        writes: of((r) => summarizeRequests(r.requests).writes),
        'controller CPU': of((r) => r.controllerCpuSeconds),
        'controller peak RSS': of((r) => r.controllerPeakRssBytes),
      };
    });

    const largest = Math.max(...fleet);
    const figures: Record<string, number> = { largestFleet: largest };
    for (const b of budgets) {
      const key = b === '100%' ? 'all' : 'tenPercent';
      const r = at(b, largest);
      figures[`${key}ReadySeconds`] = Number(r.seconds.toFixed(2));
      figures[`${key}WritesPerNode`] = Number((summarizeRequests(r.requests).writes / r.nodes).toFixed(2));
      figures[`${key}ControllerCpuSeconds`] = Number(r.controllerCpuSeconds.toFixed(2));
      figures[`${key}ControllerPeakRssMb`] = Number(mb(r.controllerPeakRssBytes).toFixed(1));
    }
    figures.maxWritesPerNode = Number(
      Math.max(...runs.map((r) => summarizeRequests(r.requests).writes / r.nodes)).toFixed(2),
    );
    figures.realAgentsWritesPerNode = Number((realSummary.writes / real.nodes).toFixed(2));
    figures.readyTimeGrowthExponent = Number(
      growthExponent(
        runs.filter((r) => r.maxUnavailable === '100%').map((r) => ({ x: r.nodes, y: r.seconds })),
      ).toFixed(2),
    );

    const biggest = at('100%', largest);
    const biggestConnections = biggest.controllerConnections / Math.max(1, controllerWrites(biggest));
    const svg = renderLogLogSvg(
      'Rollout time to Ready vs node count',
      'nodes (simulated agents)',
      'seconds to Ready',
      budgets.map((b) => ({
        label: `maxUnavailable ${b}`,
        points: runs.filter((r) => r.maxUnavailable === b).map((r) => ({ x: r.nodes, y: r.seconds })),
      })),
    );
    return {
      name: 'rollout',
      title: 'Fleet rollout scale',
      notes: [
        "SIMULATED AGENTS. The nodes are Node objects of the in-process dev cluster; their agents are simulated: one process-wide informer over all PluginActivations (a real fleet has one watch per node) hands each activation to the real agent binding (src/agent/binding.ts) of the node it names, which runs it on an instant fake engine (no plugin processes, no files) reporting Staged, Probing and Active through the binding's own status reporter. Its status writes are the merge patches of the status subresource a real agent makes, sent over keep-alive connections (N agents' TLS handshakes would land on N machines, not in this process). 'repeated activations' counts attempts the binding ran twice (it must stay 0).",
        'The real controller runs in its own process (src/controller/manager.ts, 4 workers). Each run starts a fresh dev cluster with N Nodes, creates one PluginRelease (a first install) and waits until it is Ready=True with N/N nodes active.',
        `Writes and requests are counted by the API server from the create until it has been idle for 300 ms after Ready, then divided by N. Writes are create/update/patch/delete: activations created by the controller, activation status patches by the agents, release status patches, Events. Requests add the reads; the simulator lists and watches once, where a real fleet makes about 2 more reads per node when its agents start. Target: ≤ 4 writes per node activation; the largest fleet took ${figures.allWritesPerNode} (maxUnavailable 100%) and ${figures.tenPercentWritesPerNode} (10%).`,
        `Simulated agents write 2 status patches per activation (the instant engine's phases coalesce); ${real.nodes} real agents running the example echo plugin wrote ${(calibration[1]!['activation status patches / node'] as number).toFixed(2)} per activation, ${figures.realAgentsWritesPerNode} writes per node in all (last table), because a real engine's phases are far enough apart for each to be written.`,
        "Controller CPU is the controller process's user + system CPU over the same span; its peak RSS is its resident high-water mark (VmHWM) over its whole life (start, list of N Nodes, rollout); connections / write counts the connections its HTTP client opened per write it made (1 means a new connection for every call). The API server and the simulated agents share the benchmark process and their CPU is reported too: on 2 cores they compete with the controller.",
        `Last create is when the simulated agents' informer saw the last activation the controller created. At ${largest} nodes and maxUnavailable 100% that was ${biggest.lastCreateSeconds.toFixed(1)} s of the ${biggest.seconds.toFixed(1)} s to Ready: creating the activations is most of a rollout${biggestConnections >= 0.95 ? ", and the controller's HTTP client opened a new connection for every write it made" : ''}.`,
        'Growth exponents are least-squares slopes of log(y) on log(N): 1 is linear, below 1 sub-linear.',
      ],
      tables: [
        { caption: 'Rollout to N simulated nodes (first install)', rows },
        { caption: 'Writes per node by resource and verb', rows: breakdown },
        { caption: 'Growth with N (log-log slope)', rows: growth },
        {
          caption: `Writes per node: simulated vs ${real.nodes} real agents (maxUnavailable 100%, first install)`,
          rows: calibration,
        },
      ],
      figures,
      files: { 'rollout-scale.svg': svg },
    };
  },
};
