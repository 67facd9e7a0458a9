// End to end, runtime Host: the controller and real agents roll configs and plugins out to a reference
// plugin host (a real server process) on each of three nodes, through the host's own try-activate API.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevCluster, startDevCluster } from '../../dev/cluster/index.ts';
import {
  API_VERSION,
  NODE_PLACEHOLDER,
  type PluginRelease,
  type PluginReleaseSpecInput,
} from '../../src/api/index.ts';
import { createKubeClients, type KubeClients, loadKubeConfig } from '../../src/kube/index.ts';
import { until as eventually, exited } from '../support/processes.ts';
import {
  type HostModule,
  hostConfig,
  hostPlugin,
  type ReferenceHost,
  startReferenceHost,
  treeOf,
} from '../support/reference-host.ts';
import { apply, aWorld, condition, until, type World } from './support.ts';

let world: World;
let base: string;
const hosts = new Map<string, ReferenceHost>();

beforeAll(async () => {
  world = await aWorld(3);
  base = await mkdtemp(join(tmpdir(), 'plr-h-'));
  for (const { node } of world.fleet.agents) hosts.set(node, await startReferenceHost(join(base, node)));
}, 60_000);

afterAll(async () => {
  await world?.close();
  for (const host of hosts.values()) await host.stop();
  await rm(base, { recursive: true, force: true });
}, 60_000);

const states = () => Promise.all([...hosts.values()].map((h) => h.state()));
const configs = async () => (await states()).map((s) => s.config);
const everyNode = <T>(value: T) => [...hosts.keys()].map(() => value);
/**
 * Under Halt a release is Stalled at its first failed node, while the rest of the wave still runs (and
 * may be mid-swap): what a test asserts of every node holds once none is in flight.
 */
const halted = (r: PluginRelease) => {
  const n = r.status?.nodes;
  return r.status?.phase === 'Stalled' && n !== undefined && n.pending + n.staged + n.probing === 0;
};

/** A Host release of `plugin` whose config is named `name` (and whose modules are `modules`). */
async function aHostRelease(
  plugin: string,
  name: string,
  modules?: HostModule[],
  extra: Partial<PluginReleaseSpecInput> = {},
): Promise<PluginReleaseSpecInput> {
  return {
    plugin,
    version: name,
    runtime: 'Host',
    host: {
      url: `unix://${join(base, NODE_PLACEHOLDER, 'admin.sock')}`,
      plugins: { dir: join(base, NODE_PLACEHOLDER, 'plugins') },
    },
    config: await hostConfig(join(world.fleet.stagingRoot, plugin, `${name}.json`), name, modules),
    activation: { verifySeconds: 3 },
    rollout: { maxUnavailable: '100%' },
    ...extra,
  };
}

