// The build the image runs (scripts/build.ts: minified, its dependencies tree-shaken) does what the
// sources do: its controller and agent roll a plugin out, refuse a corrupt artifact with its named
// reason while the active version keeps serving, and stop cleanly. The other e2e files run the sources.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevCluster, startDevCluster } from '../../dev/cluster/index.ts';
import { stageEcho } from '../../dev/demo/echo.ts';
import { build } from '../../scripts/build.ts';
import { KeeperClient } from '../../src/agent/front/keeper.ts';
import { stopOrphan } from '../../src/agent/runtime/index.ts';
import { API_VERSION, NodeReason, type PluginRelease } from '../../src/api/index.ts';
import { createKubeClients, type KubeClients, loadKubeConfig } from '../../src/kube/index.ts';
import { exited, freePort, until } from '../support/processes.ts';

const REPO = join(import.meta.dirname, '../..');

let dir: string;
let cluster: DevCluster;
let clients: KubeClients;
const children: ChildProcess[] = [];

function start(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [join(dir, 'app', 'bin', 'plugin-release.js'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.resume();
  children.push(child);
  return child;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plugin-release-build-'));
  await build(join(dir, 'app'));
  await symlink(join(REPO, 'node_modules'), join(dir, 'app', 'node_modules'));
  cluster = await startDevCluster({ nodes: 1, logger: pino({ level: 'silent' }) });
  clients = createKubeClients(loadKubeConfig(cluster.kubeconfigPath));
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  // The keeper and plugin processes outlive their agents by design; this test owns them, so it stops them.
  for (const node of cluster?.nodes ?? []) {
    const keeper = await KeeperClient.connect(node.root).catch(() => undefined);
    const pid = (await keeper?.hello().catch(() => undefined))?.pid;
    keeper?.close();
    if (pid) process.kill(pid, 'SIGTERM');
    const runs = join(node.root, 'plugins', 'echo', 'run');
    const dirs = await readdir(runs).catch(() => []);
    await Promise.all(dirs.map((d) => stopOrphan(join(runs, d), 1000)));
  }
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the build the image runs', () => {
  it('rolls a plugin out, refuses a corrupt artifact by its reason, and stops on SIGTERM', async () => {
    const port = await freePort();
    const flags = ['--kubeconfig', cluster.kubeconfigPath, '--log-level', 'warn'];
    start(['controller', ...flags, '--metrics-addr', `127.0.0.1:${port}`]);
    const node = cluster.nodes[0]!;
    const staging = join(cluster.dir, 'staging');
    start(['agent', ...flags, '--node', node.name, '--root', node.root, '--staging-root', staging]);

    const v1 = await stageEcho(join(staging, 'echo', '1.0.0'), '1.0.0');
    await clients.releases.create({
      apiVersion: API_VERSION,
      kind: 'PluginRelease',
      metadata: { name: 'echo', namespace: 'default' },
      spec: {
        plugin: 'echo',
        version: '1.0.0',
        artifact: { path: v1.path, digest: v1.digest, entrypoint: 'plugin' },
        health: { probes: [{ grpc: {}, periodSeconds: 1 }] },
        activation: { drainSeconds: 1 },
      },
    } as PluginRelease);
    const ready = await until('the release to be Ready', async () => {
      const r = await clients.releases.get({ namespace: 'default', name: 'echo' });
      return r.status?.phase === 'Ready' ? r : undefined;
    });
    expect(ready.status?.ready).toBe('1/1');
    const activation = { namespace: 'default', name: `echo-${node.name}` };
    const serving = (await clients.activations.get(activation)).status?.activeRevision;
    expect(serving).toBeTruthy();

    // 2.0.0 names a digest its bytes do not have.
    const v2 = await stageEcho(join(staging, 'echo', '2.0.0'), '2.0.0');
    await clients.releases.replace({
      ...ready,
      spec: {
        ...ready.spec,
        version: '2.0.0',
        artifact: { ...ready.spec.artifact!, path: v2.path, digest: `sha256:${'0'.repeat(64)}` },
      },
    });
    const refused = await until('the agent to refuse 2.0.0', async () => {
      const a = await clients.activations.get(activation);
      return a.status?.reason === NodeReason.DigestMismatch ? a : undefined;
    });
    expect(refused.status).toMatchObject({
      message: expect.stringContaining(v2.digest),
      activeRevision: serving,
    });

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/pluginrelease_reconcile_duration_seconds_count\{[^}]*\} [1-9]/);
    for (const child of children) {
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
    }
  }, 90_000);
});
