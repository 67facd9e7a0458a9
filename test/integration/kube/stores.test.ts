// Typed stores against the dev cluster: error classes from real responses, per-call retries, patches,
// finalizers and aggregated events.
import { CoreV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { PluginActivation } from '../../../src/api/index.ts';
import {
  addFinalizer,
  classify,
  createKubeClients,
  KubeApiError,
  loadKubeConfig,
  removeFinalizer,
} from '../../../src/kube/index.ts';
import { anActivation, aWorld, eventually, NAMESPACE, requests, type World } from './support.ts';

let world: World | undefined;
afterEach(async () => {
  await world?.cluster.stop();
  world = undefined;
});

const ref = (name: string) => ({ namespace: NAMESPACE, name });

/** The rejection of `call`, which must reject. */
async function failure(call: Promise<unknown>): Promise<KubeApiError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(KubeApiError);
    return error as KubeApiError;
  }
  throw new Error('expected the call to fail');
}

describe('error classification against the dev cluster', () => {
  it('classifies a missing object as NotFound', async () => {
    world = await aWorld();
    const error = await failure(world.clients.activations.get(ref('missing')));
    expect(classify(error)).toBe('NotFound');
    expect(error.code).toBe('PR_ERR_KUBE_NOT_FOUND');
    expect(error.message).toContain(`${NAMESPACE}/missing`);
  });

  it('classifies a second create of the same name as AlreadyExists', async () => {
    world = await aWorld();
    await world.clients.activations.create(anActivation('twice'));
    const error = await failure(world.clients.activations.create(anActivation('twice')));
    expect(classify(error)).toBe('AlreadyExists');
  });

  it('classifies a replace at a stale resourceVersion as Conflict', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    const created = await activations.create(anActivation('stale'));
    await activations.mergePatch(ref('stale'), { spec: { revision: 'rev-2' } });
    const error = await failure(
      activations.replace({ ...created, spec: { ...created.spec, revision: 'rev-3' } }),
    );
    expect(classify(error)).toBe('Conflict');
    expect(error.statusCode).toBe(409);
  });

  it('classifies an object the schema rejects as Invalid', async () => {
    world = await aWorld();
    const bad = anActivation('bad');
    (bad.spec.artifact as { digest: string }).digest = 'md5:nope';
    const error = await failure(world.clients.activations.create(bad));
    expect(classify(error)).toBe('Invalid');
    expect(error.statusCode).toBe(422);
  });

  it('classifies a refused connection as Transient', async () => {
    world = await aWorld();
    const clients = createKubeClients(loadKubeConfig(world.cluster.kubeconfigPath), { retry: false });
    await world.cluster.stop();
    const error = await failure(clients.activations.get(ref('any')));
    expect(classify(error)).toBe('Transient');
    world = undefined;
  });
});

