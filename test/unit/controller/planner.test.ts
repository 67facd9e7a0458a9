// The rollout planner's rules, one table row each: waves, canary, pause, failure policies, deadlines,
// dry run, retries, nodes joining and leaving, and conflicts between releases.
import { describe, expect, it } from 'vitest';
import {
  Annotations,
  Finalizers,
  type PluginActivation,
  type PluginActivationStatus,
  type PluginRelease,
  revisionOf,
} from '../../../src/api/index.ts';
import {
  classifyNode,
  desiredActivation,
  type NodeContext,
  type NodeInfo,
  type NodeState,
  plan,
  releasableActivations,
  type Verdict,
} from '../../../src/controller/planner.ts';
import { aRelease, parsedRelease } from '../../support/builders.ts';

const NOW = new Date('2026-11-23T12:00:00.000Z');
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);

const fleet = (n: number, labels: Record<string, string> = {}): NodeInfo[] =>
  Array.from({ length: n }, (_, i) => ({ name: `node-${i + 1}`, labels }));

interface Given {
  phase?: PluginActivationStatus['phase'];
  reason?: string;
  /** The activation targets an older revision (the release's spec changed since). */
  stale?: boolean;
  /** The agent has not yet observed the latest spec. */
  unobserved?: boolean;
  previousRevision?: string;
  startedMinutesAgo?: number;
  rollbackTo?: string;
  retryAt?: string;
  dryRun?: boolean;
  /** The revision the node reports serving while this attempt is in flight. */
  serving?: string;
  /** Deleted, its agent still uninstalling (finalizer held). */
  deleting?: boolean;
}

/** An activation of `release` on `node` in the state `given` describes. */
function activation(release: PluginRelease, node: string, given: Given = {}): PluginActivation {
  const source = given.stale ? parsedRelease(aRelease().withVersion('0.9.0')) : release;
  const desired = desiredActivation(
    source,
    revisionOf(source.spec),
    node,
    given.retryAt,
    minutesAgo(given.startedMinutesAgo ?? 1),
    given.rollbackTo,
  );
  desired.spec.dryRun = given.dryRun ?? source.spec.dryRun;
  const target = given.rollbackTo ?? desired.spec.revision;
  desired.metadata.generation = 1;
  desired.metadata.resourceVersion = '7';
  if (given.deleting) desired.metadata.deletionTimestamp = minutesAgo(0).toISOString();
  if (!given.phase) return desired;
  desired.status = {
    observedGeneration: given.unobserved ? 0 : 1,
    phase: given.phase,
    revision: desired.spec.revision,
    ...(given.phase === 'Active' || given.rollbackTo ? { activeRevision: target } : {}),
    ...(given.serving ? { activeRevision: given.serving } : {}),
    ...(given.previousRevision ? { previousRevision: given.previousRevision } : {}),
    ...(given.reason
      ? { reason: given.reason, message: 'grpc probe failed 3 times: connection refused' }
      : {}),
  };
  return desired;
}

interface Case {
  name: string;
  release: PluginRelease;
  nodes: NodeInfo[];
  activations?: Array<[string, Given]>;
  others?: PluginRelease[];
  want: {
    verdict: Verdict['kind'];
    create?: string[];
    update?: string[];
    delete?: string[];
    failed?: string[];
  };
}

const r = (b = aRelease()) => parsedRelease(b);
const base = r();
const canary = r(aRelease().withCanary(1).withMaxUnavailable(5));
const canaryPause = r(aRelease().withCanary(1, true).withMaxUnavailable(5));
const rollbackFleet = r(
  aRelease()
    .withMaxUnavailable(5)
    .withSpec({ rollout: { failurePolicy: 'RollbackFleet' } }),
);
const retried = parsedRelease(aRelease(), { annotations: { [Annotations.retryAt]: '2' } });
const dryRun = r(aRelease().withSpec({ dryRun: true }));
const selective = r(
  aRelease()
    .withMaxUnavailable(10)
    .withSpec({ rollout: { nodeSelector: { pool: 'edge' } } }),
);
/** `builder`'s release with `annotation` naming its own revision (abort, promote). */
const naming = (builder: ReturnType<typeof aRelease>, annotation: string, other = false) =>
  parsedRelease(builder, {
    annotations: { [annotation]: other ? 'bbbbbbbbbbbb' : revisionOf(r(builder).spec) },
  });
