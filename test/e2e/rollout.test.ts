// End to end: the controller and real agents roll releases of the example plugin out over a cluster.
// Runs on the dev cluster; with E2E_REAL_CLUSTER=1 and KUBECONFIG set, the same scenarios run against
// that cluster (in a namespace of their own, with local agents serving its Nodes).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Annotations,
  API_VERSION,
  type PluginRelease,
  type PluginReleaseSpecInput,
} from '../../src/api/index.ts';
import { stageEcho, writeEchoConfig } from '../../src/cli/demo/echo.ts';
import { type LocalFleet, startLocalFleet } from '../../src/cli/demo/fleet.ts';
import { servingVersion } from '../../src/cli/demo/traffic.ts';

const REAL = process.env.E2E_REAL_CLUSTER === '1' && Boolean(process.env.KUBECONFIG);
const KUBECTL = '/usr/bin/kubectl';
const run = promisify(execFile);

let fleet: LocalFleet;
const core = () => fleet.clients.kubeConfig.makeApiClient(CoreV1Api);
let namespace = 'default';

beforeAll(async () => {
  fleet = await startLocalFleet({
    logger: pino({ level: 'silent' }),
    nodes: 2,
    ...(REAL ? { kubeconfig: process.env.KUBECONFIG } : {}),
  });
  namespace = `plr-e2e-${Date.now().toString(36)}`;
  await core().createNamespace({ body: { metadata: { name: namespace } } });
}, 60_000);

afterAll(async () => {
  await core()
    .deleteNamespace({ name: namespace })
    .catch(() => {});
  await fleet?.stop();
}, 60_000);

interface Plugin {
  name: string;
  spec(version: string, extra?: Partial<PluginReleaseSpecInput>): Promise<PluginReleaseSpecInput>;
}

/** A plugin name of its own per test, so fronts and conflicts never cross tests. */
function aPlugin(name: string): Plugin {
  return {
    name,
    async spec(version, extra = {}) {
      const artifact = await stageEcho(join(fleet.stagingRoot, name, version), version);
      const broken = version.endsWith('-broken');
      const config = await writeEchoConfig(join(fleet.stagingRoot, name, `${version}.json`), {
        ...(broken ? { requires: '/nonexistent/flag' } : {}),
      });
      return {
        plugin: name,
        version,
        artifact: { path: artifact.path, digest: artifact.digest, entrypoint: 'plugin' },
        config,
        health: { probes: [{ grpc: {}, periodSeconds: 1, failureThreshold: 2 }] },
        activation: { drainSeconds: 1, verifySeconds: 1 },
        rollout: { maxUnavailable: '100%' },
        ...extra,
      };
    },
  };
}

async function apply(name: string, spec: PluginReleaseSpecInput, annotations?: Record<string, string>) {
  const ref = { namespace, name };
  const existing = await fleet.clients.releases.get(ref).catch(() => undefined);
  if (!existing) {
    return fleet.clients.releases.create({
      apiVersion: API_VERSION,
      kind: 'PluginRelease',
      metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
      spec,
    } as PluginRelease);
  }
  return fleet.clients.releases.replace({
    ...existing,
    metadata: { ...existing.metadata, annotations: { ...existing.metadata.annotations, ...annotations } },
    spec: spec as PluginRelease['spec'],
  });
}

