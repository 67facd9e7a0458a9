// Conformance: the status subresource and metadata.generation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aRelease, type Body, openTarget, type Target, uniqueName } from './target.ts';
import { atLeast } from './version.ts';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
});
afterAll(async () => {
  await t?.close();
});

async function created(name = uniqueName('s')) {
  const res = await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
  expect(res.status).toBe(201);
  return res.body;
}

const merge = 'application/merge-patch+json';

describe('the status subresource', () => {
  it('changes status through /status without bumping generation', async () => {
    const obj = await created();
    const res = await t.call('PATCH', `${t.path('pluginreleases', obj.metadata.name)}/status`, {
      body: JSON.stringify({ status: { phase: 'Ready', observedGeneration: 1 } }),
      contentType: merge,
    });
    expect(res.status).toBe(200);
    expect(res.body.status.phase).toBe('Ready');
    expect(res.body.metadata.generation).toBe(1);
    expect(BigInt(res.body.metadata.resourceVersion) > BigInt(obj.metadata.resourceVersion)).toBe(true);
  });

  it('ignores spec changes sent to /status', async () => {
    const obj = await created();
    const res = await t.call('PATCH', `${t.path('pluginreleases', obj.metadata.name)}/status`, {
      body: JSON.stringify({ spec: { version: '9.9.9' }, status: { phase: 'Pending' } }),
      contentType: merge,
    });
    expect(res.body.spec.version).toBe('1.0.0');
    expect(res.body.status.phase).toBe('Pending');
  });

  it('ignores metadata label changes sent to /status', async () => {
    const obj = await created();
    const res = await t.call('PATCH', `${t.path('pluginreleases', obj.metadata.name)}/status`, {
      body: JSON.stringify({ metadata: { labels: { sneaky: 'yes' } }, status: { phase: 'Pending' } }),
      contentType: merge,
    });
    expect(res.body.metadata.labels?.sneaky).toBeUndefined();
  });

  it('ignores status changes sent to the main endpoint', async () => {
    const obj = await created();
    const res = await t.call('PATCH', `${t.path('pluginreleases', obj.metadata.name)}?fieldManager=sneaky`, {
      body: JSON.stringify({ status: { phase: 'Ready' } }),
      contentType: merge,
    });
    expect(res.status).toBe(200);
    expect(res.body.status).toBeUndefined();
    const sneaky = res.body.metadata.managedFields.find((e: Body) => e.manager === 'sneaky');
    if (atLeast(t.version, '1.21')) {
      // The field manager leaves out the fields the strategy resets: nothing changed, no write.
      expect(res.body.metadata.resourceVersion).toBe(obj.metadata.resourceVersion);
      expect(sneaky).toBeUndefined();
    } else {
      // Before 1.21 the patcher is recorded as owning the status it could not write: that is a write.
      expect(BigInt(res.body.metadata.resourceVersion) > BigInt(obj.metadata.resourceVersion)).toBe(true);
      expect(sneaky.fieldsV1).toEqual({ 'f:status': { '.': {}, 'f:phase': {} } });
    }
  });

  it('replaces status with PUT on /status, checking resourceVersion', async () => {
    const obj = await created();
    const body = { ...obj, status: { phase: 'Progressing' } };
    const res = await t.call('PUT', `${t.path('pluginreleases', obj.metadata.name)}/status`, { body });
    expect(res.status).toBe(200);
    expect(res.body.status.phase).toBe('Progressing');
    const stale = await t.call('PUT', `${t.path('pluginreleases', obj.metadata.name)}/status`, { body });
    expect(stale.status).toBe(409);
  });

  it('validates status against the schema with 422', async () => {
    const obj = await created();
    const res = await t.call('PATCH', `${t.path('pluginreleases', obj.metadata.name)}/status`, {
      body: JSON.stringify({ status: { phase: 'Bogus' } }),
      contentType: merge,
    });
    expect(res.status).toBe(422);
    expect(res.body.details.causes[0]).toMatchObject({
      reason: 'FieldValueNotSupported',
      field: 'status.phase',
    });
  });
});

describe('metadata.generation', () => {
  it('increments on a spec change', async () => {
    const obj = await created();
    const res = await t.call('PATCH', t.path('pluginreleases', obj.metadata.name), {
      body: JSON.stringify({ spec: { version: '2.0.0' } }),
      contentType: merge,
    });
    expect(res.body.metadata.generation).toBe(2);
  });

  it('stays the same on a metadata-only change', async () => {
    const obj = await created();
    const res = await t.call('PATCH', t.path('pluginreleases', obj.metadata.name), {
      body: JSON.stringify({ metadata: { labels: { a: 'b' }, annotations: { note: 'x' } } }),
      contentType: merge,
    });
    expect(res.body.metadata.labels).toEqual({ a: 'b' });
    expect(res.body.metadata.generation).toBe(1);
  });

  it('cannot be set by the client', async () => {
    const obj = await created();
    const res = await t.call('PATCH', t.path('pluginreleases', obj.metadata.name), {
      body: JSON.stringify({ metadata: { generation: 42 } }),
      contentType: merge,
    });
    expect(res.body.metadata.generation).toBe(1);
  });
});
