// The release reconciler over a fake cluster: what it writes (activations, status, Events, finalizers)
// for what the caches show, including caches that have not caught up with its own writes.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  ConditionType,
  type PluginActivation,
  type PluginActivationStatus,
  type PluginRelease,
  type PluginReleaseStatus,
  revisionOf,
} from '../../../src/api/index.ts';
import { desiredActivation, type NodeInfo } from '../../../src/controller/planner.ts';
import {
  type ControllerCaches,
  type ControllerWriter,
  ReleaseReconciler,
} from '../../../src/controller/reconciler.ts';
import type { PlannedEvent } from '../../../src/controller/status.ts';
import type { ReconcileResult } from '../../../src/runtime/reconcile.ts';
import { aRelease, parsedRelease } from '../../support/builders.ts';
import { outcome } from '../../support/outcome.ts';

const NOW = new Date('2026-11-23T12:00:00.000Z');
const KEY = 'default/echo';
const logger = pino({ level: 'silent' });
const nodes = (n: number): NodeInfo[] =>
  Array.from({ length: n }, (_, i) => ({ name: `node-${i + 1}`, labels: {} }));

/** The release every case rolls out: all nodes at once, so a plan's writes do not depend on waves. */
const echo = () => parsedRelease(aRelease().withMaxUnavailable('100%'));

/** A release whose spec the controller refuses (an empty version), as the API server may still hold it. */
function invalidRelease(): PluginRelease {
  const release = echo();
  return { ...release, spec: { ...release.spec, version: '' } };
}

/** An older release of the same plugin under another name; `valid: false` gives it an empty version. */
function olderRival(valid: boolean): PluginRelease {
  const rival = parsedRelease(aRelease().named('rival'), { creationTimestamp: '2026-11-23T08:00:00Z' });
  return valid ? rival : { ...rival, spec: { ...rival.spec, version: '' } };
}

/** `release`'s activation on `node`, as its agent last reported it. */
function activationOf(
  release: PluginRelease,
  node: string,
  status?: Pick<PluginActivationStatus, 'phase'> & { startedMinutesAgo?: number },
): PluginActivation {
  const revision = revisionOf(release.spec);
  const startedAt = new Date(NOW.getTime() - (status?.startedMinutesAgo ?? 1) * 60_000);
  const a = desiredActivation(release, revision, node, undefined, startedAt);
  a.metadata.generation = 1;
  a.metadata.resourceVersion = '5';
  if (status?.phase) {
    a.status = {
      observedGeneration: 1,
      phase: status.phase,
      revision,
      ...(status.phase === 'Active' ? { activeRevision: revision } : {}),
    };
  }
  return a;
}

/** Deleted, held by the agent's finalizer; `uninstalled` once its agent said so. */
function deleting(activation: PluginActivation, uninstalled: boolean): PluginActivation {
  return {
    ...activation,
    metadata: { ...activation.metadata, deletionTimestamp: NOW.toISOString() },
    status: uninstalled
      ? {
          conditions: [
            {
              type: ConditionType.Uninstalled,
              status: 'True',
              reason: 'Uninstalled',
              message: 'Gone.',
              lastTransitionTime: NOW.toISOString(),
            },
          ],
        }
      : {},
  };
}

/**
 * Caches that show only what a case put in them, and a writer that records each call as one line. The
 * writer never updates the caches: they lag behind every write, as an informer's may.
 */
class FakeCluster implements ControllerCaches, ControllerWriter {
  readonly writes: string[] = [];
  readonly statuses: PluginReleaseStatus[] = [];
  /** Makes the named call (`create`, `status`, …) throw, once. */
  failing: string | undefined;
  readonly #releases: PluginRelease[];
  readonly #activations: PluginActivation[];
  readonly #nodes: NodeInfo[];

  constructor(world: World) {
    this.#releases = world.releases;
    this.#activations = world.activations ?? [];
    this.#nodes = world.nodes ?? nodes(3);
  }

  /** The cache catches up with the last status this controller wrote. */
  catchUp(): void {
    const last = this.statuses.at(-1);
    const release = this.#releases.find((r) => `${r.metadata.namespace}/${r.metadata.name}` === KEY);
    if (release && last) release.status = last;
  }