const aborted = naming(aRelease().withMaxUnavailable(1), Annotations.abort);
const STABLE = 'aaaaaaaaaaaa';
const newer = parsedRelease(aRelease().named('echo-b'), { creationTimestamp: '2026-11-23T11:00:00Z' });
const older = parsedRelease(aRelease().named('echo-a'), { creationTimestamp: '2026-11-23T10:00:00Z' });

const cases: Case[] = [
  {
    name: 'a new release starts the first wave, bounded by maxUnavailable',
    release: r(aRelease().withMaxUnavailable(2)),
    nodes: fleet(5),
    want: { verdict: 'progressing', create: ['node-1', 'node-2'] },
  },
  {
    name: 'a percentage maxUnavailable rounds up',
    release: r(aRelease().withMaxUnavailable('25%')),
    nodes: fleet(10),
    want: { verdict: 'progressing', create: ['node-1', 'node-2', 'node-3'] },
  },
  {
    name: 'activations in flight count against maxUnavailable',
    release: r(aRelease().withMaxUnavailable(3)),
    nodes: fleet(5),
    activations: [
      ['node-1', { phase: 'Probing' }],
      ['node-2', {}],
    ],
    want: { verdict: 'progressing', create: ['node-3'] },
  },
  {
    name: 'a node whose agent has not seen the latest spec is still in flight',
    release: base,
    nodes: fleet(2),
    activations: [['node-1', { phase: 'Active', unobserved: true }]],
    want: { verdict: 'progressing' },
  },
  {
    name: 'canary nodes go first, alone',
    release: canary,
    nodes: fleet(5),
    want: { verdict: 'progressing', create: ['node-1'] },
  },
  {
    name: 'the next wave waits for the canary',
    release: canary,
    nodes: fleet(5),
    activations: [['node-1', { phase: 'Probing' }]],
    want: { verdict: 'progressing' },
  },
  {
    name: 'an active canary releases the next wave',
    release: canary,
    nodes: fleet(5),
    activations: [['node-1', { phase: 'Active' }]],
    want: { verdict: 'progressing', create: ['node-2', 'node-3', 'node-4', 'node-5'] },
  },
  {
    name: 'canary.pauseAfter pauses once the canaries are active',
    release: canaryPause,
    nodes: fleet(3),
    activations: [['node-1', { phase: 'Active' }]],
    want: { verdict: 'paused' },
  },
  {
    name: 'a paused rollout starts no node',
    release: r(aRelease().withSpec({ rollout: { paused: true } })),
    nodes: fleet(3),
    want: { verdict: 'paused' },
  },
  {
    name: 'only nodes matching the nodeSelector are targeted',
    release: selective,
    nodes: [...fleet(2), { name: 'edge-1', labels: { pool: 'edge' } }],
    want: { verdict: 'progressing', create: ['edge-1'] },
  },
  {
    name: 'a node that left loses its activation',
    release: base,
    nodes: fleet(1),
    activations: [
      ['node-1', { phase: 'Active' }],
      ['node-9', { phase: 'Active' }],
    ],
    want: { verdict: 'complete', delete: ['node-9'] },
  },
  {
    name: 'a node that joins a complete fleet gets the current revision',
    release: base,
    nodes: fleet(2),
    activations: [['node-1', { phase: 'Active' }]],
    want: { verdict: 'progressing', create: ['node-2'] },
  },
  {
    name: 'every node active on the revision completes the rollout',
    release: base,
    nodes: fleet(2),
    activations: [
      ['node-1', { phase: 'Active' }],
      ['node-2', { phase: 'Active' }],
    ],
    want: { verdict: 'complete' },
  },
  {
    name: 'a new revision rolls over nodes running the old one, in waves',
    release: base,
    nodes: fleet(3),
    activations: [
      ['node-1', { phase: 'Active', stale: true }],
      ['node-2', { phase: 'Active', stale: true }],
      ['node-3', { phase: 'Active', stale: true }],
    ],
    want: { verdict: 'progressing', update: ['node-1'] },
  },
  {
    name: 'Halt stops further waves after a node rolls back',
    release: r(aRelease().withMaxUnavailable(2)),
    nodes: fleet(4),
    activations: [
      ['node-1', { phase: 'RolledBack', reason: 'ProbeFailed' }],
      ['node-2', { phase: 'Active' }],
    ],
    want: { verdict: 'halted', failed: ['node-1'] },
  },
  {
    name: 'RollbackFleet sends nodes that activated back to their previous revision',
    release: rollbackFleet,
    nodes: fleet(3),
    activations: [
      ['node-1', { phase: 'RolledBack', reason: 'VerifyFailed' }],
      ['node-2', { phase: 'Active', previousRevision: 'aaaaaaaaaaaa' }],
      ['node-3', { phase: 'Active' }],
    ],
    want: { verdict: 'rollingBackFleet', update: ['node-2'], failed: ['node-1'] },
  },
  {
    name: 'a node rolled back by the fleet stays there while the failure stands',
    release: rollbackFleet,
    nodes: fleet(2),
    activations: [
      ['node-1', { phase: 'RolledBack', reason: 'VerifyFailed' }],
      ['node-2', { phase: 'Active', rollbackTo: 'aaaaaaaaaaaa' }],
    ],
    want: { verdict: 'rollingBackFleet', failed: ['node-1'] },
  },
  {
    name: 'the retry-at annotation retries a failed node',
    release: retried,
    nodes: fleet(2),
    activations: [
      ['node-1', { phase: 'RolledBack', reason: 'ProbeFailed' }],
      ['node-2', { phase: 'Active' }],
    ],
    want: { verdict: 'progressing', update: ['node-1'] },
  },
  {
    name: 'a retried failure that fails again halts again',
    release: retried,
    nodes: fleet(2),
    activations: [['node-1', { phase: 'RolledBack', reason: 'ProbeFailed', retryAt: '2' }]],
    want: { verdict: 'halted', failed: ['node-1'] },
  },
  {
    name: 'an activation in flight past progressDeadlineSeconds counts as failed',
    release: base,
    nodes: fleet(2),
    activations: [['node-1', { phase: 'Probing', startedMinutesAgo: 11 }]],
    want: { verdict: 'halted', failed: ['node-1'] },
  },
  {
    name: 'a dry run probes every node at once',
    release: dryRun,
    nodes: fleet(4),
    want: { verdict: 'progressing', create: ['node-1', 'node-2', 'node-3', 'node-4'] },
  },
  {
    name: 'a dry run keeps probing the other nodes after one fails',
    release: dryRun,
    nodes: fleet(3),
    activations: [
      ['node-1', { phase: 'RolledBack', reason: 'ProbeFailed' }],
      ['node-2', { phase: 'Probing' }],
    ],
    want: { verdict: 'progressing', create: ['node-3'], failed: ['node-1'] },
  },
  {
    name: 'a dry run fails once every node has a verdict and one failed',
    release: dryRun,
    nodes: fleet(2),
    activations: [
      ['node-1', { phase: 'RolledBack', reason: 'ProbeFailed' }],
      ['node-2', { phase: 'Probed' }],
    ],
    want: { verdict: 'halted', failed: ['node-1'] },
  },
  {
    name: 'a dry run completes when every node probed',
    release: dryRun,
    nodes: fleet(2),
    activations: [
      ['node-1', { phase: 'Probed' }],
      ['node-2', { phase: 'Probed' }],
    ],
    want: { verdict: 'complete' },
  },
  {
    name: 'turning a dry run off starts the real rollout',
    release: base,
    nodes: fleet(2),
    activations: [
      ['node-1', { phase: 'Probed', dryRun: true }],
      ['node-2', { phase: 'Probed', dryRun: true }],
    ],
    want: { verdict: 'progressing', update: ['node-1'] },
  },
  {
    name: 'the older release of the same plugin wins a shared node',
    release: newer,
    nodes: fleet(2),
    activations: [['node-1', { phase: 'Active' }]],
    others: [older],
    want: { verdict: 'conflict', delete: ['node-1'] },
  },
  {
    name: 'the older release ignores the newer one',
    release: older,
    nodes: fleet(1),
    others: [newer],
    want: { verdict: 'progressing', create: ['node-1'] },
  },
  {
    name: 'abort sends every node the revision reached back at once, and uninstalls a first install',
    release: aborted,
    nodes: fleet(4),
    activations: [
      ['node-1', { phase: 'Active', previousRevision: STABLE }],
      ['node-2', { phase: 'Probing', serving: STABLE }],
      ['node-3', { phase: 'Probing' }],
    ],
    want: { verdict: 'aborted', update: ['node-1', 'node-2'], delete: ['node-3'] },
  },
  {
    name: 'abort leaves a node already on its way back, and one that rolled back on its own',
    release: aborted,
    nodes: fleet(2),
    activations: [
      ['node-1', { phase: 'Probing', rollbackTo: STABLE }],
      ['node-2', { phase: 'RolledBack', reason: 'ProbeFailed' }],
    ],
    want: { verdict: 'aborted', failed: ['node-2'] },
  },
  {
    name: 'an abort of another revision does not stop this one',
    release: naming(aRelease().withMaxUnavailable(1), Annotations.abort, true),
    nodes: fleet(2),
    want: { verdict: 'progressing', create: ['node-1'] },
  },
  {
    name: 'promoting the revision continues a rollout paused after its canaries',
    release: naming(aRelease().withCanary(1, true).withMaxUnavailable(5), Annotations.promote),
    nodes: fleet(3),
    activations: [['node-1', { phase: 'Active' }]],
    want: { verdict: 'progressing', create: ['node-2', 'node-3'] },
  },
  {
    name: 'a promotion of another revision keeps the canary pause',
    release: naming(aRelease().withCanary(1, true).withMaxUnavailable(5), Annotations.promote, true),
    nodes: fleet(3),
    activations: [['node-1', { phase: 'Active' }]],
    want: { verdict: 'paused' },
  },
  {
    name: 'an activation being deleted is neither deleted again, nor replaced until it is gone',
    release: base,
    nodes: fleet(1),
    activations: [
      ['node-1', { stale: true, phase: 'Active', deleting: true }],
      ['node-9', { phase: 'Active', deleting: true }],
    ],
    want: { verdict: 'progressing' },
  },
  {
    name: 'no matching node waits for one to join',
    release: selective,
    nodes: fleet(2),
    want: { verdict: 'noNodes' },
  },
];

