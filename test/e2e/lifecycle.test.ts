// End to end: the lifecycle after a rollout. Deleting a release uninstalls its plugin from every node
// (cascade) or leaves it serving (--cascade=orphan), a deletion cancels an attempt mid-probe, undo rolls
// the fleet back to the previous revision, abort returns the nodes a rollout reached, and a node past
// its progress deadline rejoins by itself.
// Runs on the dev cluster; with E2E_REAL_CLUSTER=1 and KUBECONFIG set, against that cluster.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTraffic } from '../../dev/demo/traffic.ts';
import { startAgent } from '../../src/agent/daemon.ts';
import { PluginReleaseSpec, type PluginReleaseSpecInput, revisionOf } from '../../src/api/index.ts';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { until } from '../support/processes.ts';
import {
  activationsOf,
  aPlugin,
  apply,
  aWorld,
  condition,
  createdNodes,
  HAS_KUBECTL,
  REAL,
  serving,
  until as untilRelease,
  type World,
} from './support.ts';

const run = promisify(execFile);
const PLUGIN_CLI = join(import.meta.dirname, '../../bin/kubectl-pluginrelease.js');

let world: World;
const NODES = 3;
const everyNode = <T>(value: T) => Array.from({ length: NODES }, () => value);
const revision = (spec: PluginReleaseSpecInput) => revisionOf(PluginReleaseSpec.parse(spec));

/** What the controller and agents logged at warn or above, as parsed JSON records. */
const warnings: Array<{ msg?: string; err?: { stack?: string }; [key: string]: unknown }> = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) warnings.push(JSON.parse(line));
      done();
    },
  });
  world = await aWorld(NODES, pino({ level: 'warn' }, sink));
}, 60_000);

afterAll(async () => {
  await world?.close();
}, 60_000);

/** `kubectl pluginrelease …` as a user runs it, against this world's namespace. */
async function pluginrelease(...args: string[]): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    [PLUGIN_CLI, ...args, '--kubeconfig', world.fleet.kubeconfigPath, '-n', world.namespace],
    { timeout: 40_000 },
  );
  return stdout;
}

/** Pids of processes started from `plugin`'s directory under the agent root of each node. */
async function pluginProcesses(plugin: string): Promise<number[][]> {
  const all = await readdir('/proc');
  const cmdlines = await Promise.all(
    all
      .filter((p) => /^\d+$/.test(p))
      .map(async (pid) => ({
        pid: Number(pid),
        cmdline: (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' '),
      })),
  );
  return world.fleet.agents.map(({ root }) => {
    const dir = `${join(root, 'plugins', plugin)}/`;
    return cmdlines.filter((c) => c.cmdline.includes(dir)).map((c) => c.pid);
  });
}

/** `until` from test/support with the e2e suites' generous bound. */
const eventually = <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 45_000) =>
  until(what, check, timeoutMs);

const releaseGone = (name: string) =>
  eventually(
    `release ${name} to be gone`,
    async () =>
      (await world.fleet.clients.releases
        .get({ namespace: world.namespace, name })
        .then(() => undefined)
        .catch(() => true)) as true | undefined,
  );

const noActivations = (name: string) =>
  eventually(`the activations of ${name} to be gone`, async () =>
    (await activationsOf(world, name)).length === 0 ? true : undefined,
  );

/** Asserts that `plugin` left no trace on any node: no process, no front socket, no directory. */
async function expectUninstalled(plugin: string) {
  expect(await pluginProcesses(plugin)).toEqual(everyNode([]));
  for (const { node, root } of world.fleet.agents) {
    expect(existsSync(world.fleet.frontSocket(node, plugin)), `front socket on ${node}`).toBe(false);
    expect(existsSync(join(root, 'plugins', plugin)), `plugin directory on ${node}`).toBe(false);
  }
}

