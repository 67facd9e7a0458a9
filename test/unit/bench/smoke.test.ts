// Each benchmark starts and reports a well-formed result, and the pure helpers that turn engine timings
// into figures compute what they claim (figures are measured by `npm run bench`, not asserted here).
import { describe, expect, it } from 'vitest';
import { effectDurations } from '../../../bench/activation.ts';
import type { BenchResult } from '../../../bench/lib/benchmark.ts';
import { InstantEngine } from '../../../bench/lib/simulated-agents.ts';
import { summarizeRequests } from '../../../bench/rollout.ts';
import { benchmarkNames, loadBenchmark } from '../../../bench/run.ts';
import { swapWindows } from '../../../bench/swap.ts';
import type { EffectTiming } from '../../../src/agent/plugin-host.ts';
import { PluginActivationSpec } from '../../../src/api/index.ts';

/** What a benchmark's first table must hold beyond the common shape: its row labels and columns. */
const expectedReports: Record<string, { rows: (string | number)[]; columns: string[]; figures: string[] }> = {
  swap: {
    rows: [
      'TryActivate',
      'Recreate',
      'agent SIGKILL, restarted 0.5 s later',
      'agent upgrade (hand-over to a newer build)',
    ],
    columns: ['requests', 'failed', 'p50 ms', 'p99 ms', 'max ms', 'swap pause ms (median / max)'],
    figures: [
      'tryActivateFailed',
      'recreateFailed',
      'tryActivateSwapPauseMedianMs',
      'recreateP99Ms',
      'agentKillFailed',
      'agentUpgradeFailed',
    ],
  },
  activation: {
    rows: ['1 MB', '50 MB'],
    columns: ['stage ms', 'spawn + handshake ms', 'probe ms', 'swap ms', 'total ms'],
    figures: ['stage1MbMs', 'stage50MbMs', 'spawnHandshakeMs', 'probeMs', 'swapMs'],
  },
  rollout: {
    rows: ['100%', '100%', '10%', '10%'],
    columns: [
      'nodes',
      'Ready s',
      'writes / node',
      'requests / node',
      'controller CPU s',
      'controller peak RSS MB',
    ],
    figures: ['allReadySeconds', 'allWritesPerNode', 'tenPercentReadySeconds', 'realAgentsWritesPerNode'],
  },
  memory: {
    rows: [0, 100],
    columns: ['RSS MB', 'heap used MB', 'RSS after GC MB', 'heap used after GC MB', 'peak RSS MB'],
    figures: [
      'activations',
      'rssMb',
      'heapUsedMb',
      'baselineRssMb',
      'clientNodeRssMb',
      'agentRssMb',
      'keeperRssMb',
      'heapKbPerActivation',
      'slowestStartupMs',
    ],
  },
};

function expectWellFormed(name: string, result: BenchResult): void {
  expect(result.name).toBe(name);
  expect(result.tables.length).toBeGreaterThan(0);
  for (const table of result.tables) expect(table.rows.length).toBeGreaterThan(0);
  expect(Object.keys(result.figures).length).toBeGreaterThan(0);
  for (const value of Object.values(result.figures)) {
    if (typeof value === 'number') expect(Number.isFinite(value)).toBe(true);
  }
  const expected = expectedReports[name];
  if (!expected) return;
  const rows = result.tables[0]!.rows;
  expect(rows.map((r) => Object.values(r)[0])).toEqual(expected.rows);
  for (const row of rows) {
    for (const column of expected.columns) {
      expect(row).toHaveProperty([column]);
      const value = row[column];
      if (typeof value === 'number') expect(value).toBeGreaterThanOrEqual(0);
      // '-' where a row has nothing to measure in that column (the agent rows swap nothing).
      else expect(value).toMatch(/^([0-9.]+ \/ [0-9.]+|-)$/);
    }
  }
  for (const figure of expected.figures) expect(result.figures).toHaveProperty([figure]);
}

describe.each(benchmarkNames)('the %s benchmark', (name) => {
  it('runs in quick smoke mode and reports tables and figures', { timeout: 120_000 }, async () => {
    const bench = await loadBenchmark(name);
    const result = await bench.run({ quick: true, smoke: true, log: () => {} });
    expectWellFormed(name, result);
    if (name === 'rollout') {
      // Every node activation was counted: at least the controller's create and the agent's final write.
      for (const row of result.tables[0]!.rows) expect(row['writes / node']).toBeGreaterThanOrEqual(2);
      expect(Object.keys(result.files ?? {})).toEqual(['rollout-scale.svg']);
      expect(result.files?.['rollout-scale.svg']).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
    }
    if (name === 'memory') {
      // Each figure of the issue beside its target, and the agent and keeper really sampled.
      const targets = result.tables.find((t) => t.caption === 'Each figure against its target')!.rows;
      expect(targets.map((r) => r.figure)).toEqual([
        'agent RSS at rest, no plugins',
        'keeper RSS at rest, no fronts',
        'agent RSS at rest, first start (cold compile cache)',
        'controller RSS at rest, empty cluster',
        'controller RSS at rest, 100 activations',
        'plugin-release --version',
        'plugin-release --help',
        'plugin-release controller --help',
        'plugin-release agent --help',
        'plugin-release keeper --help',
      ]);
      for (const row of targets) expect(row.met).toMatch(/^(yes|NO)$/);
      expect(result.figures.agentRssMb).toBeGreaterThan(20);
      expect(result.figures.keeperRssMb).toBeGreaterThan(20);
    }
  });
});