describe('runtime Host on three nodes', { timeout: 120_000 }, () => {
  it('rolls a good config out: every host runs it', async () => {
    await apply(world, 'engine', await aHostRelease('engine', 'v1'));
    const r = await until(world, 'engine', (x) => x.status?.phase === 'Ready');
    expect(r.status?.ready).toBe('3/3');
    expect(await configs()).toEqual(everyNode('v1'));
  });

  it("rolls back a config the host refuses at try-activate, with the host's error, never changing any host", async () => {
    const before = await states();
    await apply(world, 'engine', await aHostRelease('engine', 'v2-unknown-type', [{ type: 'bad.type' }]));
    const r = await until(world, 'engine', halted);
    expect(r.status?.failedNodes).toHaveLength(3);
    for (const f of r.status?.failedNodes ?? []) {
      expect(f).toMatchObject({ phase: 'RolledBack', reason: 'TryActivateRejected' });
      expect(f.message).toContain('module type "bad.type" not found');
    }
    const after = await states();
    expect(after.map((s) => [s.config, s.activations])).toEqual(before.map((s) => [s.config, s.activations]));
  });

  it('restores the previous config when one builds but fails to start at activate', async () => {
    await apply(
      world,
      'engine',
      await aHostRelease('engine', 'v3-fails-start', [{ type: 'http.server', failStart: true }]),
    );
    const r = await until(world, 'engine', halted);
    expect(r.status?.failedNodes).toHaveLength(3);
    for (const f of r.status?.failedNodes ?? []) {
      expect(f).toMatchObject({ phase: 'RolledBack', reason: 'ActivateFailed' });
      expect(f.message).toMatch(/failed to start/);
    }
    expect(await configs()).toEqual(everyNode('v1'));
  });

  it('restores the previous config within verifySeconds when the host turns unhealthy after activation', async () => {
    const spec = await aHostRelease('engine', 'v4-sickens', [{ type: 'http.server', unhealthyAfterMs: 500 }]);
    await apply(world, 'engine', spec);
    const r = await until(world, 'engine', halted);
    expect(r.status?.failedNodes).toHaveLength(3);
    for (const f of r.status?.failedNodes ?? []) {
      expect(f).toMatchObject({ phase: 'RolledBack', reason: 'HostUnhealthy' });
    }
    const activations = await world.fleet.clients.activations.list(world.namespace, {
      labelSelector: 'pluginrelease.io/release=engine',
    });
    for (const a of activations.items) {
      const rolledBack = condition(a as unknown as PluginRelease, 'RolledBack');
      // The swap happened (the host ran v4) and was undone before the window closed.
      expect(rolledBack?.message).toMatch(/health checks in a row/);
    }
    expect(await configs()).toEqual(everyNode('v1'));
  });

  it('reports a dry run as Probed and changes nothing', async () => {
    const before = await states();
    await apply(world, 'engine', await aHostRelease('engine', 'v5', undefined, { dryRun: true }));
    const r = await until(world, 'engine', (x) => x.status?.phase === 'Probed');
    expect(condition(r, 'Probed')?.status).toBe('True');
    const after = await states();
    expect(after.map((s) => [s.config, s.activations, s.configDigest])).toEqual(
      before.map((s) => [s.config, s.activations, s.configDigest]),
    );
    expect(after.map((s, i) => s.tryActivations - (before[i]?.tryActivations ?? 0))).toEqual(everyNode(1));
  });

  it('installs a plugin into plugins.dir by the #114 sequence, and restores it byte for byte when its reload fails', async () => {
    const staging = join(world.fleet.stagingRoot, 'cache');
    const v1 = await hostPlugin(join(staging, 'v1'), {
      name: 'cache',
      version: 'v1',
      moduleTypes: ['cache.lru'],
    });
    const spec = (artifact: { path: string; digest: string }, version: string): PluginReleaseSpecInput => ({
      plugin: 'cache',
      version,
      runtime: 'Host',
      host: {
        url: `unix://${join(base, NODE_PLACEHOLDER, 'admin.sock')}`,
        plugins: { dir: join(base, NODE_PLACEHOLDER, 'plugins') },
      },
      artifact,
      activation: { verifySeconds: 1 },
      rollout: { maxUnavailable: '100%' },
    });
    await apply(world, 'cache', spec(v1, 'v1'));
    await until(world, 'cache', (x) => x.status?.phase === 'Ready');
    expect((await states()).map((s) => s.plugins.cache)).toEqual(everyNode('v1'));
    const trees = await Promise.all([...hosts.values()].map((h) => treeOf(join(h.pluginsDir, 'cache'))));
    for (const tree of trees) {
      expect(
        JSON.parse(Buffer.from(tree['.complete']?.split(' ')[2] ?? '', 'base64').toString()),
      ).toMatchObject({
        plugin: 'cache',
        digest: v1.digest,
      });
    }

    const v2 = await hostPlugin(join(staging, 'v2'), { name: 'cache', version: 'v2', failLoad: true });
    await apply(world, 'cache', spec(v2, 'v2'));
    const r = await until(world, 'cache', halted);
    expect(r.status?.failedNodes).toHaveLength(3);
    for (const f of r.status?.failedNodes ?? []) expect(f.reason).toBe('PluginReloadFailed');
    const after = await Promise.all([...hosts.values()].map((h) => treeOf(join(h.pluginsDir, 'cache'))));
    expect(after).toEqual(trees);
    expect((await states()).map((s) => s.plugins.cache)).toEqual(everyNode('v1'));
  });
});