describe('deleting a release', { timeout: 120_000 }, () => {
  it('stops the plugin on every node, removes its front, and its activations go', async () => {
    const plugin = aPlugin(world, 'golf');
    await apply(world, 'golf', await plugin.spec('1.0.0'));
    await untilRelease(world, 'golf', (x) => x.status?.phase === 'Ready');
    expect(await serving(world, 'golf')).toEqual(everyNode('1.0.0'));
    expect((await pluginProcesses('golf')).map((pids) => pids.length > 0)).toEqual(everyNode(true));

    await world.fleet.clients.releases.delete({ namespace: world.namespace, name: 'golf' });
    await noActivations('golf');
    await expectUninstalled('golf');
  });

  it('with --cascade=orphan keeps the plugin serving, with 0 failed requests', async () => {
    const plugin = aPlugin(world, 'hotel');
    await apply(world, 'hotel', await plugin.spec('1.0.0'));
    await untilRelease(world, 'hotel', (x) => x.status?.phase === 'Ready');
    const traffic = startTraffic(world.fleet.agents.map((a) => world.fleet.frontSocket(a.node, 'hotel')));
    if (HAS_KUBECTL) await world.kubectl('delete', 'plr', 'hotel', '--cascade=orphan');
    else
      await world.fleet.clients.releases.delete(
        { namespace: world.namespace, name: 'hotel' },
        { propagationPolicy: 'Orphan' },
      );
    await releaseGone('hotel');
    // The orphans lose their owner reference and nothing else: give the agents time to misbehave.
    await eventually('the activations to be orphaned', async () => {
      const left = await activationsOf(world, 'hotel');
      return left.length === NODES && left.every((a) => !a.metadata.ownerReferences?.length)
        ? true
        : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const counts = await traffic.stop();
    expect(counts.failed, counts.lastErrors.join(', ')).toBe(0);
    expect(counts.ok).toBeGreaterThan(0);
    expect(await serving(world, 'hotel')).toEqual(everyNode('1.0.0'));

    // The orphans are the user's now: deleting them uninstalls the plugin.
    for (const a of await activationsOf(world, 'hotel'))
      await world.fleet.clients.activations.delete({
        namespace: world.namespace,
        name: a.metadata.name ?? '',
      });
    await noActivations('hotel');
    await expectUninstalled('hotel');
  });

  it('mid-probe stops the candidate, and no node serves the deleted revision', async () => {
    const plugin = aPlugin(world, 'india');
    await apply(world, 'india', await plugin.spec('1.0.0'));
    await untilRelease(world, 'india', (x) => x.status?.phase === 'Ready');
    // A long soak keeps every candidate in Probing.
    const v2 = await plugin.spec('2.0.0', {
      health: { probes: [{ grpc: {}, periodSeconds: 1 }], soakSeconds: 300 },
    });
    await apply(world, 'india', v2);
    await eventually('every node to probe 2.0.0', async () => {
      const list = await activationsOf(world, 'india');
      const probing = list.filter(
        (a) => a.status?.revision === revision(v2) && a.status?.phase === 'Probing',
      );
      return probing.length === NODES ? true : undefined;
    });
    // Both versions run on every node: the active one and the candidate.
    expect((await pluginProcesses('india')).map((pids) => pids.length)).toEqual(everyNode(2));

    const before = warnings.length;
    await world.fleet.clients.releases.delete({ namespace: world.namespace, name: 'india' });
    await noActivations('india');
    await expectUninstalled('india');
    // A deletion is no failure: no "could not report progress … not found", no stack trace.
    expect(warnings.slice(before).map((w) => w.msg)).toEqual([]);
  });
});

describe('undo and abort', { timeout: 150_000 }, () => {
  it('undo rolls 1.0.0 → 2.0.0 back to 1.0.0 on every node, with 0 failed requests', async () => {
    const plugin = aPlugin(world, 'juliet');
    const v1 = await plugin.spec('1.0.0');
    await apply(world, 'juliet', v1);
    await untilRelease(world, 'juliet', (x) => x.status?.phase === 'Ready');
    await apply(world, 'juliet', await plugin.spec('2.0.0'));
    await untilRelease(world, 'juliet', (x) => x.status?.phase === 'Ready' && x.spec.version === '2.0.0');
    expect(await serving(world, 'juliet')).toEqual(everyNode('2.0.0'));

    const traffic = startTraffic(world.fleet.agents.map((a) => world.fleet.frontSocket(a.node, 'juliet')));
    expect(await pluginrelease('undo', 'juliet')).toMatch(/rolled back to history entry 1, version 1\.0\.0/);
    const r = await untilRelease(
      world,
      'juliet',
      (x) => x.status?.phase === 'Ready' && x.status?.revision === revision(v1),
      60_000,
    );
    const counts = await traffic.stop();
    expect(counts.failed, counts.lastErrors.join(', ')).toBe(0);
    expect(await serving(world, 'juliet')).toEqual(everyNode('1.0.0'));
    expect(r.status?.history?.map((h) => [h.number, h.version, h.outcome])).toEqual([
      [3, '1.0.0', 'Complete'],
      [2, '2.0.0', 'Complete'],
    ]);
    expect(r.status?.nodes).toMatchObject({ serving: NODES, upToDate: NODES });
    // Each node's conditions say which generation of its activation they describe.
    for (const a of await activationsOf(world, 'juliet')) {
      expect(a.status?.conditions?.map((c) => c.observedGeneration)).toEqual(
        a.status?.conditions?.map(() => a.metadata.generation),
      );
    }
    if (HAS_KUBECTL) {
      expect(await world.kubectl('get', 'plr', 'juliet')).toMatch(
        /juliet\s+juliet\s+1\.0\.0\s+3\/3\s+3\s+Ready/,
      );
    }
  });

  it('abort mid-rollout returns the nodes it reached to the stable revision, the candidate mid-probe included', async () => {
    const plugin = aPlugin(world, 'kilo');
    const v1 = await plugin.spec('1.0.0');
    await apply(world, 'kilo', v1);
    await untilRelease(world, 'kilo', (x) => x.status?.phase === 'Ready');
    // One node at a time, each soaking long enough to be caught mid-probe.
    const v2 = await plugin.spec('2.0.0', {
      health: { probes: [{ grpc: {}, periodSeconds: 1 }], soakSeconds: 6 },
      rollout: { maxUnavailable: 1 },
    });
    await apply(world, 'kilo', v2);
    const [first, second, third] = world.fleet.agents.map((a) => a.node);
    await eventually(
      `${first} to serve 2.0.0 and ${second} to probe it`,
      async () => {
        const [a1, a2] = await activationsOf(world, 'kilo');
        return a1?.status?.phase === 'Active' &&
          a1.status.activeRevision === revision(v2) &&
          a2?.spec.revision === revision(v2) &&
          a2.status?.phase === 'Probing'
          ? true
          : undefined;
      },
      60_000,
    );
    const traffic = startTraffic(world.fleet.agents.map((a) => world.fleet.frontSocket(a.node, 'kilo')));
    expect(await pluginrelease('abort', 'kilo')).toMatch(/abort requested/);
    const r = await untilRelease(
      world,
      'kilo',
      (x) =>
        condition(x, 'Stalled')?.reason === 'RolloutAborted' &&
        x.status?.nodes?.serving === NODES &&
        x.status?.nodes?.upToDate === 0,
      60_000,
    );
    const counts = await traffic.stop();
    expect(counts.failed, counts.lastErrors.join(', ')).toBe(0);
    expect(await serving(world, 'kilo')).toEqual(everyNode('1.0.0'));
    const activations = await activationsOf(world, 'kilo');
    expect(activations.map((a) => [a.spec.nodeName, a.spec.rollbackTo?.revision])).toEqual([
      [first, revision(v1)],
      [second, revision(v1)],
      [third, undefined],
    ]);
    expect(activations[2]?.spec.revision).toBe(revision(v1));
    expect(r.status?.history?.[0]).toMatchObject({ version: '2.0.0', outcome: 'Aborted' });
    // The candidates are gone (the retired 2.0.0 one after its drain): one 1.0.0 process per node.
    await eventually('one process per node', async () =>
      (await pluginProcesses('kilo')).every((pids) => pids.length === 1) ? true : undefined,
    );
  });
});

describe('a node past its progress deadline', { timeout: 150_000 }, () => {
  it('rejoins by itself when its agent comes back: Stalled, then Ready with no retry, and an Event says so', async () => {
    const plugin = aPlugin(world, 'mike');
    await apply(world, 'mike', await plugin.spec('1.0.0'));
    await untilRelease(world, 'mike', (x) => x.status?.phase === 'Ready');
    // The last node's agent goes away (its plugin keeps serving); nobody acts on its activation.
    const last = world.fleet.agents.at(-1)!;
    await last.agent.stop(false);
    await apply(world, 'mike', await plugin.spec('2.0.0', { rollout: { progressDeadlineSeconds: 10 } }));
    const stalled = await untilRelease(
      world,
      'mike',
      (x) => x.status?.failedNodes?.[0]?.reason === 'ProgressDeadlineExceeded',
      60_000,
    );
    expect(condition(stalled, 'Stalled')).toMatchObject({ status: 'True', reason: 'RolloutHalted' });
    expect(condition(stalled, 'Stalled')?.message).toMatch(/rejoins the rollout by itself/);

    last.agent = await startAgent({
      kubeConfig: loadKubeConfig(world.fleet.kubeconfigPath),
      nodeName: last.node,
      root: last.root,
      stagingRoot: world.fleet.stagingRoot,
      logger: pino({ level: 'silent' }),
    });
    const ready = await untilRelease(world, 'mike', (x) => x.status?.phase === 'Ready', 60_000);
    expect(ready.metadata.annotations?.['pluginrelease.io/retry-at']).toBeUndefined();
    expect(await serving(world, 'mike')).toEqual(everyNode('2.0.0'));
    const core = world.fleet.clients.kubeConfig.makeApiClient(CoreV1Api);
    await eventually('the RolloutResumed Event', async () => {
      const events = await core.listNamespacedEvent({
        namespace: world.namespace,
        fieldSelector: 'involvedObject.name=mike',
      });
      return events.items.some((e) => e.reason === 'RolloutResumed') || undefined;
    });
  });
});

// On a real cluster only Nodes the suite created itself may be deleted.
const OWN_NODES = !REAL || createdNodes(NODES) >= NODES;

describe.runIf(OWN_NODES)('a node that is gone', { timeout: 120_000 }, () => {
  it('does not hold up the deletion of its activation', async () => {
    const plugin = aPlugin(world, 'lima');
    await apply(world, 'lima', await plugin.spec('1.0.0'));
    await untilRelease(world, 'lima', (x) => x.status?.phase === 'Ready');
    // The last node's agent stops for good and its Node object is deleted, as when a machine is retired.
    const last = world.fleet.agents.at(-1)!;
    await last.agent.stop(true);
    const core = world.fleet.clients.kubeConfig.makeApiClient(CoreV1Api);
    await core.deleteNode({ name: last.node });

    await world.fleet.clients.releases.delete({ namespace: world.namespace, name: 'lima' });
    await noActivations('lima');
    for (const { node } of world.fleet.agents.slice(0, -1))
      expect(existsSync(world.fleet.frontSocket(node, 'lima')), `front socket on ${node}`).toBe(false);
  });
});
