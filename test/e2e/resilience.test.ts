// The controller and agents keep a rollout going through what a real API server does to clients: a
// dropped watch, 500s, 429s with Retry-After, a restart of the API server, and a restart of the
// controller itself. The rollout ends exactly as an undisturbed one would. Dev cluster only: the faults
// are injected through its programmatic API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aPlugin, apply, aWorld, REAL, serving, until, type World } from './support.ts';

let world: World;

beforeAll(async () => {
  if (!REAL) world = await aWorld(3);
}, 60_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(REAL)('a rollout under API server faults', { timeout: 120_000 }, () => {
  it('completes through a dropped watch, 500s, 429s, an API server restart and a controller restart', async () => {
    const cluster = world.fleet.cluster;
    if (!cluster) throw new Error('needs the dev cluster');
    const plugin = aPlugin(world, 'sturdy');
    await apply(world, 'sturdy', await plugin.spec('1.0.0'));
    await until(world, 'sturdy', (r) => r.status?.phase === 'Ready');

    // One node at a time, so the faults land in the middle of the rollout.
    await apply(world, 'sturdy', await plugin.spec('2.0.0', { rollout: { maxUnavailable: 1 } }));
    await pause(500);
    cluster.faults.dropWatches();
    await pause(500);
    cluster.faults.failNext(5, 500);
    await pause(500);
    cluster.faults.failNext(5, 429, 1);
    await pause(1000);
    await cluster.restart();
    await pause(500);
    await world.fleet.restartController();

    const r = await until(
      world,
      'sturdy',
      (x) => x.status?.phase === 'Ready' && x.status.history?.[0]?.version === '2.0.0',
      90_000,
    );
    expect(r.status?.ready).toBe('3/3');
    expect(r.status?.failedNodes).toEqual([]);
    expect(r.status?.history?.map((h) => [h.version, h.outcome])).toEqual([
      ['2.0.0', 'Complete'],
      ['1.0.0', 'Complete'],
    ]);
    expect(await serving(world, 'sturdy')).toEqual(['2.0.0', '2.0.0', '2.0.0']);
  });
});
