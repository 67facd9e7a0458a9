// The controller's lean caches: the planner and status aggregation decide the same from a lean
// activation as from the full object, and shared values are one frozen instance.
import { describe, expect, it } from 'vitest';
import {
  ConditionType,
  NodeReason,
  type PluginActivation,
  type PluginRelease,
  revisionOf,
} from '../../../src/api/index.ts';
import { desiredActivation, type NodeInfo, type Plan, plan } from '../../../src/controller/planner.ts';
import { releaseStatus } from '../../../src/controller/status.ts';
import { leanActivation, leanNode, Sharing } from '../../../src/kube/lean.ts';
import type { KubeNode } from '../../../src/kube/types.ts';
import { aRelease, parsedRelease } from '../../support/builders.ts';

const NOW = new Date('2026-11-23T12:00:00.000Z');
const condition = (type: string, status: 'True' | 'False', reason: string) => ({
  type,
  status,
  reason,
  message: `a long sentence for people about ${reason}, which the controller never reads`,
  lastTransitionTime: '2026-11-23T11:59:00Z',
  observedGeneration: 1,
});

/** An activation on `node` with everything an agent writes into its status. */
function reported(release: PluginRelease, node: string, phase: string, reason: string): PluginActivation {
  const a = desiredActivation(
    release,
    revisionOf(release.spec),
    node,
    undefined,
    new Date(NOW.getTime() - 60_000),
  );
  a.metadata = {
    ...a.metadata,
    uid: `uid-${node}`,
    resourceVersion: '42',
    generation: 1,
    creationTimestamp: '2026-11-23T11:58:00Z',
    finalizers: ['pluginrelease.io/cleanup'],
    managedFields: [{ manager: 'plugin-release-agent', operation: 'Update' }],
  } as PluginActivation['metadata'];
  a.status = {
    observedGeneration: 1,
    phase: phase as NonNullable<PluginActivation['status']>['phase'],
    reason,
    message: `${reason} on ${node}`,
    revision: a.spec.revision,
    activeRevision: phase === 'Active' ? a.spec.revision : 'r0',
    previousRevision: 'r0',
    handshake: { coreProtocol: 1, appProtocol: 1, network: 'unix', address: '/run/p.sock' },
    attempts: 2,
    restarts: 1,
    lastExit: 'exited 1 at 11:59 with stderr lines',
    lastTransitionTime: '2026-11-23T11:59:30Z',
    conditions: [
      condition(ConditionType.Ready, phase === 'Active' ? 'True' : 'False', reason),
      condition('Probed', 'True', 'ProbeSucceeded'),
    ],
  } as PluginActivation['status'];
  return a;
}

const release = parsedRelease(aRelease().withMaxUnavailable(2));
const nodes: NodeInfo[] = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5'].map((name) => ({
  name,
  labels: {},
}));
const cases: { name: string; activations: PluginActivation[] }[] = [
  {
    name: 'a converged fleet, one node with its plugin down',
    activations: [
      reported(release, 'node-1', 'Active', NodeReason.Activated),
      reported(release, 'node-2', 'Active', NodeReason.PluginDown),
      reported(release, 'node-3', 'Active', NodeReason.Activated),
    ],
  },
  {
    name: 'a rollout halted by a rolled-back node',
    activations: [
      reported(release, 'node-1', 'Active', NodeReason.Activated),
      reported(release, 'node-2', 'RolledBack', NodeReason.ProbeFailed),
      reported(release, 'node-3', 'Probing', NodeReason.Probing),
    ],
  },
  {
    name: 'a node that left the fleet, and one failed',
    activations: [
      reported(release, 'node-4', 'Failed', NodeReason.RollbackFailed),
      reported(release, 'node-9', 'Active', NodeReason.Activated),
    ],
  },
];

/** What a reconcile does with a plan: the writes and the release status. */
function decisions(p: Plan) {
  const identity = (a: PluginActivation) => ({ metadata: a.metadata, spec: a.spec });
  return {
    verdict: p.verdict,
    create: p.create.map(identity),
    update: p.update.map(identity),
    delete: p.delete.map((a) => a.metadata.name),
    status: releaseStatus(release, p, NOW),
  };
}

describe('leanActivation', () => {
  it.each(cases)('plans and aggregates the same from lean activations: $name', ({ activations }) => {
    const lean = activations.map(leanActivation(new Sharing()));
    const input = { release, nodes, others: [], now: NOW };
    // Without a transform the informer caches objects without managedFields too.
    const cached = structuredClone(activations).map((a) => {
      const { managedFields: _, ...metadata } = a.metadata as typeof a.metadata & { managedFields?: unknown };
      return { ...a, metadata };
    });
    expect(decisions(plan({ ...input, activations: lean }))).toEqual(
      decisions(plan({ ...input, activations: cached })),
    );
  });

  it('drops what only the agent and people read, and managedFields', () => {
    const [lean] = [reported(release, 'node-1', 'Active', NodeReason.Activated)].map(
      leanActivation(new Sharing()),
    );
    expect(lean?.status).not.toHaveProperty('handshake');
    expect(lean?.status).not.toHaveProperty('lastExit');
    expect(lean?.status?.conditions?.[0]).toEqual({
      type: ConditionType.Ready,
      status: 'True',
      reason: NodeReason.Activated,
    });
    expect(lean?.metadata).not.toHaveProperty('managedFields');
    expect(lean?.metadata.finalizers).toEqual(['pluginrelease.io/cleanup']);
  });

  it('shares one frozen spec part and one string between activations of a release', () => {
    const sharing = new Sharing();
    const [a, b] = ['node-1', 'node-2'].map((n) =>
      leanActivation(sharing)(reported(release, n, 'Active', NodeReason.Activated)),
    );
    expect(a?.spec.artifact).toBe(b?.spec.artifact);
    expect(Object.isFrozen(a?.spec.artifact)).toBe(true);
    expect(a?.metadata.ownerReferences).toBe(b?.metadata.ownerReferences);
    expect(() => {
      (a!.spec.artifact as { path: string }).path = '/elsewhere';
    }).toThrow(TypeError);
  });
});

describe('leanNode', () => {
  it('keeps a Node’s identity and labels only', () => {
    const node: KubeNode = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-1', uid: 'u1', resourceVersion: '3', labels: { zone: 'a' } },
      spec: { unschedulable: true },
      status: { conditions: [{ type: 'Ready', status: 'True' }], images: ['a', 'b'] },
    };
    expect(leanNode(new Sharing())(node)).toEqual({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-1', uid: 'u1', resourceVersion: '3', labels: { zone: 'a' } },
    });
  });
});
