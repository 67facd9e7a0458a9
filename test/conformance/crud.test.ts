// Conformance: create/get/list/update/delete of custom resources, system metadata, optimistic
// concurrency, and the exact Status bodies of 404/409/422.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aFailure, aLease, aRelease, type Body, openTarget, type Target, uniqueName } from './target.ts';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
});
afterAll(async () => {
  await t?.close();
});

describe('create', () => {
  it('answers 201 with uid, creationTimestamp, resourceVersion and generation 1', async () => {
    const name = uniqueName('c');
    const res = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    expect(res.status).toBe(201);
    const meta = res.body.metadata;
    expect(meta.name).toBe(name);
    expect(meta.namespace).toBe(t.namespace);
    expect(meta.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(meta.creationTimestamp)).not.toBeNaN();
    expect(meta.creationTimestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(Number(meta.resourceVersion)).toBeGreaterThan(0);
    expect(meta.generation).toBe(1);
  });

  it('generates a name from generateName with a 5-character suffix', async () => {
    const body = aRelease('');
    body.metadata = { generateName: 'gen-' } as never;
    const res = await t.call('POST', t.path('pluginreleases'), { body });
    expect(res.status).toBe(201);
    expect(res.body.metadata.name).toMatch(/^gen-[a-z0-9]{5}$/);
    expect(res.body.metadata.generateName).toBe('gen-');
  });

  it('answers 409 AlreadyExists with a Status naming the resource', async () => {
    const name = uniqueName('dup');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const res = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    expect(res.status).toBe(409);
    expect(res.body).toEqual(
      aFailure(409, 'AlreadyExists', `pluginreleases.pluginrelease.io "${name}" already exists`, {
        name,
        group: 'pluginrelease.io',
        kind: 'pluginreleases',
      }),
    );
  });

  it('answers 404 when the namespace does not exist', async () => {
    const res = await t.call(
      'POST',
      '/apis/pluginrelease.io/v1alpha1/namespaces/no-such-ns-x/pluginreleases',
      {
        body: aRelease('x'),
      },
    );
    expect(res.status).toBe(404);
    expect(res.body.reason).toBe('NotFound');
    expect(res.body.details).toEqual({ name: 'no-such-ns-x', kind: 'namespaces' });
  });

  it('answers 400 when the body namespace differs from the URL namespace', async () => {
    const body = aRelease(uniqueName('ns'), {}, { namespace: 'elsewhere' });
    const res = await t.call('POST', t.path('pluginreleases'), { body });
    expect(res.status).toBe(400);
    expect(res.body.reason).toBe('BadRequest');
    expect(res.body.message).toBe(
      'the namespace of the provided object does not match the namespace sent on the request',
    );
  });

  it('ignores status on create when the status subresource is enabled', async () => {
    const body = { ...aRelease(uniqueName('st')), status: { phase: 'Ready' } };
    const res = await t.call('POST', t.path('pluginreleases'), { body });
    expect(res.status).toBe(201);
    expect(res.body.status).toBeUndefined();
  });
});

describe('get and list', () => {
  it('answers 404 NotFound with the exact Status body', async () => {
    const res = await t.call('GET', t.path('pluginreleases', 'missing-one'));
    expect(res.status).toBe(404);
    expect(res.body).toEqual(
      aFailure(404, 'NotFound', 'pluginreleases.pluginrelease.io "missing-one" not found', {
        name: 'missing-one',
        group: 'pluginrelease.io',
        kind: 'pluginreleases',
      }),
    );
  });

  it('lists with the list kind, a list resourceVersion, and items carrying apiVersion and kind', async () => {
    const name = uniqueName('l');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const res = await t.call('GET', t.path('pluginreleases'));
    expect(res.status).toBe(200);
    expect(res.body.kind).toBe('PluginReleaseList');
    expect(res.body.apiVersion).toBe('pluginrelease.io/v1alpha1');
    expect(Number(res.body.metadata.resourceVersion)).toBeGreaterThan(0);
    const item = res.body.items.find((i: Body) => i.metadata.name === name);
    expect(item.kind).toBe('PluginRelease');
    expect(item.apiVersion).toBe('pluginrelease.io/v1alpha1');
  });

  it('lists across all namespaces at the cluster-wide path', async () => {
    const name = uniqueName('all');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const res = await t.call('GET', '/apis/pluginrelease.io/v1alpha1/pluginreleases');
    expect(
      res.body.items.some((i: Body) => i.metadata.name === name && i.metadata.namespace === t.namespace),
    ).toBe(true);
  });

  it('increases resourceVersion across the whole server, not per object', async () => {
    const a = await t.call('POST', t.path('pluginreleases'), { body: aRelease(uniqueName('rv')) });
    const b = await t.call('POST', t.path('leases', undefined, '/apis/coordination.k8s.io/v1'), {
      body: aLease(uniqueName('rv')),
    });
    const c = await t.call('POST', t.path('pluginreleases'), { body: aRelease(uniqueName('rv')) });
    const rvs = [a, b, c].map((r) => BigInt(r.body.metadata.resourceVersion));
    expect(rvs[1]! > rvs[0]!).toBe(true);
    expect(rvs[2]! > rvs[1]!).toBe(true);
  });
});

describe('update', () => {
  it('updates with the current resourceVersion and returns a newer one', async () => {
    const name = uniqueName('u');
    const created = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const body = { ...created.body, spec: { ...created.body.spec, version: '2.0.0' } };
    const res = await t.call('PUT', t.path('pluginreleases', name), { body });
    expect(res.status).toBe(200);
    expect(res.body.spec.version).toBe('2.0.0');
    expect(BigInt(res.body.metadata.resourceVersion) > BigInt(created.body.metadata.resourceVersion)).toBe(
      true,
    );
  });

  it('answers 409 Conflict with the exact Status body for a stale resourceVersion', async () => {
    const name = uniqueName('u');
    const created = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const first = { ...created.body, spec: { ...created.body.spec, version: '2.0.0' } };
    expect((await t.call('PUT', t.path('pluginreleases', name), { body: first })).status).toBe(200);
    const stale = { ...created.body, spec: { ...created.body.spec, version: '3.0.0' } };
    const res = await t.call('PUT', t.path('pluginreleases', name), { body: stale });
    expect(res.status).toBe(409);
    expect(res.body).toEqual(
      aFailure(
        409,
        'Conflict',
        `Operation cannot be fulfilled on pluginreleases.pluginrelease.io "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, group: 'pluginrelease.io', kind: 'pluginreleases' },
      ),
    );
  });

  it('refuses an update of a custom resource without resourceVersion with 422', async () => {
    const name = uniqueName('u');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const res = await t.call('PUT', t.path('pluginreleases', name), { body: aRelease(name) });
    expect(res.status).toBe(422);
    // The registry names the resource (not the Kind) and prints the uint64 0 as Go's %#v does.
    expect(res.body).toEqual(
      aFailure(
        422,
        'Invalid',
        `pluginreleases.pluginrelease.io "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`,
        {
          name,
          group: 'pluginrelease.io',
          kind: 'pluginreleases',
          causes: [
            {
              reason: 'FieldValueInvalid',
              message: 'Invalid value: 0x0: must be specified for an update',
              field: 'metadata.resourceVersion',
            },
          ],
        },
      ),
    );
  });

  it('refuses an update of a Lease without resourceVersion with 422 (leases never allow it)', async () => {
    const name = uniqueName('lease');
    const leases = t.path('leases', undefined, '/apis/coordination.k8s.io/v1');
    await t.call('POST', leases, { body: aLease(name) });
    const res = await t.call('PUT', `${leases}/${name}`, { body: aLease(name, 'other') });
    expect(res.status).toBe(422);
    expect(res.body.message).toBe(
      `leases.coordination.k8s.io "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`,
    );
  });

  it('accepts an unconditional update of a Namespace, keeping its finalizers and phase', async () => {
    const res = await t.call('PUT', `/api/v1/namespaces/${t.namespace}`, {
      body: {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: t.namespace, labels: { touched: 'yes' } },
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.metadata.labels.touched).toBe('yes');
    expect(res.body.spec.finalizers).toEqual(['kubernetes']);
    expect(res.body.status.phase).toBe('Active');
  });

  it('keeps uid and creationTimestamp when an update omits them', async () => {
    const name = uniqueName('u');
    const created = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const body = aRelease(name, { version: '9' }, { resourceVersion: created.body.metadata.resourceVersion });
    const res = await t.call('PUT', t.path('pluginreleases', name), { body });
    expect(res.body.metadata.uid).toBe(created.body.metadata.uid);
    expect(res.body.metadata.creationTimestamp).toBe(created.body.metadata.creationTimestamp);
  });

  it('does not write (no new resourceVersion) when an update changes nothing', async () => {
    const name = uniqueName('noop');
    const created = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const res = await t.call('PUT', t.path('pluginreleases', name), { body: created.body });
    expect(res.status).toBe(200);
    expect(res.body.metadata.resourceVersion).toBe(created.body.metadata.resourceVersion);
  });

  it('answers 400 when the body name differs from the URL name', async () => {
    const name = uniqueName('u');
    const created = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const body = { ...created.body, metadata: { ...created.body.metadata, name: 'other-name' } };
    const res = await t.call('PUT', t.path('pluginreleases', name), { body });
    expect(res.status).toBe(400);
    expect(res.body.message).toBe(
      `the name of the object (other-name) does not match the name on the URL (${name})`,
    );
  });
});

describe('delete', () => {
  it('deletes an object without finalizers immediately and answers a Success Status', async () => {
    const name = uniqueName('d');
    const created = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const res = await t.call('DELETE', t.path('pluginreleases', name));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name, group: 'pluginrelease.io', kind: 'pluginreleases', uid: created.body.metadata.uid },
    });
    expect((await t.call('GET', t.path('pluginreleases', name))).status).toBe(404);
  });

  it('answers 409 when a uid precondition does not match', async () => {
    const name = uniqueName('d');
    const created = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const res = await t.call('DELETE', t.path('pluginreleases', name), {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: 'not-the-uid' } },
    });
    expect(res.status).toBe(409);
    // rest.BeforeDelete checks preconditions before storage does, and names the Kind.
    expect(res.body).toEqual(
      aFailure(
        409,
        'Conflict',
        `Operation cannot be fulfilled on PluginRelease.pluginrelease.io "${name}": the UID in the precondition (not-the-uid) does not match the UID in record (${created.body.metadata.uid}). The object might have been deleted and then recreated`,
        { name, group: 'pluginrelease.io', kind: 'PluginRelease' },
      ),
    );
  });

  it('deletes a collection by label selector and keeps the rest', async () => {
    const keep = uniqueName('keep');
    const drop = uniqueName('drop');
    await t.call('POST', t.path('pluginreleases'), {
      body: aRelease(keep, {}, { labels: { batch: 'keep' } }),
    });
    await t.call('POST', t.path('pluginreleases'), {
      body: aRelease(drop, {}, { labels: { batch: 'drop' } }),
    });
    const res = await t.call('DELETE', `${t.path('pluginreleases')}?labelSelector=batch%3Ddrop`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((i: Body) => i.metadata.name)).toEqual([drop]);
    expect((await t.call('GET', t.path('pluginreleases', keep))).status).toBe(200);
    expect((await t.call('GET', t.path('pluginreleases', drop))).status).toBe(404);
  });
});

describe('cluster-scoped resources', () => {
  it('serves namespaces at the cluster path, with the kubernetes finalizer and the Active phase', async () => {
    const res = await t.call('GET', `/api/v1/namespaces/${t.namespace}`);
    expect(res.status).toBe(200);
    expect(res.body.kind).toBe('Namespace');
    expect(res.body.spec.finalizers).toEqual(['kubernetes']);
    expect(res.body.status.phase).toBe('Active');
  });

  it('answers 404 for a namespaced resource addressed without a namespace and name', async () => {
    const res = await t.call('GET', '/apis/pluginrelease.io/v1alpha1/pluginreleases/some-name');
    expect(res.status).toBe(404);
  });
});

describe('authentication', () => {
  it('answers 401 Unauthorized with a Status for a wrong bearer token', async () => {
    const res = await t.call('GET', '/api/v1/namespaces', { token: 'not-the-token' });
    expect(res.status).toBe(401);
    expect(res.body).toEqual(aFailure(401, 'Unauthorized', 'Unauthorized'));
  });
});