describe('plan', () => {
  it.each(cases)('$name', ({ release, nodes, activations = [], others = [], want }) => {
    const got = plan({
      release,
      nodes,
      activations: activations.map(([node, given]) => activation(release, node, given)),
      others,
      now: NOW,
    });
    expect(got.verdict.kind).toBe(want.verdict);
    expect(got.create.map((a) => a.spec.nodeName)).toEqual(want.create ?? []);
    expect(got.update.map((a) => a.spec.nodeName)).toEqual(want.update ?? []);
    expect(got.delete.map((a) => a.spec.nodeName)).toEqual(want.delete ?? []);
    expect(got.nodes.filter((n) => n.kind === 'failed').map((n) => n.node)).toEqual(want.failed ?? []);
  });

  it('names the progress deadline as the failure reason', () => {
    const got = plan({
      release: base,
      nodes: fleet(1),
      activations: [activation(base, 'node-1', { phase: 'Staged', startedMinutesAgo: 11 })],
      others: [],
      now: NOW,
    });
    const failed = got.nodes[0];
    expect(failed?.kind === 'failed' && failed.failure.reason).toBe('ProgressDeadlineExceeded');
  });

  it('asks to look again when the nearest progress deadline falls due', () => {
    const got = plan({
      release: base,
      nodes: fleet(1),
      activations: [activation(base, 'node-1', { phase: 'Probing', startedMinutesAgo: 4 })],
      others: [],
      now: NOW,
    });
    expect(got.requeueAfterMs).toBe(6 * 60_000);
  });

  it('refreshes the spec of an active node without restarting its attempt', () => {
    const edited = r(aRelease().withSpec({ activation: { verifySeconds: 30 } }));
    const current = activation(base, 'node-1', { phase: 'Active' });
    const got = plan({ release: edited, nodes: fleet(1), activations: [current], others: [], now: NOW });
    expect(got.verdict.kind).toBe('complete');
    expect(got.update[0]?.spec.activation.verifySeconds).toBe(30);
    expect(got.update[0]?.metadata.annotations?.[Annotations.startedAt]).toBe(
      current.metadata.annotations?.[Annotations.startedAt],
    );
  });

  it('aborts a node to what it served before: its active revision mid-probe, else its previous', () => {
    const got = plan({
      release: aborted,
      nodes: fleet(2),
      activations: [
        activation(aborted, 'node-1', { phase: 'Active', previousRevision: STABLE }),
        activation(aborted, 'node-2', { phase: 'Probing', serving: 'cccccccccccc' }),
      ],
      others: [],
      now: NOW,
    });
    expect(got.update.map((a) => a.spec.rollbackTo?.revision)).toEqual([STABLE, 'cccccccccccc']);
  });

  it('holds the agent finalizer on every activation it writes, adding it to older ones', () => {
    const created = plan({ release: base, nodes: fleet(1), activations: [], others: [], now: NOW }).create[0];
    expect(created?.metadata.finalizers).toEqual([Finalizers.agent]);
    const legacy = activation(base, 'node-1', { phase: 'Active' });
    legacy.metadata.finalizers = ['example.com/other'];
    const got = plan({ release: base, nodes: fleet(1), activations: [legacy], others: [], now: NOW });
    expect(got.update[0]?.metadata.finalizers).toEqual(['example.com/other', Finalizers.agent]);
  });

  it('gives every activation an owner reference, the node label and a stable name', () => {
    const got = plan({ release: base, nodes: fleet(1), activations: [], others: [], now: NOW });
    const created = got.create[0];
    expect(created?.metadata.name).toBe('echo-node-1');
    expect(created?.metadata.labels?.['pluginrelease.io/node']).toBe('node-1');
    expect(created?.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'PluginRelease', controller: true });
  });
});

