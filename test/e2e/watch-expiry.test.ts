// A watch that expires on a real API server: the server answers a too old resourceVersion with 410
// Gone, and the informer every component caches through relists and carries on. (On the dev cluster the
// same path is covered by test/integration/devcluster/informer.test.ts, with its compaction hook.)
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, type PluginRelease } from '../../src/api/index.ts';
import { createKubeClients, Informer, type KubeClients, loadKubeConfig } from '../../src/kube/index.ts';
import type { WatchSource } from '../../src/kube/resource.ts';
import { until } from '../support/processes.ts';
import { REAL } from './support.ts';

let admin: KubeClients;
let namespace: string;

const aRelease = (name: string) =>
  ({
    apiVersion: API_VERSION,
    kind: 'PluginRelease',
    metadata: { name, namespace },
    spec: {
      plugin: name,
      version: '1.0.0',
      artifact: { path: `/staging/${name}`, digest: `sha256:${'a'.repeat(64)}` },
    },
  }) as PluginRelease;

beforeAll(async () => {
  if (!REAL) return;
  admin = createKubeClients(loadKubeConfig(process.env.KUBECONFIG));
  namespace = `plr-watch-${Date.now().toString(36)}`;
  await admin.kubeConfig
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name: namespace } } });
});

afterAll(async () => {
  if (!REAL) return;
  await admin.kubeConfig
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name: namespace })
    .catch(() => {});
});

describe.skipIf(!REAL)('a watch that expires on a real API server', { timeout: 60_000 }, () => {
  it('makes the informer relist once and keep its cache whole', async () => {
    await admin.releases.create(aRelease('before'));
    // The first watch resumes from resourceVersion 1, long compacted away: the server answers 410.
    let watches = 0;
    const real = admin.releases;
    const source: WatchSource<PluginRelease> = {
      resource: real.resource,
      listPage: (ns, options) => real.listPage(ns, options),
      watch: (ns, request, onEvent, onDone) =>
        real.watch(ns, watches++ === 0 ? { ...request, resourceVersion: '1' } : request, onEvent, onDone),
    };
    const informer = new Informer(source, { namespace });
    informer.start();
    try {
      await informer.waitForSync(AbortSignal.timeout(20_000));
      await until('the informer to relist after 410', async () =>
        informer.stats.relistsAfterGone === 1 && watches >= 2 ? true : undefined,
      );
      await admin.releases.create(aRelease('after'));
      await until('the new watch to deliver the next release', async () =>
        informer.get(`${namespace}/after`) ? true : undefined,
      );
      expect(informer.keys().sort()).toEqual([`${namespace}/after`, `${namespace}/before`]);
      expect(informer.stats.relistsAfterGone).toBe(1);
    } finally {
      await informer.stop();
    }
  });
});
