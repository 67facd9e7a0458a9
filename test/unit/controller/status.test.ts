// Release status aggregation: kstatus conditions per verdict, counts, history and Events.
import { describe, expect, it } from 'vitest';
import type { Condition, PluginRelease } from '../../../src/api/index.ts';
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
const done = (node: string): NodeState => ({
  kind: 'done',
  node,
  activation: { spec: { dryRun: false }, status: { lastTransitionTime: NOW.toISOString() } } as never,
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

const cases: {
  name: string;
  plan: Plan;
  want: {
    phase: string;
    ready: string;
    Ready: string;
    Reconciling?: string;
    Stalled?: string;
    reason: string;
  };
}[] = [
  {
    name: 'a rollout in progress is Reconciling and not Ready',
    plan: aPlan({ kind: 'progressing' }, [done('node-1'), inFlight('node-2')]),
    want: {
      phase: 'Progressing',
      ready: '1/2',
      Ready: 'False',
      Reconciling: 'True',
      reason: 'RolloutProgressing',
    },
  },
  {
    name: 'a complete rollout is Ready with neither Reconciling nor Stalled',
    plan: aPlan({ kind: 'complete' }, [done('node-1'), done('node-2')]),
    want: { phase: 'Ready', ready: '2/2', Ready: 'True', reason: 'RolloutComplete' },
  },
  {
    name: 'a halted rollout is Stalled',
    plan: aPlan({ kind: 'halted' }, [rolledBack('node-1'), done('node-2')]),
    want: { phase: 'Stalled', ready: '1/2', Ready: 'False', Stalled: 'True', reason: 'RolloutHalted' },
  },
  {
    name: 'a canary pause keeps Reconciling with its own reason',
    plan: aPlan({ kind: 'paused', byCanary: true }, [done('node-1'), inFlight('node-2')]),
    want: { phase: 'Paused', ready: '1/2', Ready: 'False', Reconciling: 'True', reason: 'CanaryPaused' },
  },
  {
    name: 'a conflict with an older release is Stalled',
    plan: aPlan({ kind: 'conflict', winner: 'default/echo-a', nodes: ['node-1'] }),
    want: { phase: 'Stalled', ready: '0/0', Ready: 'False', Stalled: 'True', reason: 'PluginConflict' },
  },
];

describe('releaseStatus', () => {
  it.each(cases)('$name', ({ plan, want }) => {
    const { status } = releaseStatus(release, plan, NOW);
    expect(status.phase).toBe(want.phase);
    expect(status.ready).toBe(want.ready);
    expect(status.observedGeneration).toBe(1);
    expect(statusOf(status.conditions, 'Ready')).toBe(want.Ready);
    expect(reasonOf(status.conditions, 'Ready')).toBe(want.reason);
    expect(statusOf(status.conditions, 'Reconciling')).toBe(want.Reconciling);
    expect(statusOf(status.conditions, 'Stalled')).toBe(want.Stalled);
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
});