describe('the write count of a rollout', () => {
  const cases = [
    {
      name: 'counts create, update, patch and delete as writes and every request in the total',
      given: [
        { verb: 'create', resource: 'pluginactivations', count: 10 },
        { verb: 'patch', resource: 'pluginactivations', subresource: 'status', count: 20 },
        { verb: 'update', resource: 'pluginactivations', count: 1 },
        { verb: 'delete', resource: 'pluginactivations', count: 2 },
        { verb: 'watch', resource: 'pluginactivations', count: 3 },
        { verb: 'list', resource: 'nodes', count: 1 },
      ],
      want: {
        writes: 33,
        total: 37,
        writesBy: {
          'pluginactivations create': 10,
          'pluginactivations/status patch': 20,
          'pluginactivations update': 1,
          'pluginactivations delete': 2,
        },
      },
    },
    {
      name: 'adds up one resource and verb counted under several entries',
      given: [
        { verb: 'create', resource: 'events', count: 2 },
        { verb: 'create', resource: 'events', count: 3 },
      ],
      want: { writes: 5, total: 5, writesBy: { 'events create': 5 } },
    },
    { name: 'is zero for no requests', given: [], want: { writes: 0, total: 0, writesBy: {} } },
  ];
  it.each(cases)('$name', ({ given, want }) => {
    expect(summarizeRequests(given)).toEqual(want);
  });
});

describe('the instant engine behind the simulated agents', () => {
  const spec = (revision: string) =>
    PluginActivationSpec.parse({
      release: { name: 'echo' },
      nodeName: 'node-1',
      plugin: 'echo',
      version: '1.0.0',
      revision,
      artifact: { path: '/staging/echo', digest: `sha256:${'a'.repeat(64)}` },
    });

  it('reports Staged, Probing and Active, and ends Active on the revision', async () => {
    const engine = new InstantEngine();
    const phases: (string | undefined)[] = [];
    const final = await engine.activate(spec('r1'), { onStatus: (s) => phases.push(s.phase) });
    expect(phases).toEqual(['Staged', 'Probing', 'Active']);
    expect(final).toMatchObject({ phase: 'Active', revision: 'r1', activeRevision: 'r1', attempts: 1 });
    expect(await engine.activeRevision('echo')).toBe('r1');
  });

  it('keeps the revision it replaced as the previous one', async () => {
    const engine = new InstantEngine();
    await engine.activate(spec('r1'));
    const final = await engine.activate(spec('r2'));
    expect(final).toMatchObject({ activeRevision: 'r2', previousRevision: 'r1' });
    expect(engine.activations).toBe(2);
  });
});

const at = (effect: EffectTiming['effect'], startedAt: number, endedAt: number): EffectTiming => ({
  effect,
  startedAt,
  endedAt,
  observation: 'Staged',
});

describe('the swap pause and no-backend window of one activation', () => {
  const cases: { name: string; given: EffectTiming[]; want: { pauseMs: number; gapMs: number } }[] = [
    {
      name: 'TryActivate: probe end to swap end, and no window without a backend',
      given: [
        at('Stage', 0, 5),
        at('Launch', 5, 100),
        at('Probe', 100, 120),
        at('Swap', 120, 126),
        at('Retire', 126, 200),
      ],
      want: { pauseMs: 6, gapMs: 0 },
    },
    {
      name: 'Recreate: the window opens when StopActive starts and closes when the swap ends',
      given: [
        at('Stage', 0, 5),
        at('StopActive', 5, 40),
        at('Launch', 40, 140),
        at('Probe', 140, 150),
        at('Swap', 150, 153),
      ],
      want: { pauseMs: 3, gapMs: 148 },
    },
  ];
  it.each(cases)('$name', ({ given, want }) => {
    expect(swapWindows(given)).toEqual(want);
  });

  it('refuses an activation that never swapped', () => {
    expect(() => swapWindows([at('Stage', 0, 5), at('Launch', 5, 9), at('StopCandidate', 9, 12)])).toThrow(
      /never swapped/,
    );
  });
});

describe('the phase durations of one activation', () => {
  it('gives each effect its own duration and adds up an effect performed twice', () => {
    expect(
      effectDurations([
        at('Stage', 0, 5),
        at('Launch', 5, 105),
        at('Probe', 105, 125),
        at('Probe', 130, 131),
      ]),
    ).toEqual({
      Stage: 5,
      Launch: 100,
      Probe: 21,
    });
  });
});