  release(key: string) {
    return this.#releases.find((r) => `${r.metadata.namespace}/${r.metadata.name}` === key);
  }
  releases() {
    return this.#releases;
  }
  activationsOf(namespace: string, release: string) {
    return this.#activations.filter(
      (a) =>
        a.metadata.namespace === namespace && a.metadata.labels?.['pluginrelease.io/release'] === release,
    );
  }
  nodes() {
    return this.#nodes;
  }

  async createActivation(a: PluginActivation) {
    this.#record('create', a.spec.nodeName);
  }
  async replaceActivation(a: PluginActivation) {
    this.#record('replace', a.spec.nodeName);
  }
  async deleteActivation(a: PluginActivation) {
    this.#record('delete', a.spec.nodeName);
  }
  async releaseFinalizer(a: PluginActivation) {
    this.#record('releaseFinalizer', a.spec.nodeName);
  }
  async patchReleaseStatus(_release: PluginRelease, status: PluginReleaseStatus) {
    const stalled = status.conditions?.find((c) => c.type === ConditionType.Stalled);
    this.#record('status', `${status.phase}${stalled ? ` Stalled/${stalled.reason}` : ''}`);
    this.statuses.push(status);
  }
  async recordEvent(_release: PluginRelease, event: PlannedEvent) {
    this.#record('event', event.reason);
  }

  #record(call: string, what: string | undefined): void {
    if (this.failing === call) {
      this.failing = undefined;
      throw new Error(`${call} failed: the API server is unavailable`);
    }
    this.writes.push(`${call} ${what}`);
  }
}

interface World {
  releases: PluginRelease[];
  activations?: PluginActivation[];
  nodes?: NodeInfo[];
}

interface Case {
  name: string;
  given: () => World;
  /** Runs before the reconciles: a call the fake writer fails, once. */
  failing?: string;
  /** What happens between two reconciles; one reconcile when omitted. */
  between?: (cluster: FakeCluster) => void;
  /** The second reconcile is a new reconciler's, as after a controller restart. */
  restarted?: boolean;
  want: { writes: string[]; outcomes: Array<ReconcileResult | string> };
}

/** A new release's first reconcile: every node gets its activation, and the rollout is said to start. */
const ROLLOUT_STARTED = [
  'create node-1',
  'create node-2',
  'create node-3',
  'event RolloutStarted',
  'status Progressing',
];

