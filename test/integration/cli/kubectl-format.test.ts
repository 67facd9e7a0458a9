// The kubectl plugin's pure renderers (ages, truncation, tables, status and history text), table-driven.
// They sit with the CLI tests because the plugin's end-to-end tests only see them through kubectl.
import { describe, expect, it } from 'vitest';
import type { PluginActivation, PluginRelease } from '../../../src/api/index.ts';
import {
  MESSAGE_WIDTH,
  releaseState,
  renderHistory,
  renderStatus,
  table,
  truncate,
} from '../../../src/cli/kubectl-plugin/format.ts';
import { aRelease, parsedRelease } from '../../support/builders.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('truncate', () => {
  it.each([
    ['keeps a short line', 'all good', 20, 'all good'],
    ['keeps a line exactly the width', 'x'.repeat(20), 20, 'x'.repeat(20)],
    ['cuts a long line and marks the cut', 'x'.repeat(21), 20, `${'x'.repeat(17)}...`],
    [
      'joins lines and collapses blanks',
      'probe failed:\n  connection   refused\n',
      80,
      'probe failed: connection refused',
    ],
    ['keeps everything with an infinite width', 'y'.repeat(500), Number.POSITIVE_INFINITY, 'y'.repeat(500)],
  ])('%s', (_name, text, width, want) => {
    expect(truncate(text, width)).toBe(want);
  });
});

describe('table', () => {
  it('aligns columns three spaces apart, indents every line and leaves no trailing blanks', () => {
    expect(
      table(
        ['NODE', 'PHASE', 'MESSAGE'],
        [
          ['node-1', 'Active', ''],
          ['node-10', 'RolledBack', 'bad digest'],
        ],
        '  ',
      ),
    ).toBe(
      ['  NODE      PHASE        MESSAGE', '  node-1    Active', '  node-10   RolledBack   bad digest'].join(
        '\n',
      ),
    );
  });
});

