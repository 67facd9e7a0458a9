// End to end: the controller and real agents roll releases of the example plugin out over five nodes.
// Runs on the dev cluster; with E2E_REAL_CLUSTER=1 and KUBECONFIG set, against that cluster.
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Annotations, PluginReleaseSpec, revisionOf } from '../../src/api/index.ts';
import {
  activationsOf,
  aPlugin,
  apply,
  aWorld,
  condition,
  HAS_KUBECTL,
  maxInFlight,
  phasesOf,
  recordActivations,
  serving,
  until,
  type World,
} from './support.ts';

let world: World;
const NODES = 5;
const everyNode = (value: string) => Array.from({ length: world.fleet.agents.length }, () => value);

beforeAll(async () => {
  world = await aWorld(NODES);
}, 60_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

describe('a rollout', { timeout: 120_000 }, () => {
  it('takes every node through Staged, Probing and Active, and kubectl sees READY 5/5', async () => {
    const plugin = aPlugin(world, 'alpha');
    const recorder = recordActivations(world, 'alpha');
    await recorder.synced();
    const spec = await plugin.spec('1.0.0');
    await apply(world, 'alpha', spec);
    const r = await until(world, 'alpha', (x) => x.status?.phase === 'Ready');
    await recorder.stop();
    expect(condition(r, 'Ready')).toMatchObject({ status: 'True', reason: 'RolloutComplete' });
    expect(condition(r, 'Reconciling')).toBeUndefined();
    const revision = revisionOf(PluginReleaseSpec.parse(spec));
    for (const { node } of world.fleet.agents) {
      expect(phasesOf(recorder.seen, node, revision)).toEqual(['Staged', 'Probing', 'Active']);
    }
    expect(await serving(world, 'alpha')).toEqual(everyNode('1.0.0'));
    if (HAS_KUBECTL) {
      expect(await world.kubectl('wait', '--for=condition=Ready', 'plr/alpha', '--timeout=30s')).toMatch(
        /pluginrelease.pluginrelease.io\/alpha condition met/,
      );
      expect(await world.kubectl('get', 'plr', 'alpha')).toMatch(
        /alpha\s+alpha\s+1\.0\.0\s+5\/5\s+5\s+Ready/,
      );
    }
  });

  it('never has more than maxUnavailable activations in flight', async () => {
    const plugin = aPlugin(world, 'bravo');
    await apply(world, 'bravo', await plugin.spec('1.0.0'));
    await until(world, 'bravo', (x) => x.status?.phase === 'Ready');
    const recorder = recordActivations(world, 'bravo');
    await recorder.synced();
    const v2 = await plugin.spec('2.0.0', { rollout: { maxUnavailable: 2 } });
    await apply(world, 'bravo', v2);
    await until(world, 'bravo', (x) => x.status?.phase === 'Ready');
    await recorder.stop();
    expect(maxInFlight(recorder.seen, revisionOf(PluginReleaseSpec.parse(v2)))).toBe(2);
  });

  it('keeps the previous version serving when the canary rejects a broken release, touching no other node', async () => {
    const plugin = aPlugin(world, 'charlie');
    const v1 = await plugin.spec('1.0.0');
    await apply(world, 'charlie', v1);
    await until(world, 'charlie', (x) => x.status?.phase === 'Ready');
    await apply(world, 'charlie', await plugin.spec('2.0.0-broken', { rollout: { canary: { nodes: 1 } } }));
    const r = await until(world, 'charlie', (x) => x.status?.phase === 'Stalled');
    const canary = world.fleet.agents[0]?.node;
    expect(condition(r, 'Ready')?.status).toBe('False');
    expect(condition(r, 'Stalled')).toMatchObject({ status: 'True', reason: 'RolloutHalted' });
    expect(condition(r, 'Stalled')?.message).toMatch(new RegExp(`${canary} \\(ProbeFailed: .*grpc`));
    expect(condition(r, 'RolledBack')).toMatchObject({ status: 'True', reason: 'NodeRolledBack' });
    expect(r.status?.failedNodes).toEqual([
      expect.objectContaining({ node: canary, phase: 'RolledBack', reason: 'ProbeFailed' }),
    ]);
    expect(r.status?.history?.map((h) => [h.version, h.outcome])).toEqual([
      ['2.0.0-broken', 'Halted'],
      ['1.0.0', 'Complete'],
    ]);
    const untouched = (await activationsOf(world, 'charlie')).slice(1);
    expect(untouched.map((a) => a.spec.revision)).toEqual(
      untouched.map(() => revisionOf(PluginReleaseSpec.parse(v1))),
    );
    expect(await serving(world, 'charlie')).toEqual(everyNode('1.0.0'));
    // Events are recorded in the background: wait for the last one.
    const core = world.fleet.clients.kubeConfig.makeApiClient(CoreV1Api);
    const want = ['NodeActivated', 'NodeRolledBack', 'RolloutComplete', 'RolloutHalted', 'RolloutStarted'];
    let reasons: string[] = [];
    for (let i = 0; i < 50 && reasons.join() !== want.join(); i++) {
      const events = await core.listNamespacedEvent({
        namespace: world.namespace,
        fieldSelector: 'involvedObject.name=charlie',
      });
      reasons = [...new Set(events.items.map((e) => e.reason ?? ''))].sort();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(reasons).toEqual(want);
  });

  it('returns already-activated nodes to the previous revision when a later wave fails (RollbackFleet)', async () => {
    const plugin = aPlugin(world, 'delta');
    const v1 = await plugin.spec('1.0.0');
    await apply(world, 'delta', v1);
    await until(world, 'delta', (x) => x.status?.phase === 'Ready');
    const [first, second, third] = world.fleet.agents.map((a) => a.node);
    // 2.0.0 is healthy on the first two nodes only: the third wave fails.
    const v2 = await plugin.spec(
      '2.0.0',
      { rollout: { maxUnavailable: 1, failurePolicy: 'RollbackFleet' } },
      [first ?? '', second ?? ''],
    );
    await apply(world, 'delta', v2);
    const r = await until(
      world,
      'delta',
      (x) => x.status?.phase === 'Stalled' && x.status?.nodes?.rolledBack === 3,
    );
    expect(condition(r, 'Stalled')).toMatchObject({ status: 'True', reason: 'FleetRolledBack' });
    expect(r.status?.failedNodes?.map((f) => f.node)).toEqual([third]);
    const activations = await activationsOf(world, 'delta');
    const v1Revision = revisionOf(PluginReleaseSpec.parse(v1));
    for (const a of activations.slice(0, 2)) {
      expect(a.status).toMatchObject({ reason: 'RolledBackToSnapshot', activeRevision: v1Revision });
    }
    expect(await serving(world, 'delta')).toEqual(everyNode('1.0.0'));
  });

  it('retries a failed revision when the retry-at annotation changes', async () => {
    const plugin = aPlugin(world, 'echo');
    await apply(world, 'echo', await plugin.spec('1.0.0-broken'));
    const n = world.fleet.agents.length;
    const failed = await until(world, 'echo', (x) => x.status?.failedNodes?.length === n);
    expect(failed.status?.retryAt).toBeUndefined();
    await apply(world, 'echo', await plugin.spec('1.0.0-broken'), { [Annotations.retryAt]: '1' });
    const retried = await until(
      world,
      'echo',
      (x) => x.status?.retryAt === '1' && x.status?.failedNodes?.length === n,
    );
    expect((await activationsOf(world, 'echo')).map((a) => a.status?.retryAt)).toEqual(everyNode('1'));
    expect(condition(retried, 'Stalled')).toMatchObject({ status: 'True', reason: 'RolloutHalted' });
  });

  it('probes every node in a dry run and changes no active revision', async () => {
    const plugin = aPlugin(world, 'foxtrot');
    await apply(world, 'foxtrot', await plugin.spec('1.0.0'));
    await until(world, 'foxtrot', (x) => x.status?.phase === 'Ready');
    const before = (await activationsOf(world, 'foxtrot')).map((a) => a.status?.activeRevision);
    await apply(world, 'foxtrot', await plugin.spec('2.0.0', { dryRun: true }));
    const passed = await until(world, 'foxtrot', (x) => x.status?.phase === 'Probed');
    expect(condition(passed, 'Probed')).toMatchObject({ status: 'True', reason: 'DryRunPassed' });
    expect(passed.status?.nodes?.probed).toBe(world.fleet.agents.length);
    expect((await activationsOf(world, 'foxtrot')).map((a) => a.status?.activeRevision)).toEqual(before);
    expect(await serving(world, 'foxtrot')).toEqual(everyNode('1.0.0'));

    await apply(world, 'foxtrot', await plugin.spec('3.0.0-broken', { dryRun: true }));
    const n = world.fleet.agents.length;
    const failed = await until(
      world,
      'foxtrot',
      (x) => condition(x, 'Probed')?.status === 'False' && x.status?.failedNodes?.length === n,
    );
    expect(condition(failed, 'Probed')?.reason).toBe('DryRunFailed');
    expect((await activationsOf(world, 'foxtrot')).map((a) => a.status?.activeRevision)).toEqual(before);
  });
});
