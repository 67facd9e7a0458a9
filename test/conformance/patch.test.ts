// Conformance: JSON merge patch, JSON patch (including the test operation), strategic merge patch
// (built-ins only), and server-side apply.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aFailure, aRelease, type Body, openTarget, type Target, uniqueName } from './target.ts';
import { byVersion } from './version.ts';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
});
afterAll(async () => {
  await t?.close();
});

const MERGE = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
const STRATEGIC = 'application/strategic-merge-patch+json';
const APPLY = 'application/apply-patch+yaml';

async function created(spec: Record<string, unknown> = {}) {
  const name = uniqueName('p');
  const res = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name, spec) });
  expect(res.status).toBe(201);
  return res.body;
}

function patch(name: string, body: unknown, contentType: string, query = '') {
  return t.call('PATCH', `${t.path('pluginreleases', name)}${query}`, {
    body: typeof body === 'string' ? body : JSON.stringify(body),
    contentType,
  });
}

describe('JSON merge patch', () => {
  it('merges objects and deletes keys set to null', async () => {
    const obj = await created({ dryRun: true });
    const res = await patch(
      obj.metadata.name,
      { spec: { version: '2.0.0', dryRun: null }, metadata: { labels: { a: 'b' } } },
      MERGE,
    );
    expect(res.status).toBe(200);
    expect(res.body.spec.version).toBe('2.0.0');
    // dryRun was removed, then defaulted back by the schema.
    expect(res.body.spec.dryRun).toBe(false);
    expect(res.body.metadata.labels).toEqual({ a: 'b' });
  });

  it('replaces lists as a whole', async () => {
    const obj = await created({ health: { probes: [{ grpc: {} }, { tcpSocket: {} }] } });
    const res = await patch(obj.metadata.name, { spec: { health: { probes: [{ tcpSocket: {} }] } } }, MERGE);
    expect(res.body.spec.health.probes).toHaveLength(1);
    expect(res.body.spec.health.probes[0].tcpSocket).toEqual({});
  });

  it('answers 409 when the patch carries a stale resourceVersion', async () => {
    const obj = await created();
    await patch(obj.metadata.name, { spec: { version: '2' } }, MERGE);
    const res = await patch(
      obj.metadata.name,
      { metadata: { resourceVersion: obj.metadata.resourceVersion }, spec: { version: '3' } },
      MERGE,
    );
    expect(res.status).toBe(409);
    expect(res.body.reason).toBe('Conflict');
  });

  it('answers 404 for a missing object', async () => {
    const res = await patch('does-not-exist', { spec: {} }, MERGE);
    expect(res.status).toBe(404);
  });

  it('answers 422 when the patched object is invalid', async () => {
    const obj = await created();
    const res = await patch(obj.metadata.name, { spec: { plugin: 'UPPER' } }, MERGE);
    expect(res.status).toBe(422);
    expect(res.body.details.causes[0].field).toBe('spec.plugin');
  });
});

describe('JSON patch', () => {
  it('applies add, replace and remove operations in order', async () => {
    const obj = await created();
    const res = await patch(
      obj.metadata.name,
      [
        { op: 'replace', path: '/spec/version', value: '5.0.0' },
        { op: 'add', path: '/metadata/labels', value: { tier: 'one' } },
        { op: 'remove', path: '/metadata/labels/tier' },
      ],
      JSON_PATCH,
    );
    expect(res.status).toBe(200);
    expect(res.body.spec.version).toBe('5.0.0');
    expect(res.body.metadata.labels).toBeUndefined();
  });

  it('applies the patch when a test operation holds', async () => {
    const obj = await created();
    const res = await patch(
      obj.metadata.name,
      [
        { op: 'test', path: '/spec/version', value: '1.0.0' },
        { op: 'replace', path: '/spec/version', value: '1.1.0' },
      ],
      JSON_PATCH,
    );
    expect(res.status).toBe(200);
    expect(res.body.spec.version).toBe('1.1.0');
  });

  it('answers 422 with the failed test as the cause, and changes nothing, when a test operation fails', async () => {
    const obj = await created();
    const res = await patch(
      obj.metadata.name,
      [
        { op: 'test', path: '/spec/version', value: '0.0.1' },
        { op: 'replace', path: '/spec/version', value: '9.9.9' },
      ],
      JSON_PATCH,
    );
    expect(res.status).toBe(422);
    // NewGenericServerResponse without isUnexpectedResponse: the patch library's message is dropped.
    expect(res.body).toEqual(
      aFailure(422, 'Invalid', 'the server rejected our request due to an error in our request', {}),
    );
    const after = await t.call('GET', t.path('pluginreleases', obj.metadata.name));
    expect(after.body.spec.version).toBe('1.0.0');
  });

  it('answers 422 when replacing a missing path', async () => {
    const obj = await created();
    const res = await patch(
      obj.metadata.name,
      [{ op: 'replace', path: '/spec/nothing/here', value: 1 }],
      JSON_PATCH,
    );
    expect(res.status).toBe(422);
    expect(res.body.reason).toBe('Invalid');
  });

  it('answers 400 when the body is not a list of operations', async () => {
    const obj = await created();
    const res = await patch(obj.metadata.name, { op: 'replace' }, JSON_PATCH);
    expect(res.status).toBe(400);
  });
});

