// Informer loop against a scripted list/watch source on fake timers: sync, events, resume, backoff, relist.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KubeApiError, type KubeStatus } from '../../../src/kube/errors.ts';
import { CacheSyncTimeout, Informer, waitForCacheSync } from '../../../src/kube/informer.ts';
import type {
  ListOptions,
  WatchEventType,
  WatchHandle,
  WatchRequest,
  WatchSource,
} from '../../../src/kube/resource.ts';
import type { KubeObject, ObjectList } from '../../../src/kube/types.ts';

interface Thing extends KubeObject {
  data?: string;
}

const thing = (name: string, rv: string, data = ''): Thing => ({
  apiVersion: 'v1',
  kind: 'Thing',
  metadata: { namespace: 'ns', name, resourceVersion: rv },
  data,
});

interface OpenWatch {
  request: WatchRequest;
  send(type: WatchEventType, object: Thing | KubeStatus): void;
  end(error?: unknown): void;
  stopped: boolean;
}

/** A list/watch source the test scripts: queued list results, queued watch failures, open watches. */
class ScriptedSource implements WatchSource<Thing> {
  readonly resource = 'things';
  lists: (ObjectList<Thing> | Error)[] = [];
  listCalls: ListOptions[] = [];
  watchFailures: Error[] = [];
  watches: OpenWatch[] = [];
  watchCallsAt: number[] = [];

  async listPage(_namespace: string | undefined, options: ListOptions): Promise<ObjectList<Thing>> {
    this.listCalls.push(options);
    const next = this.lists.shift() ?? { items: [], resourceVersion: '1' };
    if (next instanceof Error) throw next;
    return structuredClone(next);
  }

  async watch(
    _namespace: string | undefined,
    request: WatchRequest,
    onEvent: (type: WatchEventType, object: Thing | KubeStatus) => void,
    onDone: (error?: unknown) => void,
  ): Promise<WatchHandle> {
    this.watchCallsAt.push(Date.now());
    const failure = this.watchFailures.shift();
    if (failure) {
      onDone(failure);
      return { stop() {} };
    }
    let ended = false;
    const open: OpenWatch = {
      request,
      stopped: false,
      send: (type, object) => {
        if (!ended) onEvent(type, structuredClone(object));
      },
      end: (error) => {
        if (ended) return;
        ended = true;
        onDone(error);
      },
    };
    this.watches.push(open);
    return {
      stop: () => {
        open.stopped = true;
        open.end(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      },
    };
  }

  get current(): OpenWatch {
    return this.watches.at(-1)!;
  }
}

function recordEvents(informer: Informer<Thing>): string[] {
  const events: string[] = [];
  informer.on({
    add: (o) => events.push(`add ${o.metadata.name}@${o.metadata.resourceVersion}`),
    update: (old, o) =>
      events.push(`update ${o.metadata.name}@${old.metadata.resourceVersion}->${o.metadata.resourceVersion}`),
    delete: (o) => events.push(`delete ${o.metadata.name}`),
  });
  return events;
}

const serverError = () =>
  new KubeApiError('Transient', 'watch things: Internal error', { statusCode: 500, reason: 'InternalError' });
const gone = () =>
  new KubeApiError('Terminal', 'watch things: too old', { statusCode: 410, reason: 'Expired' });

let informer: Informer<Thing> | undefined;
beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
});
afterEach(async () => {
  await informer?.stop();
  informer = undefined;
  vi.useRealTimers();
});

