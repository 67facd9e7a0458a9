// Conformance: @kubernetes/client-node's informer (list + watch) sees ADDED, MODIFIED and DELETED.
import { CustomObjectsApi, type KubernetesObject, makeInformer } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aRelease, type Body, eventually, openTarget, type Target, uniqueName } from './target.ts';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
});
afterAll(async () => {
  await t?.close();
});

describe('a client-node informer', () => {
  it('sees objects added, modified and deleted through the typed client', async () => {
    const api = t.kc.makeApiClient(CustomObjectsApi);
    const existing = uniqueName('before');
    await api.createNamespacedCustomObject({
      group: 'pluginrelease.io',
      version: 'v1alpha1',
      namespace: t.namespace,
      plural: 'pluginreleases',
      body: aRelease(existing),
    });
    const path = t.path('pluginreleases');
    const informer = makeInformer<KubernetesObject>(t.kc, path, () =>
      api.listNamespacedCustomObject({
        group: 'pluginrelease.io',
        version: 'v1alpha1',
        namespace: t.namespace,
        plural: 'pluginreleases',
      }),
    );
    const seen: string[] = [];
    informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
    informer.on('update', (o) => seen.push(`update ${o.metadata?.name} ${(o as Body).spec.version}`));
    informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
    await informer.start();
    try {
      await eventually(async () => (seen.includes(`add ${existing}`) ? true : undefined));
      const name = uniqueName('live');
      await api.createNamespacedCustomObject({
        group: 'pluginrelease.io',
        version: 'v1alpha1',
        namespace: t.namespace,
        plural: 'pluginreleases',
        body: aRelease(name),
      });
      await api.patchNamespacedCustomObject({
        group: 'pluginrelease.io',
        version: 'v1alpha1',
        namespace: t.namespace,
        plural: 'pluginreleases',
        name,
        // client-node sends application/json-patch+json unless told otherwise.
        body: [{ op: 'replace', path: '/spec/version', value: '2.0.0' }],
      });
      await api.deleteNamespacedCustomObject({
        group: 'pluginrelease.io',
        version: 'v1alpha1',
        namespace: t.namespace,
        plural: 'pluginreleases',
        name,
      });
      await eventually(async () => (seen.includes(`delete ${name}`) ? true : undefined));
      expect(seen.filter((s) => s.includes(name))).toEqual([
        `add ${name}`,
        `update ${name} 2.0.0`,
        `delete ${name}`,
      ]);
      expect(informer.list(t.namespace).map((o) => o.metadata?.name)).toEqual([existing]);
    } finally {
      await informer.stop();
    }
  });
});
