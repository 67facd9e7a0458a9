// The informer against the dev cluster: sync, events, label selectors, dropped watches, 5xx, 410 relists, restarts.
import { afterEach, describe, expect, it } from 'vitest';
import { Labels, type PluginActivation } from '../../../src/api/index.ts';
import type { Informer } from '../../../src/kube/index.ts';
import { anActivation, aWorld, eventually, NAMESPACE, type World } from './support.ts';

let world: World | undefined;
let informer: Informer<PluginActivation> | undefined;

afterEach(async () => {
  await informer?.stop();
  informer = undefined;
  await world?.cluster.stop();
  world = undefined;
});

/** Resolves once the informer's watch stream is open: it has delivered a create made after the sync. */
async function watchIsLive(w: World, inf: Informer<PluginActivation>): Promise<void> {
  const name = `probe-${Math.random().toString(36).slice(2, 8)}`;
  await w.clients.activations.create(anActivation(name));
  await eventually('the watch to deliver a fresh create', () => inf.get(`${NAMESPACE}/${name}`));
}

function recordEvents(inf: Informer<PluginActivation>): string[] {
  const events: string[] = [];
  inf.on({
    add: (o) => events.push(`add ${o.metadata.name}`),
    update: (_old, o) => events.push(`update ${o.metadata.name}`),
    delete: (o) => events.push(`delete ${o.metadata.name}`),
  });
  return events;
}

describe('Informer on the dev cluster', () => {
  it('syncs existing objects, then sees creates, patches, status patches and deletes', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    await activations.create(anActivation('echo-node-1'));
    informer = world.clients.informer(activations, { namespace: NAMESPACE });
    const events = recordEvents(informer);
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    expect(informer.get(`${NAMESPACE}/echo-node-1`)?.spec.nodeName).toBe('node-1');

    await activations.create(anActivation('echo-node-2', 'node-2'));
    await activations.mergePatch(
      { namespace: NAMESPACE, name: 'echo-node-1' },
      { spec: { revision: 'rev-2' } },
    );
    await activations.patchStatus(
      { namespace: NAMESPACE, name: 'echo-node-1' },
      { status: { phase: 'Staged' } },
    );
    await activations.delete({ namespace: NAMESPACE, name: 'echo-node-2' });

    await eventually('the delete to arrive', () => events.includes('delete echo-node-2'));
    expect(events).toEqual([
      'add echo-node-1',
      'add echo-node-2',
      'update echo-node-1',
      'update echo-node-1',
      'delete echo-node-2',
    ]);
    const cached = informer.get(`${NAMESPACE}/echo-node-1`)!;
    expect(cached.spec.revision).toBe('rev-2');
    expect(cached.status?.phase).toBe('Staged');
    expect(informer.keys()).toEqual([`${NAMESPACE}/echo-node-1`]);
  });

  it('sees only the objects its label selector matches', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    await activations.create(anActivation('echo-node-1', 'node-1'));
    await activations.create(anActivation('echo-node-2', 'node-2'));
    informer = world.clients.informer(activations, { labelSelector: `${Labels.node}=node-2` });
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    await activations.create(anActivation('other-node-2', 'node-2'));
    await activations.create(anActivation('other-node-3', 'node-3'));
    await eventually('the matching create', () => informer?.get(`${NAMESPACE}/other-node-2`));
    expect(informer.keys().sort()).toEqual([`${NAMESPACE}/echo-node-2`, `${NAMESPACE}/other-node-2`]);
  });

  it('caches cluster-scoped Nodes by name', async () => {
    world = await aWorld();
    const { nodes } = world.clients;
    await nodes.create({ metadata: { name: 'node-a', labels: { pool: 'blue' } } });
    const nodeInformer = world.clients.informer(nodes, { labelSelector: 'pool=blue' });
    try {
      nodeInformer.start();
      await nodeInformer.waitForSync(AbortSignal.timeout(10_000));
      await nodes.create({ metadata: { name: 'node-b', labels: { pool: 'blue' } } });
      await nodes.create({ metadata: { name: 'node-c', labels: { pool: 'green' } } });
      await nodes.delete({ name: 'node-a' });
      await eventually(
        'node-b to arrive and node-a to go',
        () => nodeInformer.get('node-b') && !nodeInformer.get('node-a'),
      );
      expect(nodeInformer.keys()).toEqual(['node-b']);
      expect(nodeInformer.get('node-b')).toMatchObject({ apiVersion: 'v1', kind: 'Node' });
    } finally {
      await nodeInformer.stop();
    }
  });

  it('resumes after the server drops its watch, without relisting, and misses nothing', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    informer = world.clients.informer(activations, { namespace: NAMESPACE });
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    await activations.create(anActivation('before-drop'));
    await eventually('the first create', () => informer?.get(`${NAMESPACE}/before-drop`));
    const watchesBefore = informer.stats.watches;

    world.cluster.faults.dropWatches();
    await activations.create(anActivation('after-drop'));

    await eventually('the create made after the drop', () => informer?.get(`${NAMESPACE}/after-drop`));
    expect(informer.stats.watches).toBeGreaterThan(watchesBefore);
    expect(informer.stats.lists).toBe(1);
  });

  it('keeps retrying through 500s from the server and catches up', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    informer = world.clients.informer(activations, { namespace: NAMESPACE, initialBackoffMs: 20 });
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    await watchIsLive(world, informer);
    world.cluster.faults.failNext(3, 500);
    world.cluster.faults.dropWatches();
    await eventually('the informer to take all three 500s', () => informer!.stats.failures >= 3);
    await activations.create(anActivation('through-500s'));
    await eventually('the create made after the 500s', () => informer?.get(`${NAMESPACE}/through-500s`));
    expect(informer.stats.lists).toBe(1);
  });

  it('relists after 410 Gone when the resume version fell out of the watch history', async () => {
    world = await aWorld({ watchHistory: 5 });
    const { activations } = world.clients;
    await activations.create(anActivation('doomed'));
    informer = world.clients.informer(activations, { namespace: NAMESPACE, initialBackoffMs: 1_500 });
    const events = recordEvents(informer);
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    await watchIsLive(world, informer);

    // While the informer waits to re-watch, push more changes than the server keeps.
    world.cluster.faults.dropWatches();
    for (let i = 0; i < 8; i++) await activations.create(anActivation(`burst-${i}`));
    await activations.delete({ namespace: NAMESPACE, name: 'doomed' });

    await eventually('a relist after 410', () => informer!.stats.relistsAfterGone > 0, 15_000);
    await eventually('the cache to match the server', () => informer!.keys().length === 9);
    expect(informer.get(`${NAMESPACE}/doomed`)).toBeUndefined();
    expect(events).toContain('delete doomed');
    expect(events.filter((e) => e.startsWith('add burst-'))).toHaveLength(8);
  });

  it('survives an API server restart and catches up on what happened after it', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    informer = world.clients.informer(activations, { namespace: NAMESPACE, initialBackoffMs: 50 });
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    await watchIsLive(world, informer);
    const watchesBefore = informer.stats.watches;
    await world.cluster.restart();
    await activations.create(anActivation('after-restart'));
    await eventually('the create made after the restart', () => informer?.get(`${NAMESPACE}/after-restart`));
    expect(informer.stats.watches).toBeGreaterThan(watchesBefore);
  });
});