describe('classifyNode', () => {
  const ctx = (release: PluginRelease, retryAt?: string): NodeContext => ({
    revision: revisionOf(release.spec),
    dryRun: release.spec.dryRun,
    retryAt,
    progressDeadlineSeconds: release.spec.rollout.progressDeadlineSeconds,
    now: NOW,
  });
  const cases: {
    name: string;
    release?: PluginRelease;
    given?: Given;
    retryAt?: string;
    want: { kind: NodeState['kind']; phase?: string; reason?: string };
  }[] = [
    { name: 'a node without an activation is outdated', want: { kind: 'outdated' } },
    {
      name: 'an activation of another revision is outdated',
      given: { phase: 'Active', stale: true },
      want: { kind: 'outdated' },
    },
    {
      name: 'a dry-run attempt is outdated once the release rolls out for real',
      given: { phase: 'Probed', dryRun: true },
      want: { kind: 'outdated' },
    },
    {
      name: 'an activation its agent has not observed is in flight, Pending',
      given: { phase: 'Active', unobserved: true },
      want: { kind: 'inFlight', phase: 'Pending' },
    },
    {
      name: 'a probing activation is in flight in its phase',
      given: { phase: 'Probing' },
      want: { kind: 'inFlight', phase: 'Probing' },
    },
    {
      name: 'an activation active on the revision is done',
      given: { phase: 'Active' },
      want: { kind: 'done' },
    },
    {
      name: 'a rollback that reached its target is done',
      given: { phase: 'Active', rollbackTo: 'aaaaaaaaaaaa' },
      want: { kind: 'done' },
    },
    {
      name: 'a dry run is done once probed',
      release: dryRun,
      given: { phase: 'Probed' },
      want: { kind: 'done' },
    },
    {
      name: 'a rolled-back attempt is failed, with the reason its agent reported',
      given: { phase: 'RolledBack', reason: 'VerifyFailed' },
      want: { kind: 'failed', reason: 'VerifyFailed' },
    },
    {
      name: 'a failed attempt without a reason is a failed rollback',
      given: { phase: 'Failed' },
      want: { kind: 'failed', reason: 'RollbackFailed' },
    },
    {
      name: 'a failure under an older retry-at is outdated (retried)',
      given: { phase: 'RolledBack', reason: 'ProbeFailed' },
      retryAt: '2',
      want: { kind: 'outdated' },
    },
    {
      name: 'an attempt in flight past the progress deadline is failed',
      given: { phase: 'Staged', startedMinutesAgo: 11 },
      want: { kind: 'failed', reason: 'ProgressDeadlineExceeded' },
    },
    {
      name: 'an attempt past the deadline under an older retry-at is outdated (retried)',
      given: { phase: 'Probing', startedMinutesAgo: 11 },
      retryAt: '2',
      want: { kind: 'outdated' },
    },
    {
      name: 'an attempt just inside the deadline is still in flight',
      given: { phase: 'Probing', startedMinutesAgo: 9 },
      want: { kind: 'inFlight', phase: 'Probing' },
    },
  ];
  it.each(cases)('$name', ({ release = base, given, retryAt, want }) => {
    const got = classifyNode('node-1', given && activation(release, 'node-1', given), ctx(release, retryAt));
    expect(got.kind).toBe(want.kind);
    if (want.phase) expect(got.kind === 'inFlight' && got.phase).toBe(want.phase);
    if (want.reason) expect(got.kind === 'failed' && got.failure.reason).toBe(want.reason);
  });
});

describe('releasableActivations', () => {
  const uninstalled = {
    type: 'Uninstalled',
    status: 'True' as const,
    reason: 'Uninstalled',
    message: 'gone',
    lastTransitionTime: NOW.toISOString(),
  };
  const cases: { name: string; given: Given; uninstalled?: boolean; node?: string; want: boolean }[] = [
    {
      name: 'a deleted activation its agent reported uninstalled',
      given: { phase: 'Active', deleting: true },
      uninstalled: true,
      want: true,
    },
    {
      name: 'a deleted activation on a Node that is gone',
      given: { phase: 'Active', deleting: true },
      node: 'node-9',
      want: true,
    },
    {
      name: 'not a deleted activation its live agent has not reported on',
      given: { phase: 'Active', deleting: true },
      want: false,
    },
    {
      name: 'not a live activation, even on a gone Node',
      given: { phase: 'Active' },
      node: 'node-9',
      want: false,
    },
  ];
  it.each(cases)('$name', ({ given, uninstalled: done, node = 'node-1', want }) => {
    const a = activation(base, node, given);
    if (done && a.status) a.status.conditions = [uninstalled];
    expect(releasableActivations([a], fleet(1)).length === 1).toBe(want);
  });
});