const NOW = Date.parse('2026-11-23T10:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();

function anActivation(node: string, status: PluginActivation['status']): PluginActivation {
  return {
    apiVersion: 'pluginrelease.io/v1alpha1',
    kind: 'PluginActivation',
    metadata: {
      name: `echo-${node}`,
      namespace: 'default',
      creationTimestamp: ago(10 * M),
      labels: { 'pluginrelease.io/node': node },
    },
    spec: { nodeName: node, revision: 'rev-new' } as PluginActivation['spec'],
    ...(status ? { status } : {}),
  };
}

function aStalledRelease(): PluginRelease {
  const release = parsedRelease(aRelease().withCanary(1), {
    annotations: { 'pluginrelease.io/retry-at': '1795459048' },
  });
  release.metadata.generation = 3;
  release.status = {
    observedGeneration: 2,
    phase: 'Stalled',
    ready: '1/3',
    revision: 'rev-new',
    conditions: [
      {
        type: 'RolledBack',
        status: 'True',
        reason: 'NodeRolledBack',
        message: 'node-10 rolled back.',
        lastTransitionTime: ago(5 * M),
      },
      {
        type: 'Stalled',
        status: 'True',
        reason: 'RolloutHalted',
        message: 'Halted: fix node-10, then retry.',
        lastTransitionTime: ago(5 * M),
      },
      {
        type: 'Ready',
        status: 'False',
        reason: 'RolloutHalted',
        message: 'Halted.',
        lastTransitionTime: ago(100 * S),
      },
    ],
    history: [
      {
        number: 2,
        revision: 'rev-new',
        version: '2.0.0',
        outcome: 'Halted',
        startedAt: ago(6 * M),
        finishedAt: ago(5 * M),
        message: 'node-10 rolled back',
      },
      { number: 1, revision: 'rev-old', version: '1.0.0', outcome: 'Superseded', startedAt: ago(2 * D) },
    ],
  };
  return release;
}

describe('renderStatus', () => {
  const long = `digest mismatch: ${'z'.repeat(200)}`;
  const text = renderStatus(
    aStalledRelease(),
    [
      anActivation('node-10', {
        phase: 'RolledBack',
        revision: 'rev-new',
        activeRevision: 'rev-old',
        reason: 'DigestMismatch',
        message: long,
        lastTransitionTime: ago(5 * M),
      }),
      anActivation('node-2', {
        phase: 'Active',
        revision: 'rev-new',
        activeRevision: 'rev-new',
        reason: 'Activated',
        message: 'serving',
        lastTransitionTime: ago(7 * M),
      }),
      anActivation('node-3', undefined),
    ],
    NOW,
  );
  const lines = text.split('\n');

  it('says when the status describes an older generation than the spec', () => {
    expect(lines).toContain('Phase:       Stalled (status describes generation 2; the spec is at 3)');
  });

  it('shows READY, the revision, the rollout settings and the retry token', () => {
    expect(lines).toContain('Ready:       1/3');
    expect(lines).toContain('Revision:    rev-new');
    expect(lines).toContain(
      'Rollout:     Progressing (NotObserved); 1 canary node first; failure policy Halt',
    );
    expect(lines).toContain('Retry at:    1795459048');
  });

  it('lists kstatus conditions first, then domain conditions, with whole messages', () => {
    const conditions = lines.slice(lines.indexOf('Conditions:') + 2, lines.indexOf('Conditions:') + 5);
    expect(conditions.map((l) => l.trim().split(/\s+/)[0])).toEqual(['Ready', 'Stalled', 'RolledBack']);
    expect(conditions[0]).toMatch(/^ {2}Ready\s+False\s+RolloutHalted\s+100s\s+Halted\.$/);
    expect(conditions[1]).toMatch(/Halted: fix node-10, then retry\.$/);
  });

  it('orders nodes naturally, cuts long messages, and shows a node that has not reported as Pending', () => {
    const nodes = lines.slice(lines.indexOf('Nodes:') + 2);
    expect(nodes.map((l) => l.trim().split(/\s+/)[0])).toEqual(['node-2', 'node-3', 'node-10']);
    expect(nodes[0]).toMatch(/^ {2}node-2\s+Active\s+rev-new\s+rev-new\s+Activated\s+7m\s+serving$/);
    expect(nodes[1]).toMatch(/^ {2}node-3\s+Pending\s+rev-new\s+<none>\s+10m$/);
    expect(nodes[2]).toMatch(
      /^ {2}node-10\s+RolledBack\s+rev-new\s+rev-old\s+DigestMismatch\s+5m\s+digest mismatch: z+\.\.\.$/,
    );
    expect(nodes[2]?.endsWith(`${long.slice(0, MESSAGE_WIDTH - 3)}...`)).toBe(true);
  });
});

describe('releaseState', () => {
  const condition = (type: string, status: 'True' | 'False', reason: string) => ({
    type,
    status,
    reason,
    message: `${type} ${reason}.`,
    lastTransitionTime: ago(M),
  });
  const withStatus = (status: PluginRelease['status'], generation = 1): PluginRelease => {
    const release = parsedRelease(aRelease());
    release.metadata.generation = generation;
    release.status = status;
    return release;
  };
  it.each([
    ['a release the controller has not reported on', withStatus(undefined), 'Progressing', 'NotObserved'],
    [
      'a Stalled status that describes an older generation',
      withStatus({ observedGeneration: 1, conditions: [condition('Stalled', 'True', 'RolloutHalted')] }, 2),
      'Progressing',
      'NotObserved',
    ],
    [
      'Stalled=True',
      withStatus({
        observedGeneration: 1,
        conditions: [
          condition('Ready', 'False', 'RolloutHalted'),
          condition('Stalled', 'True', 'RolloutHalted'),
        ],
      }),
      'Stalled',
      'RolloutHalted',
    ],
    [
      'Ready=True (a passed dry run too)',
      withStatus({ observedGeneration: 1, conditions: [condition('Ready', 'True', 'DryRunPassed')] }),
      'Ready',
      'DryRunPassed',
    ],
    [
      'a pause after the canaries',
      withStatus({
        observedGeneration: 1,
        phase: 'Paused',
        conditions: [
          condition('Ready', 'False', 'CanaryPaused'),
          condition('Reconciling', 'True', 'CanaryPaused'),
        ],
      }),
      'Paused',
      'CanaryPaused',
    ],
    [
      'a rollout in progress',
      withStatus({
        observedGeneration: 1,
        phase: 'Progressing',
        conditions: [
          condition('Ready', 'False', 'RolloutProgressing'),
          condition('Reconciling', 'True', 'RolloutProgressing'),
        ],
      }),
      'Progressing',
      'RolloutProgressing',
    ],
  ])('%s → %s (%s)', (_name, release, state, reason) => {
    expect(releaseState(release)).toMatchObject({ state, reason });
  });
});

describe('renderHistory', () => {
  it('prints newest first, marks the current revision, and shows durations of finished ones', () => {
    expect(renderHistory(aStalledRelease(), NOW).split('\n')).toEqual([
      'NUMBER   REVISION   VERSION   OUTCOME      STARTED   DURATION   MESSAGE',
      '2        rev-new*   2.0.0     Halted       6m ago    60s        node-10 rolled back',
      '1        rev-old    1.0.0     Superseded   2d ago    <none>',
      '',
      '* the revision the release is on now',
    ]);
  });

  it('marks only the newest entry of the current revision when an older status lists it twice', () => {
    const release = aStalledRelease();
    const history = release.status?.history ?? [];
    release.status = { ...release.status, history: [...history, { ...history[0]!, number: 0 }] };
    const marked = renderHistory(release, NOW)
      .split('\n')
      .filter((l) => l.includes('rev-new*'));
    expect(marked).toHaveLength(1);
  });

  it('says so when a release has no history yet', () => {
    const release = parsedRelease(aRelease().named('fresh'));
    expect(renderHistory(release, NOW)).toBe(
      'No history for pluginrelease "fresh" in namespace "default" yet.',
    );
  });
});
