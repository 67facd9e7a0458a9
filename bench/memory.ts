// Footprint at rest: the agent and its keeper as the DaemonSet runs them, the real controller (its own
// process) with every PluginActivation of a converged fleet in its caches, and the start-up time of
// each command; each figure of the build the image runs beside its target and the sources' figure
// (issue 16, docs/benchmarks.md).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { build as rolldown } from 'rolldown';
import { NODE_FLAGS } from '../bin/runtime.js';
import { type DevCluster, startDevCluster } from '../dev/cluster/index.ts';
import { type PluginRelease, PluginReleaseSpec, revisionOf } from '../src/api/index.ts';
import { desiredActivation } from '../src/controller/planner.ts';
import { createKubeClients, type KubeConfig, loadKubeConfig } from '../src/kube/index.ts';
import { ActivationWriter } from './lib/api-writer.ts';
import type { Benchmark, BenchResult } from './lib/benchmark.ts';
import { type ControllerChild, type ProcessSample, spawnController } from './lib/controller-process.ts';
import { benchRelease, inBatches, NAMESPACE, quiet, totalRequests } from './lib/fleet.ts';
import { type NodeFootprint, nodeFootprint, startupMs } from './lib/footprint.ts';
import { InstantEngine } from './lib/simulated-agents.ts';
import type { Row } from './lib/table.ts';
import { buildTree, SOURCES, type Tree } from './lib/tree.ts';

const MB = 2 ** 20;
/** Targets from issue 16 (MB of RSS, ms of wall time). */
const TARGET_RSS_MB = 200;
const TARGET = { agentRssMb: 60, controllerIdleRssMb: 100, controllerRssMb: TARGET_RSS_MB, startupMs: 300 };
/** Commands whose start-up is timed: none of them may load the Kubernetes client. */
const STARTUP_COMMANDS = [
  ['--version'],
  ['--help'],
  ['controller', '--help'],
  ['agent', '--help'],
  ['keeper', '--help'],
];
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

/** One step of a process's start-up footprint: RSS and heap after loading more modules (after GC). */
export interface FootprintStep {
  step: string;
  rssBytes: number;
  heapUsedBytes: number;
}

/**
 * What each step of importFootprint loads, in order (module specifiers from the tree's root; `@ext` is
 * the tree's extension).
 */
const FOOTPRINT_STEPS: [string, string[]][] = [
  ['node:https (TLS to the API server)', ['node:https']],
  // js-yaml waits for a kubeconfig file: the in-cluster service account needs none.
  ["client-node's KubeConfig (src/kube/loader.ts)", ['@kubernetes/client-node/dist/config.js']],
  // The tree's own imports of zod, pino and prom-client: the build carries them tree-shaken.
  ['src/api (the zod schemas, and zod)', ['./src/api/index@ext']],
  ['src/observability (pino, prom-client, the health server)', ['./src/observability/index@ext']],
  ['the agent (src/agent, src/kube)', ['./src/cli/agent@ext', './src/agent/daemon@ext']],
  ['the controller (src/controller)', ['./src/controller/manager@ext']],
];

/** The whole @kubernetes/client-node index, which src/kube loaded before the module hook. */
const CLIENT_NODE_INDEX: [string, string[]][] = [
  ['@kubernetes/client-node (index)', ['@kubernetes/client-node']],
];

/**
 * What the agent loads by design before any code of ours: TLS for the API server, client-node's
 * KubeConfig (in-cluster, so no YAML), a zod schema, a pino logger, a prom-client registry with the
 * default metrics. Measured as it is and bundled as scripts/build.ts carries dependencies.
 */
const DESIGN_FLOOR = `import 'node:https';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import pino from 'pino';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import { z } from 'zod';
const kc = new KubeConfig();
kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://10.0.0.1' }], users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
const schema = z.object({ name: z.string().min(1), port: z.int().min(1).max(65535).optional() });
const registry = new Registry();
collectDefaultMetrics({ register: registry });
new Counter({ name: 'c', help: 'h', registers: [registry] });
globalThis.floor = [kc, schema.parse({ name: 'a' }), pino({ level: 'warn' }), registry];
`;

