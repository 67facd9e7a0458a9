// Release status aggregation: kstatus conditions per verdict, counts, history and Events.
import { describe, expect, it } from 'vitest';
import type { Condition, PluginRelease, PluginReleaseStatus } from '../../../src/api/index.ts';
import type { NodeState, Plan, Verdict } from '../../../src/controller/planner.ts';
import { releaseStatus } from '../../../src/controller/status.ts';
import { aRelease, parsedRelease } from '../../support/builders.ts';

const NOW = new Date('2026-11-23T12:00:00.000Z');
const release = parsedRelease(aRelease());

function aPlan(verdict: Verdict, nodes: NodeState[] = []): Plan {
  return {
    revision: 'abc123abc123',
    targets: nodes.map((n) => n.node),
    nodes,
    verdict,
    create: [],
    update: [],
    delete: [],
  };
}

const activation = {} as never;
const REVISION = 'abc123abc123';
const done = (node: string): NodeState => ({
  kind: 'done',
  node,
  activation: {
    spec: { dryRun: false },
    status: { lastTransitionTime: NOW.toISOString(), activeRevision: REVISION },
  } as never,
});
const rolledBack = (node: string): NodeState => ({
  kind: 'failed',
  node,
  activation,
  failure: {
    node,
    revision: 'abc123abc123',
    phase: 'RolledBack',
    reason: 'ProbeFailed',
    message: 'probe failed',
  },
});
const inFlight = (node: string): NodeState => ({ kind: 'inFlight', node, activation, phase: 'Probing' });

const statusOf = (conditions: Condition[] | undefined, type: string) =>
  conditions?.find((c) => c.type === type)?.status;
const reasonOf = (conditions: Condition[] | undefined, type: string) =>
  conditions?.find((c) => c.type === type)?.reason;

const dryRun = parsedRelease(aRelease().withSpec({ dryRun: true }));
const probed = (node: string): NodeState => ({
  kind: 'done',
  node,
  activation: { spec: { dryRun: true }, status: { phase: 'Probed' } } as never,
});

/**
 * A status in one line: `phase/history outcome READY Ready=status(reason)`, then Reconciling and
 * Stalled when present (kstatus: at most one of them).
 */
function summary(status: PluginReleaseStatus): string {
  const c = status.conditions;
  const extra = ['Reconciling', 'Stalled'].flatMap((t) =>
    statusOf(c, t) ? [` ${t}=${statusOf(c, t)}`] : [],
  );
  return `${status.phase}/${status.history?.[0]?.outcome} ${status.ready} Ready=${statusOf(c, 'Ready')}(${reasonOf(c, 'Ready')})${extra.join('')}`;
}

const cases: { name: string; release?: PluginRelease; plan: Plan; want: string }[] = [
  {
    name: 'a rollout in progress is Reconciling and not Ready',
    plan: aPlan({ kind: 'progressing' }, [done('node-1'), inFlight('node-2')]),
    want: 'Progressing/Progressing 1/2 Ready=False(RolloutProgressing) Reconciling=True',
  },
  {
    name: 'a complete rollout is Ready with neither Reconciling nor Stalled',
    plan: aPlan({ kind: 'complete' }, [done('node-1'), done('node-2')]),
    want: 'Ready/Complete 2/2 Ready=True(RolloutComplete)',
  },
  {
    name: 'a halted rollout is Stalled',
    plan: aPlan({ kind: 'halted' }, [rolledBack('node-1'), done('node-2')]),
    want: 'Stalled/Halted 1/2 Ready=False(RolloutHalted) Stalled=True',
  },
  {
    name: 'a canary pause keeps Reconciling with its own reason',
    plan: aPlan({ kind: 'paused', byCanary: true }, [done('node-1'), inFlight('node-2')]),
    want: 'Paused/Progressing 1/2 Ready=False(CanaryPaused) Reconciling=True',
  },
  {
    name: 'a conflict with an older release is Stalled',
    plan: aPlan({ kind: 'conflict', winner: 'default/echo-a', nodes: ['node-1'] }),
    want: 'Stalled/Halted 0/0 Ready=False(PluginConflict) Stalled=True',
  },
  {
    name: 'a release no node matches waits, Reconciling',
    plan: aPlan({ kind: 'noNodes' }),
    want: 'Pending/Progressing 0/0 Ready=False(NoMatchingNodes) Reconciling=True',
  },
  {
    name: 'a paused rollout keeps Reconciling with its own reason',
    plan: aPlan({ kind: 'paused', byCanary: false }, [done('node-1'), inFlight('node-2')]),
    want: 'Paused/Progressing 1/2 Ready=False(RolloutPaused) Reconciling=True',
  },
  {
    name: 'a fleet rollback is Stalled, and RolledBack in history',
    plan: aPlan({ kind: 'rollingBackFleet' }, [rolledBack('node-1'), done('node-2')]),
    want: 'Stalled/RolledBack 1/2 Ready=False(FleetRolledBack) Stalled=True',
  },
  {
    name: 'an aborted rollout is Stalled, and Aborted in history',
    plan: aPlan({ kind: 'aborted' }, [done('node-1')]),
    want: 'Stalled/Aborted 1/1 Ready=False(RolloutAborted) Stalled=True',
  },
  {
    name: 'a dry run in progress is Reconciling with the dry-run reason',
    release: dryRun,
    plan: aPlan({ kind: 'progressing' }, [probed('node-1'), inFlight('node-2')]),
    want: 'Progressing/Progressing 0/2 Ready=False(DryRunProgressing) Reconciling=True',
  },
  {
    name: 'a dry run that passed everywhere is Probed, in phase and in history',
    release: dryRun,
    plan: aPlan({ kind: 'complete' }, [probed('node-1')]),
    want: 'Probed/Probed 0/1 Ready=True(DryRunPassed)',
  },
  {
    name: 'a dry run that failed is Stalled, and Probed in history',
    release: dryRun,
    plan: aPlan({ kind: 'halted' }, [rolledBack('node-1'), probed('node-2')]),
    want: 'Stalled/Probed 0/2 Ready=False(DryRunFailed) Stalled=True',
  },
];