describe('strategic merge patch', () => {
  it('is refused for custom resources with 415 UnsupportedMediaType', async () => {
    const obj = await created();
    const res = await patch(obj.metadata.name, { spec: { version: '2' } }, STRATEGIC);
    expect(res.status).toBe(415);
    expect(res.body.reason).toBe('UnsupportedMediaType');
  });

  it('merges a built-in object, keeping finalizers as a set', async () => {
    const name = uniqueName('smp');
    await t.call('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { a: '1' } } },
    });
    try {
      const res = await t.call('PATCH', `/api/v1/namespaces/${name}`, {
        body: JSON.stringify({ metadata: { labels: { b: '2' }, finalizers: ['example.com/keep'] } }),
        contentType: STRATEGIC,
      });
      expect(res.status).toBe(200);
      expect(res.body.metadata.labels).toMatchObject({ a: '1', b: '2' });
      expect(res.body.metadata.finalizers).toEqual(['example.com/keep']);
      const again = await t.call('PATCH', `/api/v1/namespaces/${name}`, {
        body: JSON.stringify({ metadata: { finalizers: ['example.com/other'] } }),
        contentType: STRATEGIC,
      });
      // normalizeElementOrder: an item the server lacks goes before the server's remaining ones.
      expect(again.body.metadata.finalizers).toEqual(['example.com/other', 'example.com/keep']);
      const removed = await t.call('PATCH', `/api/v1/namespaces/${name}`, {
        body: JSON.stringify({
          metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/keep', 'example.com/other'] },
        }),
        contentType: STRATEGIC,
      });
      expect(removed.body.metadata.finalizers).toBeUndefined();
    } finally {
      await t.call('DELETE', `/api/v1/namespaces/${name}`);
    }
  });
});

describe('server-side apply', () => {
  it('creates a missing object from the applied configuration', async () => {
    const name = uniqueName('ssa');
    const yaml = `apiVersion: pluginrelease.io/v1alpha1
kind: PluginRelease
metadata:
  name: ${name}
spec:
  plugin: echo
  version: "1.0.0"
  artifact:
    path: /opt/echo
    digest: sha256:${'b'.repeat(64)}
`;
    const res = await patch(name, yaml, APPLY, '?fieldManager=conformance');
    expect(res.status).toBe(201);
    expect(res.body.spec.artifact.path).toBe('/opt/echo');
  });

  it('merges the applied fields into the live object', async () => {
    const obj = await created();
    const yaml = `apiVersion: pluginrelease.io/v1alpha1
kind: PluginRelease
metadata:
  name: ${obj.metadata.name}
  labels:
    applied: "yes"
spec:
  version: "7.0.0"
`;
    const res = await patch(obj.metadata.name, yaml, APPLY, '?fieldManager=conformance&force=true');
    expect(res.status).toBe(200);
    expect(res.body.spec.version).toBe('7.0.0');
    expect(res.body.spec.plugin).toBe('echo');
    expect(res.body.metadata.labels.applied).toBe('yes');
  });

  it('requires a fieldManager, answering 422 for the PatchOptions', async () => {
    const obj = await created();
    const res = await patch(
      obj.metadata.name,
      'apiVersion: pluginrelease.io/v1alpha1\nkind: PluginRelease\n',
      APPLY,
    );
    expect(res.status).toBe(422);
    expect(res.body).toEqual(
      aFailure(
        422,
        'Invalid',
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
        {
          group: 'meta.k8s.io',
          kind: 'PatchOptions',
          causes: [
            {
              reason: 'FieldValueRequired',
              message: 'Required value: is required for apply patch',
              field: 'fieldManager',
            },
          ],
        },
      ),
    );
  });
});