describe('Informer', () => {
  it('fills the cache from every list page, marks itself synced and watches from the list version', async () => {
    const source = new ScriptedSource();
    source.lists = [
      { items: [thing('a', '5')], resourceVersion: '9', continue: 'page2' },
      { items: [thing('b', '7')], resourceVersion: '9' },
    ];
    informer = new Informer(source, { labelSelector: 'app=x', pageSize: 1 });
    const events = recordEvents(informer);
    const sync = informer.waitForSync();
    expect(informer.synced).toBe(false);
    informer.start();
    await sync;
    expect(informer.synced).toBe(true);
    expect(events).toEqual(['add a@5', 'add b@7']);
    expect(informer.keys().sort()).toEqual(['ns/a', 'ns/b']);
    expect(source.listCalls.map((c) => [c.limit, c.continue, c.labelSelector])).toEqual([
      [1, undefined, 'app=x'],
      [1, 'page2', 'app=x'],
    ]);
    await vi.advanceTimersByTimeAsync(0);
    expect(source.current.request).toMatchObject({
      resourceVersion: '9',
      allowWatchBookmarks: true,
      labelSelector: 'app=x',
    });
  });

  it('applies watch events to the cache and the handlers, and bookmarks only to the resume version', async () => {
    const source = new ScriptedSource();
    source.lists = [{ items: [thing('a', '5')], resourceVersion: '5' }];
    informer = new Informer(source);
    const events = recordEvents(informer);
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.current.send('ADDED', thing('b', '6'));
    source.current.send('MODIFIED', thing('a', '7', 'changed'));
    source.current.send('DELETED', thing('b', '8'));
    source.current.send('BOOKMARK', { metadata: { resourceVersion: '12' } } as Thing);
    expect(events).toEqual(['add a@5', 'add b@6', 'update a@5->7', 'delete b']);
    expect(informer.get('ns/a')?.data).toBe('changed');
    expect(informer.get('ns/b')).toBeUndefined();
    expect(informer.resourceVersion).toBe('12');
  });

  it('resumes the watch from the last seen version when the stream ends, without relisting', async () => {
    const source = new ScriptedSource();
    source.lists = [{ items: [], resourceVersion: '5' }];
    informer = new Informer(source, { initialBackoffMs: 100 });
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.current.send('ADDED', thing('a', '6'));
    source.current.end();
    await vi.advanceTimersByTimeAsync(130);
    expect(source.watches).toHaveLength(2);
    expect(source.current.request.resourceVersion).toBe('6');
    expect(informer.stats.lists).toBe(1);
  });

  it('backs off exponentially while watch requests keep failing, then recovers', async () => {
    const source = new ScriptedSource();
    source.watchFailures = [serverError(), serverError(), serverError()];
    informer = new Informer(source, { initialBackoffMs: 100 });
    informer.start();
    await vi.advanceTimersByTimeAsync(5_000);
    const t = source.watchCallsAt;
    const gaps = t.slice(1).map((at, i) => at - t[i]!);
    expect(gaps).toHaveLength(3);
    // 100, 200, 400 ms, each with up to 20% jitter.
    [100, 200, 400].forEach((want, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(want);
      expect(gaps[i]).toBeLessThanOrEqual(want * 1.2 + 1);
    });
    expect(informer.stats.failures).toBe(3);
    expect(source.current.stopped).toBe(false);
    expect(informer.stats.lists).toBe(1);
  });

  it('reads how long a failed watch stayed open from its clock: a long one does not back off', async () => {
    const source = new ScriptedSource();
    source.watchFailures = [serverError(), serverError(), serverError()];
    // Each reading is two seconds after the last: every watch looks as if it stayed open a while.
    let readings = 0;
    const clock = { now: () => new Date(Date.UTC(2026, 0, 1) + 2_000 * readings++) };
    informer = new Informer(source, { initialBackoffMs: 100, clock });
    informer.start();
    await vi.advanceTimersByTimeAsync(1_000);
    const t = source.watchCallsAt;
    const gaps = t.slice(1).map((at, i) => at - t[i]!);
    expect(gaps).toHaveLength(3);
    for (const gap of gaps) expect(gap).toBeLessThanOrEqual(121);
  });

  it('relists after a 410 ERROR event and emits only what changed meanwhile', async () => {
    const source = new ScriptedSource();
    source.lists = [
      { items: [thing('a', '5'), thing('b', '6'), thing('c', '7')], resourceVersion: '7' },
      { items: [thing('a', '5'), thing('b', '20'), thing('d', '21')], resourceVersion: '21' },
    ];
    informer = new Informer(source);
    const events = recordEvents(informer);
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    events.length = 0;
    source.current.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' });
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(['update b@6->20', 'add d@21', 'delete c']);
    expect(informer.stats.relistsAfterGone).toBe(1);
    expect(source.current.request.resourceVersion).toBe('21');
  });

  it('relists when the watch request itself is refused with 410 Gone', async () => {
    const source = new ScriptedSource();
    source.lists = [
      { items: [], resourceVersion: '3' },
      { items: [thing('a', '30')], resourceVersion: '30' },
    ];
    source.watchFailures = [gone()];
    informer = new Informer(source);
    const events = recordEvents(informer);
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(['add a@30']);
    expect(source.current.request.resourceVersion).toBe('30');
  });

  it('relists at once after one 410 but backs off when 410s repeat without progress', async () => {
    const source = new ScriptedSource();
    source.watchFailures = [gone(), gone(), gone()];
    informer = new Informer(source, { initialBackoffMs: 100 });
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(informer.stats.lists).toBe(2);
    await vi.advanceTimersByTimeAsync(90);
    expect(informer.stats.lists).toBe(2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(informer.stats.lists).toBe(4);
    expect(source.watches).toHaveLength(1);
  });

  it('restarts after a watch ERROR event that is not 410', async () => {
    const source = new ScriptedSource();
    source.lists = [{ items: [], resourceVersion: '3' }];
    informer = new Informer(source, { initialBackoffMs: 100 });
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.current.send('ERROR', {
      kind: 'Status',
      code: 500,
      reason: 'InternalError',
      message: 'etcd hiccup',
    });
    expect(source.watches[0]!.stopped).toBe(true);
    await vi.advanceTimersByTimeAsync(300);
    expect(source.watches).toHaveLength(2);
    expect(informer.stats.failures).toBe(1);
    expect(informer.stats.lists).toBe(1);
  });

  it('keeps retrying a failing list and syncs once it succeeds', async () => {
    const source = new ScriptedSource();
    source.lists = [serverError(), serverError(), { items: [thing('a', '4')], resourceVersion: '4' }];
    informer = new Informer(source, { initialBackoffMs: 100 });
    informer.start();
    await vi.advanceTimersByTimeAsync(150);
    expect(informer.synced).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(informer.synced).toBe(true);
    expect(informer.get('ns/a')).toBeDefined();
  });

  it('keeps serving events when a handler throws', async () => {
    const source = new ScriptedSource();
    informer = new Informer(source);
    informer.on({
      add: () => {
        throw new Error('handler bug');
      },
    });
    const events = recordEvents(informer);
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.current.send('ADDED', thing('a', '2'));
    source.current.send('ADDED', thing('b', '3'));
    expect(events).toEqual(['add a@2', 'add b@3']);
  });

  it('rejects waitForSync when its signal aborts first', async () => {
    const source = new ScriptedSource();
    source.lists = [serverError()];
    informer = new Informer(source, { initialBackoffMs: 10_000 });
    informer.start();
    const abort = new AbortController();
    const waiting = informer.waitForSync(abort.signal);
    abort.abort(new Error('shutting down'));
    await expect(waiting).rejects.toThrow('shutting down');
  });

  it('stops the open watch and ends its loop on stop()', async () => {
    const source = new ScriptedSource();
    informer = new Informer(source);
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    const open = source.current;
    await informer.stop();
    expect(open.stopped).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(source.watches).toHaveLength(1);
  });
});

describe('Informer indexes', () => {
  const owned = (name: string, rv: string, owner: string) => ({ ...thing(name, rv), data: owner });
  const byOwner = (o: Thing) => (o.data ? [`ns/${o.data}`] : []);
  const names = (things: Thing[]) => things.map((t) => t.metadata.name).sort();

  it('files the listed objects and every later event under their index values', async () => {
    const source = new ScriptedSource();
    source.lists = [{ items: [owned('a', '1', 'x'), owned('b', '2', 'y')], resourceVersion: '2' }];
    informer = new Informer(source);
    informer.addIndex('owner', byOwner);
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.current.send('ADDED', owned('c', '3', 'x'));
    source.current.send('MODIFIED', owned('b', '4', 'x'));
    source.current.send('DELETED', owned('a', '5', 'x'));
    expect(names(informer.byIndex('owner', 'ns/x'))).toEqual(['b', 'c']);
    expect(informer.byIndex('owner', 'ns/y')).toEqual([]);
    expect(informer.indexValues('owner')).toEqual(['ns/x']);
  });

  it('refiles the whole cache when a 410 forces a relist', async () => {
    const source = new ScriptedSource();
    source.lists = [
      { items: [owned('a', '1', 'x')], resourceVersion: '1' },
      { items: [owned('a', '6', 'y'), owned('d', '6', 'x')], resourceVersion: '6' },
    ];
    informer = new Informer(source);
    informer.addIndex('owner', byOwner);
    informer.start();
    await vi.advanceTimersByTimeAsync(0);
    source.current.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    await vi.advanceTimersByTimeAsync(0);
    expect(names(informer.byIndex('owner', 'ns/x'))).toEqual(['d']);
    expect(names(informer.byIndex('owner', 'ns/y'))).toEqual(['a']);
  });

  it('indexes what the cache already holds when the index is added late', async () => {
    const source = new ScriptedSource();
    source.lists = [{ items: [owned('a', '1', 'x'), thing('b', '2')], resourceVersion: '2' }];
    informer = new Informer(source);
    informer.start();
    await informer.waitForSync();
    informer.addIndex('owner', byOwner);
    expect(names(informer.byIndex('owner', 'ns/x'))).toEqual(['a']);
    expect(() => informer?.addIndex('owner', byOwner)).toThrow(/already exists/);
    expect(() => informer?.byIndex('nope', 'ns/x')).toThrow(/no index named nope/);
  });
});

describe('waitForCacheSync', () => {
  const forbidden = () =>
    new KubeApiError(
      'Terminal',
      'list things-0: things is forbidden: User "agent" cannot list resource "things"',
      {
        statusCode: 403,
        reason: 'Forbidden',
      },
    );
  const informers: Informer<Thing>[] = [];
  afterEach(async () => {
    for (const i of informers.splice(0)) await i.stop();
  });
  const anInformer = (lists: (ObjectList<Thing> | Error)[], resource = 'things') => {
    const source = new ScriptedSource();
    Object.defineProperty(source, 'resource', { value: resource });
    source.lists = lists;
    const i = new Informer(source, { initialBackoffMs: 1_000 });
    informers.push(i);
    i.start();
    return i;
  };

  it.each([
    {
      name: 'resolves once every cache has synced',
      lists: [[serverError(), { items: [], resourceVersion: '2' }], [{ items: [], resourceVersion: '3' }]],
      after: 2_000,
      expected: undefined,
    },
    {
      name: 'fails at once on a refused list, naming the verb, the resource and the answer',
      lists: [[forbidden()], [{ items: [], resourceVersion: '3' }]],
      after: 0,
      expected:
        /the API server refused a list\): list things-0: things is forbidden: User "agent" cannot list/,
    },
    {
      name: 'fails after the timeout naming each cache still missing and its last error',
      lists: [[serverError(), serverError(), serverError(), serverError(), serverError()], []],
      after: 10_000,
      expected: /not synced within 5 s\): watch things: Internal error$/,
    },
  ])('$name', async ({ lists, after, expected }) => {
    const all = lists.map((l, n) => anInformer(l, `things-${n}`));
    const waiting = waitForCacheSync(all, 5_000).then(
      () => undefined,
      (error: Error) => error,
    );
    await vi.advanceTimersByTimeAsync(after);
    const outcome = await waiting;
    if (expected === undefined) expect(outcome).toBeUndefined();
    else {
      expect(outcome).toBeInstanceOf(CacheSyncTimeout);
      expect(outcome?.message).toMatch(expected);
      expect(outcome?.message).not.toMatch(/things-1/);
    }
  });
});