describe('releaseStatus', () => {
  it.each(cases)('$name', ({ release: given = release, plan, want }) => {
    const { status } = releaseStatus(given, plan, NOW);
    expect(summary(status)).toBe(want);
    expect(status.observedGeneration).toBe(1);
  });

  it('counts a node whose active plugin is down (PluginDown) as active but not ready', () => {
    const down: NodeState = {
      kind: 'done',
      node: 'node-2',
      activation: {
        spec: { dryRun: false },
        status: {
          lastTransitionTime: NOW.toISOString(),
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              reason: 'PluginDown',
              message: 'down',
              lastTransitionTime: NOW.toISOString(),
            },
          ],
        },
      } as never,
    };
    const { status } = releaseStatus(release, aPlan({ kind: 'complete' }, [done('node-1'), down]), NOW);
    expect(status.ready).toBe('1/2');
    expect(status.nodes).toMatchObject({ active: 2, unavailable: 1 });
  });

  it('lists the failed nodes with their reasons and sets RolledBack', () => {
    const { status } = releaseStatus(release, aPlan({ kind: 'halted' }, [rolledBack('node-1')]), NOW);
    expect(status.failedNodes).toEqual([expect.objectContaining({ node: 'node-1', reason: 'ProbeFailed' })]);
    expect(reasonOf(status.conditions, 'RolledBack')).toBe('NodeRolledBack');
  });

  it('opens a history entry for a new revision and supersedes the open one', () => {
    const before: PluginRelease = {
      ...release,
      status: {
        history: [
          { revision: 'old', version: '0.9.0', outcome: 'Progressing', startedAt: NOW.toISOString() },
        ],
      },
    };
    const { status, events } = releaseStatus(
      before,
      aPlan({ kind: 'progressing' }, [inFlight('node-1')]),
      NOW,
    );
    expect(status.history?.map((h) => [h.revision, h.outcome])).toEqual([
      ['abc123abc123', 'Progressing'],
      ['old', 'Superseded'],
    ]);
    expect(events.map((e) => e.reason)).toContain('RolloutStarted');
  });

  it('records one event per newly failed node and one when the rollout halts', () => {
    const { events } = releaseStatus(release, aPlan({ kind: 'halted' }, [rolledBack('node-1')]), NOW);
    expect(events.map((e) => `${e.type}/${e.reason}`)).toEqual([
      'Normal/RolloutStarted',
      'Warning/NodeRolledBack',
      'Warning/RolloutHalted',
    ]);
  });

  it('records nothing when nothing changed', () => {
    const plan = aPlan({ kind: 'complete' }, [done('node-1')]);
    const first = releaseStatus(release, plan, NOW);
    const again = releaseStatus({ ...release, status: first.status }, plan, new Date(NOW.getTime() + 5000));
    expect(again.events).toEqual([]);
    expect(again.status).toEqual(first.status);
  });

  describe('counts what serves', () => {
    const serving = (revision: string | undefined) =>
      ({
        metadata: { generation: 1 },
        spec: { dryRun: false },
        status: {
          observedGeneration: 1,
          phase: 'Active',
          ...(revision ? { activeRevision: revision } : {}),
        },
      }) as never;
    const failedOn = (node: string, revision: string | undefined): NodeState => ({
      ...(rolledBack(node) as NodeState & { kind: 'failed' }),
      activation: serving(revision),
    });
    const untouched = (node: string): NodeState => ({ kind: 'outdated', node, activation: serving('old') });

    it('shows a halted release as READY on every node that still serves the previous version', () => {
      const plan = aPlan({ kind: 'halted' }, [
        failedOn('node-1', 'old'),
        untouched('node-2'),
        untouched('node-3'),
      ]);
      const { status } = releaseStatus(release, plan, NOW);
      expect(status.ready).toBe('3/3');
      expect(status.nodes).toMatchObject({ serving: 3, upToDate: 0, active: 2, rolledBack: 1, pending: 0 });
      expect(status.conditions?.find((c) => c.type === 'Stalled')?.message).toMatch(
        /The previous version keeps serving there\./,
      );
    });

    it('does not claim a previous version serves where a first install failed', () => {
      const { status } = releaseStatus(
        release,
        aPlan({ kind: 'halted' }, [failedOn('node-1', undefined)]),
        NOW,
      );
      const message = status.conditions?.find((c) => c.type === 'Stalled')?.message ?? '';
      expect(message).not.toMatch(/previous version keeps serving/);
      expect(message).toMatch(/No earlier version was installed there/);
      expect(status.ready).toBe('0/1');
    });
  });

  describe('history', () => {
    const at = (s: number) => new Date(NOW.getTime() + s * 1000);
    const halted = aPlan({ kind: 'halted' }, [rolledBack('node-1')]);
    const progressing = aPlan({ kind: 'progressing' }, [inFlight('node-1')]);

    it('gives each entry a number, a message and the node-run spec undo writes back', () => {
      const [entry] = releaseStatus(release, halted, NOW).status.history ?? [];
      expect(entry).toMatchObject({ number: 1, outcome: 'Halted', finishedAt: NOW.toISOString() });
      expect(entry?.message).toMatch(
        /^Rollout of revision abc123abc123 halted: 1 node\(s\) did not activate/,
      );
      expect(entry?.nodeRun).toMatchObject({
        version: release.spec.version,
        artifact: release.spec.artifact,
      });
    });

    it('keeps finishedAt through a retry, and moves it when the retry ends', () => {
      const first = releaseStatus(release, halted, NOW).status;
      const retrying = releaseStatus({ ...release, status: first }, progressing, at(10)).status;
      expect(retrying.history?.[0]).toMatchObject({ outcome: 'Progressing', finishedAt: NOW.toISOString() });
      const ended = releaseStatus({ ...release, status: retrying }, halted, at(20)).status;
      expect(ended.history?.[0]).toMatchObject({ outcome: 'Halted', finishedAt: at(20).toISOString() });
      expect(ended.history).toHaveLength(1);
    });

    it('moves a revision applied again to the top with the next number, listing it once', () => {
      const history = [
        {
          number: 2,
          revision: 'other',
          version: '2.0.0',
          outcome: 'Complete' as const,
          startedAt: NOW.toISOString(),
        },
        {
          number: 1,
          revision: 'abc123abc123',
          version: release.spec.version,
          outcome: 'Complete' as const,
          startedAt: NOW.toISOString(),
        },
      ];
      const { status } = releaseStatus({ ...release, status: { history } }, progressing, at(5));
      expect(status.history?.map((h) => [h.number, h.revision, h.outcome])).toEqual([
        [3, 'abc123abc123', 'Progressing'],
        [2, 'other', 'Complete'],
      ]);
    });

    it('says why a superseded entry ended', () => {
      const history = [
        {
          number: 4,
          revision: 'old',
          version: '0.9.0',
          outcome: 'Progressing' as const,
          startedAt: NOW.toISOString(),
        },
      ];
      const { status } = releaseStatus({ ...release, status: { history } }, progressing, at(5));
      expect(status.history?.[1]?.message).toBe(
        'Superseded by revision abc123abc123 (version 1.0.0) before it completed.',
      );
    });
  });

  it('marks an aborted rollout Stalled (RolloutAborted), in history and in an Event', () => {
    const { status, events } = releaseStatus(release, aPlan({ kind: 'aborted' }, [done('node-1')]), NOW);
    expect(status.phase).toBe('Stalled');
    expect(reasonOf(status.conditions, 'Stalled')).toBe('RolloutAborted');
    expect(status.history?.[0]?.outcome).toBe('Aborted');
    expect(events.map((e) => `${e.type}/${e.reason}`)).toContain('Warning/RolloutAborted');
  });

  it('records RolloutResumed when a Stalled revision progresses again without a new spec', () => {
    const stalled = releaseStatus(release, aPlan({ kind: 'halted' }, [rolledBack('node-1')]), NOW).status;
    const { status, events } = releaseStatus(
      { ...release, status: stalled },
      aPlan({ kind: 'progressing' }, [inFlight('node-1')]),
      new Date(NOW.getTime() + 1000),
    );
    expect(statusOf(status.conditions, 'Stalled')).toBeUndefined();
    expect(events.map((e) => e.reason)).toContain('RolloutResumed');
  });
});
