// Conformance: finalizers and deletionTimestamp, ownerReference garbage collection (background,
// foreground, orphan), and namespace deletion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  aLease,
  aRelease,
  type Body,
  eventually,
  openTarget,
  REAL,
  type Target,
  uniqueName,
} from './target.ts';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
});
afterAll(async () => {
  await t?.close();
});

const MERGE = 'application/merge-patch+json';
const LEASES = '/apis/coordination.k8s.io/v1';

async function createRelease(metadata: Record<string, unknown> = {}) {
  const res = await t.call('POST', t.path('pluginreleases'), {
    body: aRelease(uniqueName('f'), {}, metadata),
  });
  expect(res.status).toBe(201);
  return res.body;
}

function ownerRef(owner: Body) {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

async function createDependent(owner: Body) {
  const body = aLease(uniqueName('dep'));
  (body.metadata as Record<string, unknown>).ownerReferences = [ownerRef(owner)];
  const res = await t.call('POST', t.path('leases', undefined, LEASES), { body });
  expect(res.status).toBe(201);
  return res.body;
}

// The real garbage collector watches a resource only after its next discovery sync (every 30 s in
// kube-controller-manager), so an owner of a just-installed CRD may wait that long to be noticed.
const GC_WAIT = REAL ? 75_000 : 20_000;
const GC_TEST = GC_WAIT + 15_000;

const gone = (path: string) => async () => ((await t.call('GET', path)).status === 404 ? true : undefined);

describe('finalizers', () => {
  it('marks an object with finalizers for deletion instead of deleting it', async () => {
    const obj = await createRelease({ finalizers: ['example.com/hold'] });
    const res = await t.call('DELETE', t.path('pluginreleases', obj.metadata.name));
    expect(res.status).toBe(200);
    expect(res.body.metadata.deletionTimestamp).toBeDefined();
    expect(res.body.metadata.finalizers).toEqual(['example.com/hold']);
    const got = await t.call('GET', t.path('pluginreleases', obj.metadata.name));
    expect(got.status).toBe(200);
    expect(got.body.metadata.deletionTimestamp).toBe(res.body.metadata.deletionTimestamp);
  });

  it('deletes the object when its last finalizer is removed', async () => {
    const obj = await createRelease({ finalizers: ['example.com/hold'] });
    await t.call('DELETE', t.path('pluginreleases', obj.metadata.name));
    const res = await t.call('PATCH', t.path('pluginreleases', obj.metadata.name), {
      body: JSON.stringify({ metadata: { finalizers: null } }),
      contentType: MERGE,
    });
    expect(res.status).toBe(200);
    expect((await t.call('GET', t.path('pluginreleases', obj.metadata.name))).status).toBe(404);
  });

  it('forbids adding a finalizer to an object being deleted', async () => {
    const obj = await createRelease({ finalizers: ['example.com/hold'] });
    await t.call('DELETE', t.path('pluginreleases', obj.metadata.name));
    const res = await t.call('PATCH', t.path('pluginreleases', obj.metadata.name), {
      body: JSON.stringify({ metadata: { finalizers: ['example.com/hold', 'example.com/more'] } }),
      contentType: MERGE,
    });
    expect(res.status).toBe(422);
    expect(res.body.details.causes[0]).toMatchObject({
      reason: 'FieldValueForbidden',
      field: 'metadata.finalizers',
    });
  });

  it('keeps the deletionTimestamp when an update tries to clear it', async () => {
    const obj = await createRelease({ finalizers: ['example.com/hold'] });
    const deleted = await t.call('DELETE', t.path('pluginreleases', obj.metadata.name));
    const res = await t.call('PATCH', t.path('pluginreleases', obj.metadata.name), {
      body: JSON.stringify({ metadata: { deletionTimestamp: null, labels: { x: 'y' } } }),
      contentType: MERGE,
    });
    expect(res.body.metadata.deletionTimestamp).toBe(deleted.body.metadata.deletionTimestamp);
    await t.call('PATCH', t.path('pluginreleases', obj.metadata.name), {
      body: JSON.stringify({ metadata: { finalizers: null } }),
      contentType: MERGE,
    });
  });
});

describe('garbage collection', () => {
  it(
    'deletes dependents in the background after their owner is deleted',
    async () => {
      const owner = await createRelease();
      const dependent = await createDependent(owner);
      await t.call('DELETE', t.path('pluginreleases', owner.metadata.name));
      await eventually(gone(t.path('leases', dependent.metadata.name, LEASES)), GC_WAIT);
    },
    GC_TEST,
  );

  it(
    'keeps a dependent that still has another live owner, dropping the dangling reference',
    async () => {
      const first = await createRelease();
      const second = await createRelease();
      const body = aLease(uniqueName('two'));
      (body.metadata as Record<string, unknown>).ownerReferences = [
        { ...ownerRef(first), controller: false },
        { ...ownerRef(second), controller: false },
      ];
      const dep = (await t.call('POST', t.path('leases', undefined, LEASES), { body })).body;
      await t.call('DELETE', t.path('pluginreleases', first.metadata.name));
      const refs = await eventually(async () => {
        const got = await t.call('GET', t.path('leases', dep.metadata.name, LEASES));
        const r = got.body.metadata?.ownerReferences;
        return r?.length === 1 ? r : undefined;
      }, GC_WAIT);
      expect(refs[0].uid).toBe(second.metadata.uid);
    },
    GC_TEST,
  );

  it(
    'with Foreground propagation, keeps the owner until its dependents are gone',
    async () => {
      const owner = await createRelease();
      const dependent = await createDependent(owner);
      const res = await t.call('DELETE', t.path('pluginreleases', owner.metadata.name), {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Foreground' },
      });
      expect(res.status).toBe(200);
      expect(res.body.metadata.finalizers).toContain('foregroundDeletion');
      expect(res.body.metadata.deletionTimestamp).toBeDefined();
      await eventually(gone(t.path('leases', dependent.metadata.name, LEASES)), GC_WAIT);
      await eventually(gone(t.path('pluginreleases', owner.metadata.name)), GC_WAIT);
    },
    GC_TEST,
  );

  it(
    'with Orphan propagation, removes the owner reference and keeps the dependent',
    async () => {
      const owner = await createRelease();
      const dependent = await createDependent(owner);
      await t.call('DELETE', t.path('pluginreleases', owner.metadata.name), {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Orphan' },
      });
      await eventually(gone(t.path('pluginreleases', owner.metadata.name)), GC_WAIT);
      const got = await t.call('GET', t.path('leases', dependent.metadata.name, LEASES));
      expect(got.status).toBe(200);
      expect(got.body.metadata.ownerReferences).toBeUndefined();
    },
    GC_TEST,
  );

  it(
    'deletes a dependent created with a reference to an owner that does not exist',
    async () => {
      const body = aLease(uniqueName('dangling'));
      (body.metadata as Record<string, unknown>).ownerReferences = [
        {
          apiVersion: 'pluginrelease.io/v1alpha1',
          kind: 'PluginRelease',
          name: 'never-existed',
          uid: '00000000-0000-0000-0000-000000000001',
        },
      ];
      const dep = (await t.call('POST', t.path('leases', undefined, LEASES), { body })).body;
      await eventually(gone(t.path('leases', dep.metadata.name, LEASES)), GC_WAIT);
    },
    GC_TEST,
  );
});

describe('namespace deletion', () => {
  it('puts the namespace in Terminating, deletes its content, then the namespace', async () => {
    const name = uniqueName('ns');
    await t.call('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
    });
    const release = aRelease('inside');
    await t.call('POST', `/apis/pluginrelease.io/v1alpha1/namespaces/${name}/pluginreleases`, {
      body: release,
    });
    const res = await t.call('DELETE', `/api/v1/namespaces/${name}`);
    expect(res.status).toBe(200);
    expect(res.body.kind).toBe('Namespace');
    expect(res.body.status.phase).toBe('Terminating');
    const refused = await t.call(
      'POST',
      `/apis/pluginrelease.io/v1alpha1/namespaces/${name}/pluginreleases`,
      {
        body: aRelease('late'),
      },
    );
    if (refused.status !== 404) {
      expect(refused.status).toBe(403);
      expect(refused.body.details.causes[0].reason).toBe('NamespaceTerminating');
    }
    await eventually(gone(`/api/v1/namespaces/${name}`), 30_000);
    const inside = await t.call(
      'GET',
      `/apis/pluginrelease.io/v1alpha1/namespaces/${name}/pluginreleases/inside`,
    );
    expect(inside.status).toBe(404);
  });
});