describe('an agent SIGKILLed between the plugin swap and its verification', { timeout: 120_000 }, () => {
  const BIN = join(import.meta.dirname, '../../bin/plugin-release.js');
  let cluster: DevCluster;
  let clients: KubeClients;
  let dir: string;
  let host: ReferenceHost;
  const children: ChildProcess[] = [];
  const start = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const child = spawn(
      process.execPath,
      [BIN, ...args, '--kubeconfig', cluster.kubeconfigPath, '--log-level', 'warn'],
      {
        stdio: ['ignore', 'ignore', 'ignore'],
        env: { ...process.env, ...env },
      },
    );
    children.push(child);
    return child;
  };
  const agent = (env?: NodeJS.ProcessEnv) =>
    start(
      [
        'agent',
        '--node',
        'node-1',
        '--root',
        cluster.nodes[0]?.root ?? '',
        '--staging-root',
        join(dir, 'staging'),
      ],
      env,
    );

  beforeAll(async () => {
    cluster = await startDevCluster({ nodes: 1, logger: pino({ level: 'silent' }) });
    clients = createKubeClients(loadKubeConfig(cluster.kubeconfigPath));
    dir = await mkdtemp(join(tmpdir(), 'plr-hk-'));
    host = await startReferenceHost(join(dir, 'node-1'));
  }, 60_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await host?.stop();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('recovers to one consistent plugin directory: the snapshot restored, then the release installed whole', async () => {
    // The host came with v0 of the plugin, installed by hand: the first swap snapshots it.
    const v0 = await hostPlugin(join(host.pluginsDir, 'cache'), {
      name: 'cache',
      version: 'v0',
      moduleTypes: ['cache.lru'],
    });
    await host.stop();
    host = await startReferenceHost(join(dir, 'node-1'));
    const original = await treeOf(v0.path);
    const v1 = await hostPlugin(join(dir, 'staging', 'cache', 'v1'), {
      name: 'cache',
      version: 'v1',
      moduleTypes: ['cache.lru'],
    });

    start(['controller']);
    const crashing = agent({ PLUGIN_RELEASE_CRASH_AT: 'host:installed' });
    await clients.releases.create({
      apiVersion: API_VERSION,
      kind: 'PluginRelease',
      metadata: { name: 'cache', namespace: 'default' },
      spec: {
        plugin: 'cache',
        version: 'v1',
        runtime: 'Host',
        host: { url: host.url, plugins: { dir: host.pluginsDir } },
        artifact: v1,
        activation: { verifySeconds: 1 },
      },
    } as PluginRelease);
    await exited(crashing);
    expect(crashing.signalCode).toBe('SIGKILL');
    // Killed right after the swap: v1's files are live, the host never reloaded them.
    expect((await host.state()).plugins.cache).toBe('v0');

    agent();
    const ready = await eventually(
      'the release to be Ready',
      async () => {
        const r = await clients.releases.get({ namespace: 'default', name: 'cache' });
        return r.status?.phase === 'Ready' ? r : undefined;
      },
      60_000,
    );
    expect(ready.status?.ready).toBe('1/1');
    const live = await treeOf(join(host.pluginsDir, 'cache'));
    const { '.complete': marker, ...files } = live;
    expect(files).toEqual(await treeOf(v1.path));
    expect(marker).toBeDefined();
    expect((await host.state()).plugins.cache).toBe('v1');
    // What the crashed swap snapshotted was put back, then snapshotted again by the completed one.
    const snapshots = await treeOf(join(host.pluginsDir, '.previous'));
    const kept = Object.keys(snapshots).filter((p) => !p.includes('/'));
    expect(kept).toHaveLength(1);
    const snapshot = Object.fromEntries(
      Object.entries(snapshots)
        .filter(([p]) => p.startsWith(`${kept[0]}/`))
        .map(([p, v]) => [p.slice(`${kept[0]}/`.length), v]),
    );
    expect(snapshot).toEqual(original);
    expect(await treeOf(join(host.pluginsDir, '.staging'))).toEqual({});
  });
});
