// Conformance: watch streams — events from a resourceVersion, initial state, selector transitions,
// timeoutSeconds, bookmarks, and 410 Gone (an ERROR event with an Expired Status).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aRelease, openTarget, REAL, type Target, uniqueName, type WatchEvent } from './target.ts';

let t: Target;
beforeAll(async () => {
  // A short history, so a handful of writes pushes an old resourceVersion out (etcd compaction).
  t = await openTarget({ watchHistory: 40 });
});
afterAll(async () => {
  await t?.close();
});

const MERGE = 'application/merge-patch+json';

async function listRv(query = ''): Promise<string> {
  const res = await t.call('GET', `${t.path('pluginreleases')}${query}`);
  return res.body.metadata.resourceVersion;
}

function patchRelease(name: string, patch: unknown) {
  return t.call('PATCH', t.path('pluginreleases', name), {
    body: JSON.stringify(patch),
    contentType: MERGE,
  });
}

const summary = (events: WatchEvent[]) =>
  events.map((e) => `${e.type} ${e.object.metadata?.name ?? ''}`.trim());

describe('watch', () => {
  it('streams ADDED, MODIFIED and DELETED after the list resourceVersion', async () => {
    const name = uniqueName('w');
    const rv = await listRv();
    const watching = t.stream(`${t.path('pluginreleases')}?watch=1&resourceVersion=${rv}`, (events) =>
      events.some((e) => e.type === 'DELETED'),
    );
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    await patchRelease(name, { spec: { version: '2.0.0' } });
    await t.call('DELETE', t.path('pluginreleases', name));
    const events = await watching;
    expect(summary(events)).toEqual([`ADDED ${name}`, `MODIFIED ${name}`, `DELETED ${name}`]);
    expect(events[1]!.object.spec.version).toBe('2.0.0');
    const rvs = events.map((e) => BigInt(e.object.metadata.resourceVersion));
    expect(rvs[0]! < rvs[1]! && rvs[1]! < rvs[2]!).toBe(true);
    expect(events[0]!.object.kind).toBe('PluginRelease');
  });

  it('replays the changes made between a past resourceVersion and the watch', async () => {
    const name = uniqueName('w');
    const rv = await listRv();
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    await patchRelease(name, { metadata: { labels: { seen: 'yes' } } });
    const events = await t.stream(
      `${t.path('pluginreleases')}?watch=1&resourceVersion=${rv}`,
      (e) => e.length >= 2,
    );
    expect(summary(events)).toEqual([`ADDED ${name}`, `MODIFIED ${name}`]);
  });

  it('starts with the current objects as ADDED when no resourceVersion is given', async () => {
    const name = uniqueName('w');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const events = await t.stream(
      `${t.path('pluginreleases')}?watch=1&fieldSelector=metadata.name%3D${name}`,
      (e) => e.length >= 1,
    );
    expect(summary(events)).toEqual([`ADDED ${name}`]);
  });

  it('turns selector transitions into ADDED and DELETED', async () => {
    const name = uniqueName('w');
    await t.call('POST', t.path('pluginreleases'), {
      body: aRelease(name, {}, { labels: { watched: 'no' } }),
    });
    const rv = await listRv();
    const watching = t.stream(
      `${t.path('pluginreleases')}?watch=1&resourceVersion=${rv}&labelSelector=watched%3Dyes`,
      (e) => e.length >= 3,
    );
    await patchRelease(name, { metadata: { labels: { watched: 'yes' } } });
    await patchRelease(name, { spec: { version: '2.0.0' } });
    await patchRelease(name, { metadata: { labels: { watched: 'no' } } });
    const events = await watching;
    expect(summary(events)).toEqual([`ADDED ${name}`, `MODIFIED ${name}`, `DELETED ${name}`]);
    // The watch cache sends the last matching content, stamped with the event's resourceVersion.
    expect(events[2]!.object.metadata.labels.watched).toBe('yes');
    expect(events[2]!.object.spec.version).toBe('2.0.0');
    const [, modified, deleted] = events.map((e) => BigInt(e.object.metadata.resourceVersion));
    expect(deleted! > modified!).toBe(true);
  });

  it('filters by field selector', async () => {
    const wanted = uniqueName('w');
    const other = uniqueName('w');
    const rv = await listRv();
    const watching = t.stream(
      `${t.path('pluginreleases')}?watch=1&resourceVersion=${rv}&fieldSelector=metadata.name%3D${wanted}`,
      (e) => e.length >= 1,
    );
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(other) });
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(wanted) });
    expect(summary(await watching)).toEqual([`ADDED ${wanted}`]);
  });

  it('ends the stream after timeoutSeconds', async () => {
    const rv = await listRv();
    const started = Date.now();
    const events = await t.stream(
      `${t.path('pluginreleases')}?watch=1&resourceVersion=${rv}&timeoutSeconds=1`,
      undefined,
      8000,
    );
    const elapsed = Date.now() - started;
    expect(events).toEqual([]);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5000);
  });

  it('sends a BOOKMARK before the timeout, once the resource changed, when bookmarks are allowed', async () => {
    const rv = await listRv();
    const watching = t.stream(
      `${t.path('pluginreleases')}?watch=1&resourceVersion=${rv}&labelSelector=bookmarked%3Dyes&allowWatchBookmarks=true&timeoutSeconds=4`,
      (e) => e.some((x) => x.type === 'BOOKMARK'),
      8000,
    );
    // A change the selector filters out. Before 1.27 the watch cache only bookmarks a change of this
    // resource newer than the watch's resourceVersion (1.27+ may bookmark the watch's own), so
    // every version sends one once the resource changed after the watch started.
    const created = await t.call('POST', t.path('pluginreleases'), { body: aRelease(uniqueName('w')) });
    const events = await watching;
    expect(events.map((e) => e.type)).toEqual(['BOOKMARK']);
    const bookmark = events[0]!;
    expect(bookmark.object.kind).toBe('PluginRelease');
    expect(
      BigInt(bookmark.object.metadata.resourceVersion) >= BigInt(created.body.metadata.resourceVersion),
    ).toBe(true);
  });

  it('answers a too old resourceVersion with an ERROR event carrying a 410 Expired Status', async () => {
    let oldRv: string;
    if (REAL) {
      // A real cluster compacts etcd every few minutes; resourceVersion 1 is long gone.
      oldRv = '1';
    } else {
      oldRv = await listRv();
      const name = uniqueName('churn');
      await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
      for (let i = 0; i < 45; i++) await patchRelease(name, { metadata: { labels: { i: String(i) } } });
    }
    const events = await t.stream(
      `${t.path('pluginreleases')}?watch=1&resourceVersion=${oldRv}`,
      undefined,
      8000,
    );
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('ERROR');
    expect(events[0]!.object).toMatchObject({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'Expired',
      code: 410,
    });
    expect(events[0]!.object.message).toMatch(/^too old resource version: \d+ \(\d+\)$/);
  });

  it('with sendInitialEvents, ends the initial ADDED events with an initial-events-end BOOKMARK', async (ctx) => {
    t.needs(ctx, 'sendInitialEvents (the WatchList feature, on by default)', '1.32');
    const name = uniqueName('w');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
    const events = await t.stream(
      `${t.path('pluginreleases')}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&fieldSelector=metadata.name%3D${name}`,
      (e) => e.some((x) => x.type === 'BOOKMARK'),
    );
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'BOOKMARK']);
    expect(events[1]!.object.metadata.annotations).toEqual({ 'k8s.io/initial-events-end': 'true' });
  });
});
