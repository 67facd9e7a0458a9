// A @kubernetes/client-node informer over the dev cluster survives a dropped watch (re-watches from
// its resourceVersion) and relists after 410 Gone — the behaviours the controller's caches rely on.
import {
  CoordinationV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesObject,
  makeInformer,
} from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { type DevCluster, startDevCluster } from '../../../dev/cluster/index.ts';

const group = 'pluginrelease.io';
const version = 'v1alpha1';
const plural = 'pluginreleases';

function release(name: string) {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'PluginRelease',
    metadata: { name },
    spec: {
      plugin: 'echo',
      version: '1.0.0',
      artifact: { path: '/opt/echo', digest: `sha256:${'c'.repeat(64)}` },
    },
  };
}

async function until(check: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const count = (cluster: DevCluster, verb: string) =>
  cluster.requestCounts().find((c) => c.resource === plural && c.verb === verb && !c.subresource)?.count ?? 0;

let cluster: DevCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function anInformer(watchHistory: number) {
  cluster = await startDevCluster({ watchHistory });
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const api = kc.makeApiClient(CustomObjectsApi);
  const path = `/apis/${group}/${version}/namespaces/default/${plural}`;
  const informer = makeInformer<KubernetesObject>(kc, path, () =>
    api.listNamespacedCustomObject({ group, version, namespace: 'default', plural }),
  );
  const seen: string[] = [];
  const failures: unknown[] = [];
  informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
  informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
  informer.on('error', (e) => failures.push(e));
  await informer.start();
  const create = (name: string) =>
    api.createNamespacedCustomObject({ group, version, namespace: 'default', plural, body: release(name) });
  return { kc, api, informer, seen, failures, create };
}

describe('a client-node informer on the dev cluster', () => {
  it('re-watches from its resourceVersion after the server drops the watch, without relisting', async () => {
    const { informer, seen, failures, create } = await anInformer(1000);
    try {
      await create('first');
      await until(() => seen.includes('add first'));
      const lists = count(cluster!, 'list');
      const watches = count(cluster!, 'watch');
      cluster!.faults.dropWatches();
      await until(() => count(cluster!, 'watch') > watches);
      await create('second');
      await until(() => seen.includes('add second'));
      expect(count(cluster!, 'list')).toBe(lists);
      expect(failures).toEqual([]);
      expect(seen).toEqual(['add first', 'add second']);
    } finally {
      await informer.stop();
    }
  });

  it('relists after its resourceVersion fell out of the history (410 Gone) and keeps its cache right', async () => {
    const { kc, api, informer, seen, failures, create } = await anInformer(20);
    try {
      await create('kept');
      await create('doomed');
      await until(() => seen.includes('add doomed'));
      const lists = count(cluster!, 'list');
      // Writes to another resource push the informer's resourceVersion out of the retained history.
      const leases = kc.makeApiClient(CoordinationV1Api);
      for (let i = 0; i < 25; i++) {
        await leases.createNamespacedLease({
          namespace: 'default',
          body: { metadata: { name: `churn-${i}` }, spec: {} },
        });
      }
      cluster!.faults.dropWatches();
      await until(() => count(cluster!, 'list') > lists);
      await api.deleteNamespacedCustomObject({
        group,
        version,
        namespace: 'default',
        plural,
        name: 'doomed',
      });
      await create('after');
      await until(() => seen.includes('add after') && seen.includes('delete doomed'));
      expect(
        informer
          .list('default')
          .map((o) => o.metadata?.name)
          .sort(),
      ).toEqual(['after', 'kept']);
      expect(failures).toEqual([]);
    } finally {
      await informer.stop();
    }
  });
});