/** DESIGN_FLOOR written into `tree` as it is and bundled (minified, tree-shaken); their specifiers. */
async function designFloor(tree: Tree): Promise<{ modules: string; bundle: string }> {
  const modules = join(tree.root, 'design-floor.mjs');
  await writeFile(modules, DESIGN_FLOOR);
  await rolldown({
    input: modules,
    platform: 'node',
    external: [/^@kubernetes\/client-node(\/|$)/, /^node:/],
    logLevel: 'warn',
    output: { file: join(tree.root, 'design-floor.bundle.mjs'), format: 'esm', minify: true },
  });
  return { modules: './design-floor.mjs', bundle: './design-floor.bundle.mjs' };
}

/**
 * Where a process's baseline goes: a fresh Node process (same binary, compile cache, module hook and
 * V8 flags as bin/plugin-release.js runs the agent with) loads `tree`'s steps in order, sampling memory
 * after a full GC at each.
 */
export async function importFootprint(
  tree: Tree,
  stepsOf: [string, string[]][] = FOOTPRINT_STEPS,
): Promise<FootprintStep[]> {
  const steps = stepsOf.map(([step, specifiers]) => [
    step,
    specifiers.map((s) => s.replace('@ext', tree.ext)),
  ]);
  const script = `
    const module = await import('node:module');
    module.enableCompileCache();
    (await import('./src/kube/loader${tree.ext}')).narrowClientNode();
    const steps = [];
    const sample = (step) => { globalThis.gc(); const m = process.memoryUsage(); steps.push({ step, rssBytes: m.rss, heapUsedBytes: m.heapUsed }); };
    sample('Node alone');
    for (const [step, specifiers] of ${JSON.stringify(steps)}) {
      for (const s of specifiers) await import(s);
      sample('+ ' + step);
    }
    process.stdout.write(JSON.stringify(steps));
  `;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...NODE_FLAGS.agent, '--expose-gc', '--input-type=module', '-e', script],
    { cwd: tree.root },
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
  tree: Tree,
  releases: number,
  log: (line: string) => void,
): Promise<RestMeasurement> {
  await quiet(cluster);
  const started = performance.now();
  const controller = await spawnController(cluster.kubeconfigPath, { tree });
  try {
    const synced = performance.now();
    await idle(cluster, controller);
    const settled = performance.now();
    const atRest = await controller.sample();
    const afterGc = await controller.sampleAfterGc();
    const stopped = await controller.stop();
    const activations = releases * cluster.nodes.length;
    log(
      `${activations} activations (${tree.name}): RSS ${(atRest.rssBytes / MB).toFixed(1)} MB at rest, heap used ${(atRest.heapUsedBytes / MB).toFixed(1)} MB`,
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

/** The agent and its keeper at rest, on a new pod (empty compile cache) and after a restart. */
interface NodeAtRest {
  cold: NodeFootprint;
  warm: NodeFootprint;
}
const START: Record<keyof NodeAtRest, string> = {
  warm: 'restart (warm compile cache)',
  cold: 'first (cold compile cache)',
};

export const benchmark: Benchmark = {
  name: 'memory',
  title: 'Footprint: agent, keeper and controller at rest, and start-up',
  async run({ quick, smoke, log }) {
    const nodes = smoke ? 100 : 1000;
    // Releases cached at each step: none (the baseline), then a converged fleet of each size.
    const steps = smoke || quick ? [0, 1] : [0, 1, 10];
    const dir = await mkdtemp(join(tmpdir(), 'bench-memory-'));
    await mkdir(join(dir, 'root'));
    let cluster: DevCluster | undefined;
    try {
      // What the image runs; the sources (what a checkout runs) beside it, except in the smoke test.
      const built = await buildTree(join(dir, 'tree'));
      const trees = smoke ? [built] : [built, SOURCES];
      const footprint = await importFootprint(built);
      const [clientNodeBefore, clientNodeFull] = await importFootprint(built, CLIENT_NODE_INDEX);
      const floor = await designFloor(built);
      const floors = [
        ...(await importFootprint(built, [['the design floor, as its modules are', [floor.modules]]])),
        ...(
          await importFootprint(built, [['the design floor, bundled as the build does', [floor.bundle]]])
        ).slice(1),
      ];
      const startup = STARTUP_COMMANDS.map((args) => ({
        args,
        ms: new Map(trees.map((t) => [t.name, startupMs(t, args, smoke ? 1 : 5)])),
      }));
      cluster = await startDevCluster({ nodes, logger: pino({ level: 'silent' }) });
      const atRest = new Map<Tree['name'], NodeAtRest>();
      for (const tree of trees) {
        // A new pod starts with an empty compile cache; a restarted agent finds the cache its first
        // start wrote. (In a checkout, the empty cache also means Node strips the TypeScript types.)
        const measureNode = () =>
          nodeFootprint(
            tree,
            cluster!.kubeconfigPath,
            cluster!.nodes[0]!.name,
            { root: join(dir, 'root'), staging: dir },
            { settleMs: smoke ? 1_000 : 10_000 },
            { NODE_COMPILE_CACHE: join(dir, `compile-cache-${tree.name}`) },
          );
        const cold = await measureNode();
        const warm = await measureNode();
        atRest.set(tree.name, { cold, warm });
        log(
          `${tree.name}: agent RSS ${(warm.agent.rssBytes / MB).toFixed(1)} MB (${(cold.agent.rssBytes / MB).toFixed(1)} MB cold), keeper RSS ${(warm.keeper.rssBytes / MB).toFixed(1)} MB (${(cold.keeper.rssBytes / MB).toFixed(1)} MB cold) at rest`,
        );
      }
      const kubeConfig = loadKubeConfig(cluster.kubeconfigPath);
      const results = new Map<Tree['name'], RestMeasurement[]>(trees.map((t) => [t.name, []]));
      let releases = 0;
      for (const step of steps) {
        const started = performance.now();
        await convergedFleet(cluster, kubeConfig, releases, step);
        if (step > releases)
          log(
            `created ${(step - releases) * nodes} activations in ${((performance.now() - started) / 1000).toFixed(1)} s`,
          );
        releases = step;
        for (const tree of trees) results.get(tree.name)!.push(await measure(cluster, tree, releases, log));
      }
      return report({
        nodes,
        smoke,
        footprint,
        clientNodeRssMb: (clientNodeFull!.rssBytes - clientNodeBefore!.rssBytes) / MB,
        floors,
        startup,
        atRest,
        results,
      });
    } finally {
      await cluster?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};

/** The tables and figures of a run: the build's, with the sources' beside them where measured. */
function report(run: {
  nodes: number;
  smoke: boolean;
  footprint: FootprintStep[];
  clientNodeRssMb: number;
  floors: FootprintStep[];
  startup: { args: string[]; ms: Map<Tree['name'], number> }[];
  atRest: Map<Tree['name'], NodeAtRest>;
  results: Map<Tree['name'], RestMeasurement[]>;
}): BenchResult {
  const { nodes, smoke, footprint, clientNodeRssMb, startup } = run;
  const built = run.results.get('build')!;
  const [baseline] = built as [RestMeasurement];
  const largest = built.at(-1)!;
  const node = run.atRest.get('build')!;
  const sources = { results: run.results.get('sources'), atRest: run.atRest.get('sources') };
  const perActivationKb = (r: RestMeasurement, bytes: (s: ProcessSample) => number) =>
    r.activations === 0 ? '—' : (bytes(r.afterGc) - bytes(baseline.afterGc)) / r.activations / 1024;
  const rows: Row[] = built.map((r) => ({
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
  const rssMb = largest.atRest.rssBytes / MB;
  const againstTarget = (
    figure: string,
    measured: number,
    ofSources: number | undefined,
    target: number,
    unit: string,
  ): Row => {
    const shown = (n: number) => `${n.toFixed(unit === 'ms' ? 0 : 1)} ${unit}`;
    return {
      figure,
      measured: shown(measured),
      sources: ofSources === undefined ? '—' : shown(ofSources),
      target: `≤ ${target} ${unit}`,
      met: measured <= target ? 'yes' : 'NO',
    };
  };
  const mb = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / MB);
  /** Each memory figure: what it reads from a tree's measurements, and its target (MB). */
  const memoryFigures: [string, (tree: Tree['name']) => number | undefined, number][] = [
    ['agent RSS at rest, no plugins', (t) => run.atRest.get(t)?.warm.agent.rssBytes, TARGET.agentRssMb],
    ['keeper RSS at rest, no fronts', (t) => run.atRest.get(t)?.warm.keeper.rssBytes, TARGET.agentRssMb],
    [
      'agent RSS at rest, first start (cold compile cache)',
      (t) => run.atRest.get(t)?.cold.agent.rssBytes,
      TARGET.agentRssMb,
    ],
    [
      'controller RSS at rest, empty cluster',
      (t) => run.results.get(t)?.[0]?.atRest.rssBytes,
      TARGET.controllerIdleRssMb,
    ],
    [
      `controller RSS at rest, ${largest.activations} activations`,
      (t) => run.results.get(t)?.at(-1)?.atRest.rssBytes,
      TARGET.controllerRssMb,
    ],
  ];
  const targets: Row[] = [
    ...memoryFigures.map(([figure, bytes, target]) =>
      againstTarget(figure, mb(bytes('build'))!, mb(bytes('sources')), target, 'MB'),
    ),
    ...startup.map(({ args, ms }) =>
      againstTarget(
        `plugin-release ${args.join(' ')}`,
        ms.get('build')!,
        ms.get('sources'),
        TARGET.startupMs,
        'ms',
      ),
    ),
  ];
  const step = (f: FootprintStep, i: number, all: FootprintStep[]) => ({
    step: f.step,
    'RSS MB': f.rssBytes / MB,
    '+ RSS MB': i === 0 ? f.rssBytes / MB : (f.rssBytes - all[i - 1]!.rssBytes) / MB,
    'heap used MB': f.heapUsedBytes / MB,
  });
  const nodeRows = [...run.atRest].flatMap(([tree, byStart]) =>
    (['agent', 'keeper'] as const).flatMap((p) =>
      (['warm', 'cold'] as const).map((start) => ({
        process: p,
        tree,
        start: START[start],
        'RSS MB': byStart[start][p].rssBytes / MB,
        'private MB': byStart[start][p].privateBytes / MB,
      })),
    ),
  );
  const sourcesFigures: Record<string, number> =
    sources.atRest && sources.results
      ? {
          sourcesAgentRssMb: Number((sources.atRest.warm.agent.rssBytes / MB).toFixed(1)),
          sourcesAgentColdRssMb: Number((sources.atRest.cold.agent.rssBytes / MB).toFixed(1)),
          sourcesBaselineRssMb: Number((sources.results[0]!.atRest.rssBytes / MB).toFixed(1)),
          sourcesRssMb: Number((sources.results.at(-1)!.atRest.rssBytes / MB).toFixed(1)),
        }
      : {};
  return {
    name: 'memory',
    title: 'Footprint: agent, keeper and controller at rest, and start-up',
    notes: [
      `"measured" is the build the image runs (scripts/build.ts: what bin/ reaches, compiled to minified JavaScript with its bundled dependencies tree-shaken, into a temporary directory at the start of the run, with the checkout's node_modules); "sources" is the same measurement of the checkout's TypeScript sources, run by Node's type stripping (—: not measured in the smoke test).`,
      `Agent and keeper: \`plugin-release keeper --run -- agent …\` as the DaemonSet runs it (the tree's bin/plugin-release.js, so with its V8 flags), for one Node of the dev cluster with no activations, sampled from /proc once both used < 0.02 CPU s per second after ${smoke ? 1 : 10} s: first with an empty compile cache (a new pod), then again with the cache that run wrote (a restart). RSS is what \`ps\` shows and includes the node binary's shared pages (about 40 MB, shared by every Node process of the machine); private is what the process alone adds.`,
      `Controller: the real controller (the tree's src/controller/manager, with the module hook of bin/, started by bench/lib/controller-child.js) in its own process, against the dev cluster with ${nodes} Nodes and a converged fleet: ${largest.releases} PluginRelease(s) of different plugins, each on every node, so ${largest.activations} PluginActivations, created as the controller creates them and with the Active status an agent leaves. Each step starts a fresh controller, waits for its caches to sync and for it to go idle (no API request and < ${IDLE_CPU_SECONDS} CPU s over ${IDLE_WINDOW_MS} ms), then samples process.memoryUsage(); "after GC" again right after a forced full GC. Per-activation figures are the difference to the baseline (no releases) after GC, divided by the activations cached.`,
      `Start-up: the median wall time of ${smoke ? 1 : 5} runs of each command, from spawn to exit (compile cache warm). The whole @kubernetes/client-node index, which src/kube loaded before, costs ${clientNodeRssMb.toFixed(0)} MB of RSS on its own (after GC); with the module hook src/kube loads its KubeConfig for ${((footprint[2]!.rssBytes - footprint[1]!.rssBytes) / MB).toFixed(0)} MB.`,
    ],
    tables: [
      { caption: 'Controller memory at rest by activations cached (the build)', rows },
      { caption: 'Each figure against its target', rows: targets },
      {
        caption:
          "Where the baseline goes: a fresh process with the agent's V8 flags loading the build of the agent and controller, after GC at each step",
        rows: footprint.map(step),
      },
      {
        caption:
          "The agent's floor: Node, TLS, client-node's KubeConfig, zod, pino and prom-client as the agent uses them, nothing of ours (same process set-up as above)",
        rows: run.floors.map((f) => ({
          step: f.step,
          'RSS MB': f.rssBytes / MB,
          'heap used MB': f.heapUsedBytes / MB,
        })),
      },
      { caption: 'The agent and its keeper at rest', rows: nodeRows },
    ],
    figures: {
      activations: largest.activations,
      rssMb: Number(rssMb.toFixed(1)),
      heapUsedMb: Number((largest.atRest.heapUsedBytes / MB).toFixed(1)),
      rssAfterGcMb: Number((largest.afterGc.rssBytes / MB).toFixed(1)),
      heapUsedAfterGcMb: Number((largest.afterGc.heapUsedBytes / MB).toFixed(1)),
      baselineRssMb: Number((baseline.atRest.rssBytes / MB).toFixed(1)),
      clientNodeRssMb: Number(clientNodeRssMb.toFixed(1)),
      floorRssMb: Number((run.floors.at(-1)!.rssBytes / MB).toFixed(1)),
      agentRssMb: Number((node.warm.agent.rssBytes / MB).toFixed(1)),
      agentPrivateMb: Number((node.warm.agent.privateBytes / MB).toFixed(1)),
      agentColdRssMb: Number((node.cold.agent.rssBytes / MB).toFixed(1)),
      keeperRssMb: Number((node.warm.keeper.rssBytes / MB).toFixed(1)),
      keeperPrivateMb: Number((node.warm.keeper.privateBytes / MB).toFixed(1)),
      heapKbPerActivation: Number(perActivationKb(largest, (s) => s.heapUsedBytes)) || 0,
      slowestStartupMs: Math.round(Math.max(...startup.map((s) => s.ms.get('build')!))),
      ...sourcesFigures,
      targetRssMb: TARGET_RSS_MB,
      targetAgentRssMb: TARGET.agentRssMb,
    },
  };
}