describe('field ownership (managedFields)', () => {
  const applyYaml = (name: string, body: string) =>
    `apiVersion: pluginrelease.io/v1alpha1\nkind: PluginRelease\nmetadata:\n  name: ${name}\n${body}`;

  it('records the creating manager with an Update entry for the fields it set', async () => {
    const name = uniqueName('mf');
    const res = await t.call('POST', `${t.path('pluginreleases')}?fieldManager=alice`, {
      body: aRelease(name),
    });
    const entry = res.body.metadata.managedFields.find((e: Body) => e.manager === 'alice');
    expect(entry).toMatchObject({
      operation: 'Update',
      apiVersion: 'pluginrelease.io/v1alpha1',
      fieldsType: 'FieldsV1',
    });
    expect(entry.fieldsV1['f:spec']['f:plugin']).toEqual({});
    expect(entry.fieldsV1['f:spec']['f:artifact']['f:digest']).toEqual({});
  });

  it('records status writes under the status subresource', async () => {
    const name = uniqueName('mf');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const res = await t.call('PATCH', `${t.path('pluginreleases', name)}/status?fieldManager=controller`, {
      body: JSON.stringify({ status: { phase: 'Ready' } }),
      contentType: MERGE,
    });
    const entry = res.body.metadata.managedFields.find((e: Body) => e.manager === 'controller');
    // managedFields entries name their subresource since 1.22; before, the entry has none.
    expect(entry.operation).toBe('Update');
    expect(entry.subresource).toBe(byVersion(t.version, '1.22', { before: undefined, from: 'status' }));
    expect(entry.fieldsV1).toEqual({ 'f:status': { '.': {}, 'f:phase': {} } });
  });

  it('answers 409 with FieldManagerConflict causes when an apply changes a field another manager owns', async () => {
    const name = uniqueName('mf');
    await t.call('POST', `${t.path('pluginreleases')}?fieldManager=alice`, { body: aRelease(name) });
    const res = await patch(name, applyYaml(name, 'spec:\n  version: "9.0.0"\n'), APPLY, '?fieldManager=bob');
    expect(res.status).toBe(409);
    expect(res.body.reason).toBe('Conflict');
    expect(res.body.message).toBe(
      'Apply failed with 1 conflict: conflict with "alice" using pluginrelease.io/v1alpha1: .spec.version',
    );
    expect(res.body.details.causes).toEqual([
      {
        reason: 'FieldManagerConflict',
        message: 'conflict with "alice" using pluginrelease.io/v1alpha1',
        field: '.spec.version',
      },
    ]);
  });

  it('takes the field over with force', async () => {
    const name = uniqueName('mf');
    await t.call('POST', `${t.path('pluginreleases')}?fieldManager=alice`, { body: aRelease(name) });
    const res = await patch(
      name,
      applyYaml(name, 'spec:\n  version: "9.0.0"\n'),
      APPLY,
      '?fieldManager=bob&force=true',
    );
    expect(res.status).toBe(200);
    expect(res.body.spec.version).toBe('9.0.0');
    const managers = Object.fromEntries(res.body.metadata.managedFields.map((e: Body) => [e.manager, e]));
    expect(managers.bob).toMatchObject({ operation: 'Apply' });
    // Before 1.21 a CRD with an int-or-string field (anyOf) has no typed schema for apply, so its
    // fields are tracked untyped, which owns the map itself ('.') too.
    expect(managers.bob.fieldsV1['f:spec']).toEqual(
      byVersion(t.version, '1.21', { before: { '.': {}, 'f:version': {} }, from: { 'f:version': {} } }),
    );
    expect(managers.alice.fieldsV1['f:spec']['f:version']).toBeUndefined();
  });

  it('shares ownership without conflict when the applied value is equal', async () => {
    const name = uniqueName('mf');
    await t.call('POST', `${t.path('pluginreleases')}?fieldManager=alice`, { body: aRelease(name) });
    const res = await patch(name, applyYaml(name, 'spec:\n  version: "1.0.0"\n'), APPLY, '?fieldManager=bob');
    expect(res.status).toBe(200);
    const alice = res.body.metadata.managedFields.find((e: Body) => e.manager === 'alice');
    expect(alice.fieldsV1['f:spec']['f:version']).toEqual({});
  });

  it('removes the fields a manager stops applying when nobody else owns them', async () => {
    const name = uniqueName('mf');
    const full = `  labels:\n    keep: "1"\n    drop: "1"\nspec:\n  plugin: echo\n  version: "1.0.0"\n  artifact:\n    path: /opt/echo\n    digest: sha256:${'d'.repeat(64)}\n`;
    const first = await patch(name, applyYaml(name, full), APPLY, '?fieldManager=carol');
    expect(first.status).toBe(201);
    expect(first.body.metadata.labels).toEqual({ keep: '1', drop: '1' });
    const second = await patch(
      name,
      applyYaml(name, full.replace('    drop: "1"\n', '')),
      APPLY,
      '?fieldManager=carol',
    );
    expect(second.status).toBe(200);
    expect(second.body.metadata.labels).toEqual({ keep: '1' });
  });
});

describe('unsupported patch types', () => {
  it('answers 415 for an unknown patch content type', async () => {
    const obj = await created();
    const res = await patch(obj.metadata.name, '{}', 'text/plain');
    expect(res.status).toBe(415);
  });
});
