// Controller memory at rest: the real controller (its own process) with every PluginActivation of a
// converged fleet in its caches, idle; RSS and heap, against the same controller with none cached.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { type PluginRelease, PluginReleaseSpec, revisionOf } from '../src/api/index.ts';
import { desiredActivation } from '../src/controller/planner.ts';
import { type DevCluster, startDevCluster } from '../src/devcluster/index.ts';
import { createKubeClients, type KubeConfig, loadKubeConfig } from '../src/kube/index.ts';
import { ActivationWriter } from './lib/api-writer.ts';
import type { Benchmark } from './lib/benchmark.ts';
import { type ControllerChild, type ProcessSample, spawnController } from './lib/controller-process.ts';
import { benchRelease, inBatches, NAMESPACE, quiet, totalRequests } from './lib/fleet.ts';
import { InstantEngine } from './lib/simulated-agents.ts';
import type { Row } from './lib/table.ts';

const MB = 2 ** 20;
/** RSS target from the issue. */
const TARGET_RSS_MB = 200;
/** Idle: over this window the controller used less than IDLE_CPU_SECONDS and nobody called the API. */
const IDLE_WINDOW_MS = 1000;
const IDLE_CPU_SECONDS = 0.02;

/** The controller measured at rest with `activations` cached. */
export interface RestMeasurement {
  releases: number;
  activations: number;
  /** Controller start → caches synced (s). */
  syncSeconds: number;
  /** Caches synced → idle (s): its first reconciles of every release. */
  settleSeconds: number;
  atRest: ProcessSample;
  afterGc: ProcessSample;
  /** Peak RSS over the controller's life (start, list, first reconciles). */
  peakRssBytes: number;
}

/**
 * Creates `releases` releases (plugin-1…, each on every node) and their activations as a converged
 * fleet leaves them: created as the controller creates them (desiredActivation), status Active as the
 * agent reports it. Returns how many activations exist afterwards.
 */
async function convergedFleet(
  cluster: DevCluster,
  kubeConfig: KubeConfig,
  from: number,
  to: number,
): Promise<void> {
  const clients = createKubeClients(kubeConfig, { fieldManager: 'bench-memory' });
  const writer = await ActivationWriter.create(kubeConfig, 32, 'bench-memory');
  try {
    for (let i = from + 1; i <= to; i++) {
      const created = await clients.releases.create(benchRelease(`plugin-${i}`, `plugin-${i}`, '100%'));
      const release: PluginRelease = { ...created, spec: PluginReleaseSpec.parse(created.spec) };
      const revision = revisionOf(release.spec);
      const now = new Date();
      await inBatches(cluster.nodes, 32, async (node) => {
        const activation = await writer.create(
          desiredActivation(release, revision, node.name, undefined, now),
        );
        // The status the agent's final write leaves (engine status + observedGeneration).
        const status = await new InstantEngine().activate(activation.spec);
        await writer.patchStatus(NAMESPACE, activation.metadata.name ?? '', {
          status: { ...status, observedGeneration: activation.metadata.generation ?? 1 },
        });
      });
    }
  } finally {
    writer.close();
  }
}

/** One step of the controller's start-up footprint: RSS and heap after loading more modules (after GC). */
export interface FootprintStep {
  step: string;
  rssBytes: number;
  heapUsedBytes: number;
}

/**
 * Where an idle controller's baseline goes: a fresh Node process (same binary) loads, in order,
 * client-node, a first TypeScript module (type stripping) and the controller's modules, sampling
 * memory after a full GC at each step.
 */
export async function importFootprint(): Promise<FootprintStep[]> {
  const script = `
    const steps = [];
    const sample = (step) => { globalThis.gc(); const m = process.memoryUsage(); steps.push({ step, rssBytes: m.rss, heapUsedBytes: m.heapUsed }); };
    sample('Node alone');
    await import('@kubernetes/client-node');
    sample('+ @kubernetes/client-node');
    await import('./src/runtime/reconcile.ts');
    sample('+ type stripping (a first .ts module)');
    await import('./src/controller/manager.ts');
    sample('+ the controller (src/, pino, prom-client, zod, …)');
    process.stdout.write(JSON.stringify(steps));
  `;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', '--input-type=module', '-e', script],
    { cwd: join(import.meta.dirname, '..') },
  );
  return JSON.parse(stdout) as FootprintStep[];
}

/** Waits until the controller is idle: no API requests and (almost) no CPU over IDLE_WINDOW_MS. */
async function idle(cluster: DevCluster, controller: ControllerChild, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = await controller.sample();
  let requests = totalRequests(cluster);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
    const now = await controller.sample();
    const nowRequests = totalRequests(cluster);
    if (now.cpuSeconds - last.cpuSeconds < IDLE_CPU_SECONDS && nowRequests === requests) return;
    last = now;
    requests = nowRequests;
  }
  throw new Error(`the controller was not idle within ${timeoutMs / 1000} s:\n${controller.stderrTail()}`);
}

async function measure(
  cluster: DevCluster,
  releases: number,
  log: (line: string) => void,
): Promise<RestMeasurement> {
  await quiet(cluster);
  const started = performance.now();
  const controller = await spawnController(cluster.kubeconfigPath);
  try {
    const synced = performance.now();
    await idle(cluster, controller);
    const settled = performance.now();
    const atRest = await controller.sample();
    const afterGc = await controller.sampleAfterGc();
    const stopped = await controller.stop();
    const activations = releases * cluster.nodes.length;
    log(
      `${activations} activations: RSS ${(atRest.rssBytes / MB).toFixed(1)} MB at rest, heap used ${(atRest.heapUsedBytes / MB).toFixed(1)} MB`,
    );
    return {
      releases,
      activations,
      syncSeconds: (synced - started) / 1000,
      settleSeconds: (settled - synced) / 1000,
      atRest,
      afterGc,
      peakRssBytes: stopped.maxRssBytes,
    };
  } finally {
    await controller.stop().catch(() => undefined);
  }
}