describe('per-call retries against the dev cluster', () => {
  it('retries a read through 500s and succeeds with the same call', async () => {
    world = await aWorld();
    await world.clients.activations.create(anActivation('flaky'));
    world.cluster.resetRequestCounts();
    world.cluster.faults.failNext(2, 500);
    const got = await world.clients.activations.get(ref('flaky'));
    expect(got.metadata.name).toBe('flaky');
    expect(requests(world.cluster, 'get', 'pluginactivations')).toBe(3);
  });

  it('waits for Retry-After on a 429 before retrying', async () => {
    world = await aWorld();
    await world.clients.activations.create(anActivation('throttled'));
    world.cluster.faults.failNext(1, 429, 1);
    const started = Date.now();
    await world.clients.activations.get(ref('throttled'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('gives up with a Transient error when the server keeps failing', async () => {
    world = await aWorld();
    const clients = createKubeClients(world.kubeConfig, {
      retry: { retries: 2, minTimeoutMs: 10, maxTimeoutMs: 20 },
    });
    world.cluster.resetRequestCounts();
    world.cluster.faults.failNext(10, 503);
    const error = await failure(clients.activations.list(NAMESPACE));
    expect(classify(error)).toBe('Transient');
    expect(error.statusCode).toBe(503);
    expect(requests(world.cluster, 'list', 'pluginactivations')).toBe(3);
    world.cluster.faults.clear();
  });

  it('does not retry a conflict', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    const created = await activations.create(anActivation('once'));
    await activations.mergePatch(ref('once'), { spec: { revision: 'rev-2' } });
    world.cluster.resetRequestCounts();
    await failure(activations.replace(created));
    expect(requests(world.cluster, 'update', 'pluginactivations')).toBe(1);
  });
});

describe('patches against the dev cluster', () => {
  it('changes only the status through patchStatus, and ignores status in a main-resource patch', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    const created = await activations.create(anActivation('patched'));
    const afterStatus = await activations.patchStatus(ref('patched'), {
      spec: { revision: 'ignored' },
      status: { phase: 'Probing', attempts: 1 },
    });
    expect(afterStatus.status).toMatchObject({ phase: 'Probing', attempts: 1 });
    expect(afterStatus.spec.revision).toBe('rev-1');
    expect(afterStatus.metadata.generation).toBe(created.metadata.generation);

    const afterSpec = await activations.mergePatch(ref('patched'), {
      spec: { revision: 'rev-2' },
      status: { phase: 'Failed' },
    });
    expect(afterSpec.spec.revision).toBe('rev-2');
    expect(afterSpec.status?.phase).toBe('Probing');
    expect(afterSpec.metadata.generation).toBe((created.metadata.generation ?? 0) + 1);
  });

  it('applies a JSON patch and rejects one whose test op fails', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    await activations.create(anActivation('jp'));
    const patched = await activations.jsonPatch(ref('jp'), [
      { op: 'test', path: '/spec/revision', value: 'rev-1' },
      { op: 'replace', path: '/spec/revision', value: 'rev-2' },
    ]);
    expect(patched.spec.revision).toBe('rev-2');
    const error = await failure(
      activations.jsonPatch(ref('jp'), [
        { op: 'test', path: '/spec/revision', value: 'rev-1' },
        { op: 'replace', path: '/spec/revision', value: 'rev-3' },
      ]),
    );
    expect(error.statusCode).toBe(422);
  });

  it('adds and removes a finalizer, and reports a race on a stale copy as Conflict', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    const created = await activations.create(anActivation('fin'));
    const withOne = await addFinalizer(activations, created, 'pluginrelease.io/a');
    expect(withOne.metadata.finalizers).toEqual(['pluginrelease.io/a']);
    const withTwo = await addFinalizer(activations, withOne, 'pluginrelease.io/b');
    expect(withTwo.metadata.finalizers).toEqual(['pluginrelease.io/a', 'pluginrelease.io/b']);

    // A writer still holding the one-finalizer copy must not clobber the list.
    const race = await failure(addFinalizer(activations, withOne, 'pluginrelease.io/c'));
    expect(classify(race)).toBe('Conflict');

    const withoutA = await removeFinalizer(activations, withTwo, 'pluginrelease.io/a');
    expect(withoutA.metadata.finalizers).toEqual(['pluginrelease.io/b']);
    const staleRemove = await failure(removeFinalizer(activations, withTwo, 'pluginrelease.io/b'));
    expect(classify(staleRemove)).toBe('Conflict');
  });

  it('keeps a deleted object with a finalizer until the finalizer is removed', async () => {
    world = await aWorld();
    const { activations } = world.clients;
    const created = await activations.create(anActivation('held'));
    const held = await addFinalizer(activations, created, 'pluginrelease.io/cleanup');
    await activations.delete(ref('held'));
    const terminating = await activations.get(ref('held'));
    expect(terminating.metadata.deletionTimestamp).toBeDefined();
    await removeFinalizer(
      activations,
      { ...held, metadata: terminating.metadata },
      'pluginrelease.io/cleanup',
    );
    await eventually('the object to be gone', async () => {
      try {
        await activations.get(ref('held'));
        return false;
      } catch (error) {
        return classify(error) === 'NotFound';
      }
    });
  });
});

describe('events against the dev cluster', () => {
  it('aggregates identical events into one Event with a count, and keeps different ones apart', async () => {
    world = await aWorld();
    const created: PluginActivation = await world.clients.activations.create(anActivation('evented'));
    const recorder = world.clients.eventRecorder({ component: 'plugin-release-test', instance: 'test-1' });
    recorder.recordEvent(created, 'Warning', 'ProbeFailed', 'Probe http failed: 503.');
    recorder.recordEvent(created, 'Warning', 'ProbeFailed', 'Probe http failed: 503.');
    recorder.recordEvent(created, 'Warning', 'ProbeFailed', 'Probe http failed: 503.');
    recorder.recordEvent(created, 'Normal', 'Activated', 'Revision rev-1 is active.');
    await recorder.flush();
    const core = world.kubeConfig.makeApiClient(CoreV1Api);
    const events = (await core.listNamespacedEvent({ namespace: NAMESPACE })).items.filter(
      (e) => e.involvedObject.name === 'evented',
    );
    const byReason = Object.fromEntries(events.map((e) => [e.reason, e]));
    expect(events).toHaveLength(2);
    expect(byReason.ProbeFailed).toMatchObject({
      type: 'Warning',
      count: 3,
      message: 'Probe http failed: 503.',
      involvedObject: { kind: 'PluginActivation', uid: created.metadata.uid },
      source: { component: 'plugin-release-test' },
    });
    expect(byReason.Activated?.count).toBe(1);
  });
});
