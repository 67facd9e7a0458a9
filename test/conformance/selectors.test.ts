// Conformance: label and field selectors, list resourceVersion semantics, and limit/continue paging.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aRelease, type Body, openTarget, type Target, uniqueName } from './target.ts';

let t: Target;
const names: Record<string, string> = {};

beforeAll(async () => {
  t = await openTarget();
  const fleet: Array<[string, Record<string, string>]> = [
    ['a', { tier: 'web', env: 'prod' }],
    ['b', { tier: 'web', env: 'dev' }],
    ['c', { tier: 'db', env: 'prod' }],
    ['d', { tier: 'db' }],
    ['e', {}],
  ];
  for (const [key, labels] of fleet) {
    names[key] = `sel-${key}`;
    const res = await t.call('POST', t.path('pluginreleases'), {
      body: aRelease(names[key]!, {}, { labels }),
    });
    expect(res.status).toBe(201);
  }
});
afterAll(async () => {
  await t?.close();
});

async function listNames(query: string): Promise<string[]> {
  const res = await t.call('GET', `${t.path('pluginreleases')}?${query}`);
  expect(res.status).toBe(200);
  return res.body.items.map((i: Body) => i.metadata.name).sort();
}

describe('label selectors', () => {
  it.each([
    ['tier=web', ['a', 'b']],
    ['tier==web', ['a', 'b']],
    ['tier!=web', ['c', 'd', 'e']],
    ['tier in (web,db),env=prod', ['a', 'c']],
    ['env notin (prod)', ['b', 'd', 'e']],
    ['env', ['a', 'b', 'c']],
    ['!env', ['d', 'e']],
    ['tier=db,!env', ['d']],
  ])('selects %s', async (selector, expected) => {
    expect(await listNames(`labelSelector=${encodeURIComponent(selector)}`)).toEqual(
      expected.map((k) => names[k]),
    );
  });

  it('answers 400 BadRequest for a malformed selector', async () => {
    const res = await t.call(
      'GET',
      `${t.path('pluginreleases')}?labelSelector=${encodeURIComponent('tier in web')}`,
    );
    expect(res.status).toBe(400);
    expect(res.body.reason).toBe('BadRequest');
  });
});

describe('field selectors', () => {
  it('selects by metadata.name', async () => {
    expect(await listNames(`fieldSelector=metadata.name%3D${names.c}`)).toEqual([names.c]);
  });

  it('selects by metadata.name inequality', async () => {
    expect(await listNames(`fieldSelector=metadata.name!%3D${names.c}`)).toEqual(
      ['a', 'b', 'd', 'e'].map((k) => names[k]),
    );
  });

  it('selects by metadata.namespace across namespaces', async () => {
    const res = await t.call(
      'GET',
      `/apis/pluginrelease.io/v1alpha1/pluginreleases?fieldSelector=metadata.namespace%3D${t.namespace}`,
    );
    expect(res.body.items).toHaveLength(5);
  });

  it('answers 400 for a field the resource does not support', async () => {
    const res = await t.call('GET', `${t.path('pluginreleases')}?fieldSelector=spec.plugin%3Decho`);
    expect(res.status).toBe(400);
    expect(res.body.message).toBe('field label not supported: spec.plugin');
  });
});

describe('paging', () => {
  it('pages with limit and continue in name order, with remainingItemCount', async () => {
    const first = await t.call('GET', `${t.path('pluginreleases')}?limit=2`);
    expect(first.body.items.map((i: Body) => i.metadata.name)).toEqual([names.a, names.b]);
    expect(first.body.metadata.continue).toBeTruthy();
    expect(first.body.metadata.remainingItemCount).toBe(3);
    const second = await t.call(
      'GET',
      `${t.path('pluginreleases')}?limit=2&continue=${encodeURIComponent(first.body.metadata.continue)}`,
    );
    expect(second.body.items.map((i: Body) => i.metadata.name)).toEqual([names.c, names.d]);
    expect(second.body.metadata.resourceVersion).toBe(first.body.metadata.resourceVersion);
    const third = await t.call(
      'GET',
      `${t.path('pluginreleases')}?limit=2&continue=${encodeURIComponent(second.body.metadata.continue)}`,
    );
    expect(third.body.items.map((i: Body) => i.metadata.name)).toEqual([names.e]);
    // Custom resource lists are unstructured: the last page carries an empty continue.
    expect(third.body.metadata.continue).toBe('');
  });

  it('serves later pages from the snapshot of the first page', async () => {
    const first = await t.call('GET', `${t.path('pluginreleases')}?limit=3`);
    const added = uniqueName('sel-z');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(added) });
    await t.call('PATCH', t.path('pluginreleases', names.d!), {
      body: JSON.stringify({ spec: { version: '4.0.0' } }),
      contentType: 'application/merge-patch+json',
    });
    const rest = await t.call(
      'GET',
      `${t.path('pluginreleases')}?limit=10&continue=${encodeURIComponent(first.body.metadata.continue)}`,
    );
    const items = rest.body.items;
    expect(items.map((i: Body) => i.metadata.name)).toEqual([names.d, names.e]);
    expect(items[0].spec.version).toBe('1.0.0');
    await t.call('DELETE', t.path('pluginreleases', added));
  });

  it('pages through selector matches only', async () => {
    const first = await t.call('GET', `${t.path('pluginreleases')}?limit=1&labelSelector=tier%3Ddb`);
    expect(first.body.items.map((i: Body) => i.metadata.name)).toEqual([names.c]);
    const next = await t.call(
      'GET',
      `${t.path('pluginreleases')}?limit=1&labelSelector=tier%3Ddb&continue=${encodeURIComponent(first.body.metadata.continue)}`,
    );
    expect(next.body.items.map((i: Body) => i.metadata.name)).toEqual([names.d]);
  });
});

describe('list resourceVersion', () => {
  it('serves resourceVersion=0 from the latest state', async () => {
    const res = await t.call('GET', `${t.path('pluginreleases')}?resourceVersion=0`);
    expect(res.status).toBe(200);
    expect(res.body.items.length).toBeGreaterThanOrEqual(5);
  });

  it('serves an exact older resourceVersion as it was then', async () => {
    const before = await t.call('GET', t.path('pluginreleases'));
    const rv = before.body.metadata.resourceVersion;
    const added = uniqueName('sel-y');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(added) });
    const then = await t.call(
      'GET',
      `${t.path('pluginreleases')}?resourceVersion=${rv}&resourceVersionMatch=Exact`,
    );
    expect(then.status).toBe(200);
    expect(then.body.metadata.resourceVersion).toBe(rv);
    expect(then.body.items.some((i: Body) => i.metadata.name === added)).toBe(false);
    await t.call('DELETE', t.path('pluginreleases', added));
  });
});