export const benchmark: Benchmark = {
  name: 'memory',
  title: 'Controller memory at rest',
  async run({ quick, smoke, log }) {
    const nodes = smoke ? 100 : 1000;
    // Releases cached at each step: none (the baseline), then a converged fleet of each size.
    const steps = smoke || quick ? [0, 1] : [0, 1, 10];
    const footprint = await importFootprint();
    const cluster = await startDevCluster({ nodes, logger: pino({ level: 'silent' }) });
    const results: RestMeasurement[] = [];
    try {
      const kubeConfig = loadKubeConfig(cluster.kubeconfigPath);
      let releases = 0;
      for (const step of steps) {
        const started = performance.now();
        await convergedFleet(cluster, kubeConfig, releases, step);
        if (step > releases)
          log(
            `created ${(step - releases) * nodes} activations in ${((performance.now() - started) / 1000).toFixed(1)} s`,
          );
        releases = step;
        results.push(await measure(cluster, releases, log));
      }
    } finally {
      await cluster.stop();
    }

    const [baseline] = results as [RestMeasurement];
    const perActivationKb = (r: RestMeasurement, bytes: (s: ProcessSample) => number) =>
      r.activations === 0 ? '—' : (bytes(r.afterGc) - bytes(baseline.afterGc)) / r.activations / 1024;
    const rows: Row[] = results.map((r) => ({
      activations: r.activations,
      releases: r.releases,
      'RSS MB': r.atRest.rssBytes / MB,
      'heap used MB': r.atRest.heapUsedBytes / MB,
      'RSS after GC MB': r.afterGc.rssBytes / MB,
      'heap used after GC MB': r.afterGc.heapUsedBytes / MB,
      'heap total after GC MB': r.afterGc.heapTotalBytes / MB,
      'external MB': r.afterGc.externalBytes / MB,
      'peak RSS MB': r.peakRssBytes / MB,
      'heap KB / activation': perActivationKb(r, (s) => s.heapUsedBytes),
      'RSS KB / activation': perActivationKb(r, (s) => s.rssBytes),
      'sync s': r.syncSeconds,
      'settle s': r.settleSeconds,
    }));
    const largest = results.at(-1)!;
    const rssMb = largest.atRest.rssBytes / MB;
    return {
      name: 'memory',
      title: 'Controller memory at rest',
      notes: [
        `The real controller (src/controller/manager.ts) in its own process, against the dev cluster with ${nodes} Nodes and a converged fleet: ${largest.releases} PluginRelease(s) of different plugins, each on every node, so ${largest.activations} PluginActivations, created as the controller creates them and with the Active status an agent leaves. Each step starts a fresh controller, waits for its caches to sync (list of every Node, release and activation) and for it to go idle (its first reconcile of each release patches that release's status; then no API request and < ${IDLE_CPU_SECONDS} CPU s over ${IDLE_WINDOW_MS} ms), then samples process.memoryUsage().`,
        'RSS and heap used are taken at rest as they are; "after GC" is sampled again right after a forced full garbage collection (--expose-gc), which shows what the caches retain. Per-activation figures are the difference to the baseline (no releases, no activations) after GC, divided by the activations cached.',
        `At rest with ${largest.activations} activations cached: RSS ${rssMb.toFixed(0)} MB (target < ${TARGET_RSS_MB} MB), of which the caches retain ${((largest.afterGc.heapUsedBytes - baseline.afterGc.heapUsedBytes) / MB).toFixed(0)} MB of heap (${((largest.afterGc.heapUsedBytes - baseline.afterGc.heapUsedBytes) / Math.max(1, largest.activations) / 1024).toFixed(1)} KB per activation); the rest is the baseline and heap the process grew while listing and keeps. The baseline controller with nothing cached already takes ${(baseline.atRest.rssBytes / MB).toFixed(0)} MB, ${((footprint[1]!.rssBytes - footprint[0]!.rssBytes) / MB).toFixed(0)} MB of it for loading @kubernetes/client-node (second table).`,
      ],
      tables: [
        { caption: 'Controller memory at rest by activations cached', rows },
        {
          caption: 'Where the baseline goes: a fresh process loading the controller, after GC at each step',
          rows: footprint.map((f, i) => ({
            step: f.step,
            'RSS MB': f.rssBytes / MB,
            '+ RSS MB': i === 0 ? f.rssBytes / MB : (f.rssBytes - footprint[i - 1]!.rssBytes) / MB,
            'heap used MB': f.heapUsedBytes / MB,
          })),
        },
      ],
      figures: {
        activations: largest.activations,
        rssMb: Number(rssMb.toFixed(1)),
        heapUsedMb: Number((largest.atRest.heapUsedBytes / MB).toFixed(1)),
        rssAfterGcMb: Number((largest.afterGc.rssBytes / MB).toFixed(1)),
        heapUsedAfterGcMb: Number((largest.afterGc.heapUsedBytes / MB).toFixed(1)),
        baselineRssMb: Number((baseline.atRest.rssBytes / MB).toFixed(1)),
        clientNodeRssMb: Number(
          ((footprint[1]?.rssBytes ?? Number.NaN) / MB - (footprint[0]?.rssBytes ?? Number.NaN) / MB).toFixed(
            1,
          ),
        ),
        targetRssMb: TARGET_RSS_MB,
      },
    };
  },
};
