// The controller and agents as the plain local processes an operator runs (`plugin-release controller`,
// `plugin-release agent`), against an API server a kubeconfig names: two agents on one machine do not
// interfere, an agent SIGKILLed mid-rollout recovers, and SIGTERM stops everything cleanly.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevCluster, startDevCluster } from '../../dev/cluster/index.ts';
import { stageEcho } from '../../dev/demo/echo.ts';
import { stopOrphan } from '../../src/agent/runtime/index.ts';
import { API_VERSION, type PluginRelease } from '../../src/api/index.ts';
import { createKubeClients, type KubeClients, loadKubeConfig } from '../../src/kube/index.ts';
import { exited, freePort, until } from '../support/processes.ts';

const BIN = join(import.meta.dirname, '../../bin/plugin-release.js');

let cluster: DevCluster;
let clients: KubeClients;
const children: ChildProcess[] = [];

function start(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.resume();
  child.stderr?.resume();
  children.push(child);
  return child;
}

function agent(node: string): ChildProcess {
  const n = cluster.nodes.find((x) => x.name === node);
  return start([
    'agent',
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--node',
    node,
    '--root',
    n?.root ?? '',
    '--staging-root',
    join(cluster.dir, 'staging'),
    '--log-level',
    'warn',
  ]);
}

beforeAll(async () => {
  cluster = await startDevCluster({ nodes: 2, logger: pino({ level: 'silent' }) });
  clients = createKubeClients(loadKubeConfig(cluster.kubeconfigPath));
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  // Plugin processes outlive their agents by design; this test owns them, so it stops them.
  for (const node of cluster?.nodes ?? []) {
    const runs = join(node.root, 'plugins', 'echo', 'run');
    const dirs = await readdir(runs).catch(() => []);
    await Promise.all(dirs.map((d) => stopOrphan(join(runs, d), 1000)));
  }
  await cluster?.stop();
});

describe('plugin-release as processes', () => {
  it('rolls out with a leader-elected controller and two agents, survives an agent SIGKILL, and stops on SIGTERM', async () => {
    const port = await freePort();
    const controller = start([
      'controller',
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--leader-elect',
      '--lease-namespace',
      'default',
      '--metrics-addr',
      `127.0.0.1:${port}`,
      '--log-level',
      'warn',
    ]);
    agent('node-1');
    let second = agent('node-2');
    await until('the controller to be ready', async () =>
      (await fetch(`http://127.0.0.1:${port}/readyz`)).ok ? true : undefined,
    );

    const v1 = await stageEcho(join(cluster.dir, 'staging', 'echo', '1.0.0'), '1.0.0');
    await clients.releases.create({
      apiVersion: API_VERSION,
      kind: 'PluginRelease',
      metadata: { name: 'echo', namespace: 'default' },
      spec: {
        plugin: 'echo',
        version: '1.0.0',
        artifact: { path: v1.path, digest: v1.digest, entrypoint: 'plugin' },
        health: { probes: [{ grpc: {}, periodSeconds: 1 }] },
        // A long verification window, so the agent below is killed in the middle of its activation.
        activation: { drainSeconds: 1, verifySeconds: 3 },
        rollout: { maxUnavailable: '100%' },
      },
    } as PluginRelease);

    await until('node-2 to probe', async () => {
      const a = await clients.activations.get({ namespace: 'default', name: 'echo-node-2' });
      return a.status?.phase === 'Probing' ? true : undefined;
    });
    second.kill('SIGKILL');
    await exited(second);
    second = agent('node-2');

    const ready = await until('the release to be Ready', async () => {
      const r = await clients.releases.get({ namespace: 'default', name: 'echo' });
      return r.status?.phase === 'Ready' ? r : undefined;
    });
    expect(ready.status?.ready).toBe('2/2');
    const lease = await until('the lease', async () => {
      const res = await clients.kubeConfig
        .makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api)
        .readNamespacedLease({ name: 'plugin-release-controller', namespace: 'default' });
      return res.spec?.holderIdentity ? res : undefined;
    });
    expect(lease.spec?.holderIdentity).toBeTruthy();
    // A restarted agent adopts the plugin process that kept serving and says so on the activation.
    const first = children[1];
    first?.kill('SIGTERM');
    if (first) expect(await exited(first)).toBe(0);
    agent('node-1');
    const recovered = await until('node-1 to report its recovery', async () => {
      const a = await clients.activations.get({ namespace: 'default', name: 'echo-node-1' });
      return a.status?.reason === 'Recovered' ? a : undefined;
    });
    expect(recovered.status).toMatchObject({
      phase: 'Active',
      message: expect.stringMatching(/Adopted the running/),
    });

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(
      /pluginrelease_reconcile_duration_seconds_count\{controller="pluginrelease",result="done"\} [1-9]/,
    );

    for (const child of children.filter((c) => c.exitCode === null && c.signalCode === null)) {
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
    }
    expect(controller.exitCode).toBe(0);
  }, 90_000);

  it('lets only the leader of two controllers act, and the standby finish the rollout when the leader dies', async () => {
    // The first test stopped every process; this one brings its own.
    agent('node-1');
    agent('node-2');
    const ports = [await freePort(), await freePort()];
    const controllers = ports.map((port) =>
      start([
        'controller',
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--leader-elect',
        '--leader-elect-lease-duration',
        '4',
        '--lease-namespace',
        'kube-system',
        '--metrics-addr',
        `127.0.0.1:${port}`,
        '--log-level',
        'warn',
      ]),
    );
    const reconciles = async (port: number | undefined) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return [...text.matchAll(/pluginrelease_reconcile_duration_seconds_count\{[^}]*\} (\d+)/g)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    };
    for (const port of ports) {
      await until('both controllers to be ready', async () =>
        (await fetch(`http://127.0.0.1:${port}/readyz`)).ok ? true : undefined,
      );
    }
    const v2 = await stageEcho(join(cluster.dir, 'staging', 'echo', '2.0.0'), '2.0.0');
    const current = await clients.releases.get({ namespace: 'default', name: 'echo' });
    await clients.releases.replace({
      ...current,
      spec: {
        ...current.spec,
        version: '2.0.0',
        artifact: { ...current.spec.artifact!, path: v2.path, digest: v2.digest },
        activation: { ...current.spec.activation, verifySeconds: 2 },
        rollout: { ...current.spec.rollout, maxUnavailable: 1 },
      },
    });
    await until('the first node to activate 2.0.0', async () => {
      const r = await clients.releases.get({ namespace: 'default', name: 'echo' });
      const moved = r.status?.observedGeneration === r.metadata.generation;
      return moved && (r.status?.nodes?.active ?? 0) >= 1 ? true : undefined;
    });
    const counts = await Promise.all(ports.map(reconciles));
    const leader = counts.findIndex((c) => c > 0);
    expect(counts.filter((c) => c > 0)).toHaveLength(1);
    controllers[leader]?.kill('SIGKILL');
    const ready = await until(
      'the standby to finish the rollout',
      async () => {
        const r = await clients.releases.get({ namespace: 'default', name: 'echo' });
        return r.status?.phase === 'Ready' && r.status.history?.[0]?.version === '2.0.0' ? r : undefined;
      },
      60_000,
    );
    expect(ready.status?.ready).toBe('2/2');
    expect(await reconciles(ports[1 - leader])).toBeGreaterThan(0);
  }, 90_000);
});