const cases: Case[] = [
  {
    name: 'creates an activation per targeted node of a new release, says so, and marks it Progressing',
    given: () => ({ releases: [echo()] }),
    want: { writes: ROLLOUT_STARTED, outcomes: [{}] },
  },
  {
    name: 'does not patch the same status again while the cache still shows the old one (read-your-own-writes)',
    given: () => ({
      releases: [echo()],
      activations: ['node-1', 'node-2', 'node-3'].map((n) => activationOf(echo(), n, { phase: 'Active' })),
    }),
    between: () => {},
    want: {
      writes: ['event RolloutStarted', 'event NodeActivated', 'event RolloutComplete', 'status Ready'],
      outcomes: [{}, {}],
    },
  },
  {
    name: 'writes nothing for a converged release after a restart, once the cache shows its status (already done)',
    given: () => ({
      releases: [echo()],
      activations: ['node-1', 'node-2', 'node-3'].map((n) => activationOf(echo(), n, { phase: 'Active' })),
    }),
    between: (cluster) => cluster.catchUp(),
    restarted: true,
    want: {
      writes: ['event RolloutStarted', 'event NodeActivated', 'event RolloutComplete', 'status Ready'],
      outcomes: [{}, {}],
    },
  },
  {
    name: 'marks an invalid spec Stalled/InvalidSpec, creates nothing, and gives up with a TerminalError',
    given: () => ({ releases: [invalidRelease()] }),
    want: { writes: ['status Stalled Stalled/InvalidSpec'], outcomes: ['terminal InvalidSpec'] },
  },
  {
    name: 'does not patch an invalid spec twice while the cache lags, and stays terminal',
    given: () => ({ releases: [invalidRelease()] }),
    between: () => {},
    want: {
      writes: ['status Stalled Stalled/InvalidSpec'],
      outcomes: ['terminal InvalidSpec', 'terminal InvalidSpec'],
    },
  },
  {
    name: 'retries (throws) when the invalid-spec status cannot be written, instead of giving up unrecorded',
    given: () => ({ releases: [invalidRelease()] }),
    failing: 'status',
    want: { writes: [], outcomes: ['status failed: the API server is unavailable'] },
  },
  {
    name: 'throws before patching status when an activation write fails, so the key is retried',
    given: () => ({ releases: [echo()] }),
    failing: 'create',
    want: {
      writes: ['create node-2', 'create node-3'],
      outcomes: ['create failed: the API server is unavailable'],
    },
  },
  {
    name: 'patches the status again after a failed status patch (nothing failed is remembered as written)',
    given: () => ({
      releases: [echo()],
      activations: ['node-1', 'node-2', 'node-3'].map((n) => activationOf(echo(), n, { phase: 'Active' })),
    }),
    failing: 'status',
    between: () => {},
    // Events are recorded before the status, so they repeat after its patch failed (at least once).
    want: {
      writes: [
        ...['event RolloutStarted', 'event NodeActivated', 'event RolloutComplete'],
        ...['event RolloutStarted', 'event NodeActivated', 'event RolloutComplete'],
        'status Ready',
      ],
      outcomes: ['status failed: the API server is unavailable', {}],
    },
  },
  {
    name: 'asks to look again before the progress deadline of a node still in flight',
    given: () => ({
      releases: [echo()],
      nodes: nodes(1),
      activations: [activationOf(echo(), 'node-1', { phase: 'Probing', startedMinutesAgo: 9 })],
    }),
    want: { writes: ['event RolloutStarted', 'status Progressing'], outcomes: [{ requeueAfterMs: 60_000 }] },
  },
  {
    name: 'lets deleted activations go once their agent uninstalled them, even after the release is gone',
    given: () => ({
      releases: [],
      activations: [
        deleting(activationOf(echo(), 'node-1'), true),
        deleting(activationOf(echo(), 'node-2'), false),
      ],
    }),
    want: { writes: ['releaseFinalizer node-1'], outcomes: [{}] },
  },
  {
    name: 'leaves a release being deleted to the garbage collector: no plan, no status',
    given: () => {
      const release = echo();
      release.metadata.deletionTimestamp = NOW.toISOString();
      return { releases: [release], activations: [activationOf(release, 'node-1', { phase: 'Active' })] };
    },
    want: { writes: [], outcomes: [{}] },
  },
  {
    name: 'yields the nodes to an older valid release of the same plugin (PluginConflict)',
    given: () => ({ releases: [echo(), olderRival(true)] }),
    want: { writes: ['event RolloutHalted', 'status Stalled Stalled/PluginConflict'], outcomes: [{}] },
  },
  {
    name: 'lets an older but invalid release of the same plugin claim no node',
    given: () => ({ releases: [echo(), olderRival(false)] }),
    want: { writes: ROLLOUT_STARTED, outcomes: [{}] },
  },
  {
    name: "does not count another release's leftover activation of the same name as its own",
    given: () => {
      const leftover = activationOf(echo(), 'node-1', { phase: 'Active' });
      leftover.metadata.ownerReferences = [
        { ...leftover.metadata.ownerReferences![0]!, uid: 'uid-of-the-deleted-echo' },
      ];
      return { releases: [echo()], nodes: nodes(1), activations: [leftover] };
    },
    want: { writes: ['create node-1', 'event RolloutStarted', 'status Progressing'], outcomes: [{}] },
  },
];

describe('ReleaseReconciler', () => {
  it.each(cases)('$name', async ({ given, failing, between, restarted, want }) => {
    const cluster = new FakeCluster(given());
    cluster.failing = failing;
    const start = () =>
      new ReleaseReconciler({ caches: cluster, writer: cluster, clock: { now: () => NOW }, logger });
    let reconciler = start();
    const outcomes = [await outcome(reconciler.reconcile(KEY, logger))];
    if (between) {
      between(cluster);
      if (restarted) reconciler = start();
      outcomes.push(await outcome(reconciler.reconcile(KEY, logger)));
    }
    expect({ writes: cluster.writes, outcomes }).toEqual(want);
  });
});