async function until(name: string, check: (r: PluginRelease) => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fleet.clients.releases.get({ namespace, name });
    if (r.status?.observedGeneration === r.metadata.generation && check(r)) return r;
    if (Date.now() > deadline)
      throw new Error(`release ${name} never converged: ${JSON.stringify(r.status)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const condition = (r: PluginRelease, type: string) => r.status?.conditions?.find((c) => c.type === type);
const serving = (plugin: string) =>
  Promise.all(fleet.agents.map((a) => servingVersion(fleet.frontSocket(a.node, plugin))));

describe('a rollout', () => {
  it('activates the release on every node and reports Ready', async () => {
    const plugin = aPlugin('alpha');
    await apply('alpha', await plugin.spec('1.0.0'));
    const r = await until('alpha', (x) => x.status?.phase === 'Ready');
    expect(r.status?.ready).toBe(`${fleet.agents.length}/${fleet.agents.length}`);
    expect(condition(r, 'Ready')).toMatchObject({ status: 'True', reason: 'RolloutComplete' });
    expect(condition(r, 'Reconciling')).toBeUndefined();
    expect(await serving('alpha')).toEqual(fleet.agents.map(() => '1.0.0'));
  });

  it.skipIf(!existsSync(KUBECTL))('satisfies kubectl wait --for=condition=Ready', async () => {
    const plugin = aPlugin('bravo');
    await apply('bravo', await plugin.spec('1.0.0'));
    const { stdout } = await run(
      KUBECTL,
      [
        '--kubeconfig',
        fleet.kubeconfigPath,
        '-n',
        namespace,
        'wait',
        '--for=condition=Ready',
        'plr/bravo',
        '--timeout=30s',
      ],
      { timeout: 40_000 },
    );
    expect(stdout).toMatch(/pluginrelease.pluginrelease.io\/bravo condition met/);
  });

  it('keeps the previous version serving when the canary rejects a broken release', async () => {
    const plugin = aPlugin('charlie');
    await apply('charlie', await plugin.spec('1.0.0'));
    await until('charlie', (x) => x.status?.phase === 'Ready');
    await apply('charlie', await plugin.spec('2.0.0-broken', { rollout: { canary: { nodes: 1 } } }));
    const r = await until('charlie', (x) => x.status?.phase === 'Stalled');
    expect(condition(r, 'Stalled')).toMatchObject({ status: 'True', reason: 'RolloutHalted' });
    expect(condition(r, 'RolledBack')).toMatchObject({ status: 'True', reason: 'NodeRolledBack' });
    expect(r.status?.failedNodes).toEqual([
      expect.objectContaining({ node: fleet.agents[0]?.node, phase: 'RolledBack', reason: 'ProbeFailed' }),
    ]);
    expect(r.status?.history?.map((h) => [h.version, h.outcome])).toEqual([
      ['2.0.0-broken', 'Halted'],
      ['1.0.0', 'Complete'],
    ]);
    expect(await serving('charlie')).toEqual(fleet.agents.map(() => '1.0.0'));
  });

  it('retries a failed revision when the retry-at annotation changes', async () => {
    const plugin = aPlugin('delta');
    await apply('delta', await plugin.spec('1.0.0-broken'));
    const everyNode = fleet.agents.length;
    const failed = await until('delta', (x) => x.status?.failedNodes?.length === everyNode);
    expect(failed.status?.retryAt).toBeUndefined();
    await apply('delta', await plugin.spec('1.0.0-broken'), { [Annotations.retryAt]: '1' });
    const retried = await until(
      'delta',
      (x) => x.status?.retryAt === '1' && x.status?.failedNodes?.length === everyNode,
    );
    const activations = await fleet.clients.activations.list(namespace, {
      labelSelector: 'pluginrelease.io/release=delta',
    });
    expect(activations.items.map((a) => a.status?.retryAt)).toEqual(fleet.agents.map(() => '1'));
    expect(condition(retried, 'Stalled')).toMatchObject({ status: 'True', reason: 'RolloutHalted' });
  });

  it('probes every node in a dry run and swaps nothing', async () => {
    const plugin = aPlugin('echo-dry');
    await apply('echo-dry', await plugin.spec('1.0.0'));
    await until('echo-dry', (x) => x.status?.phase === 'Ready');
    await apply('echo-dry', await plugin.spec('2.0.0', { dryRun: true }));
    const r = await until('echo-dry', (x) => x.status?.phase === 'Probed');
    expect(condition(r, 'Probed')).toMatchObject({ status: 'True', reason: 'DryRunPassed' });
    expect(r.status?.nodes?.probed).toBe(fleet.agents.length);
    expect(await serving('echo-dry')).toEqual(fleet.agents.map(() => '1.0.0'));
  });
});
