// The controller runner over real informers on scripted sources: cache sync and its timeout, a queue per
// term of leadership, the health endpoints, and stop.
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KubeApiError } from '../../../src/kube/errors.ts';
import { CacheSyncTimeout, Informer } from '../../../src/kube/informer.ts';
import type { ListOptions, WatchHandle, WatchSource } from '../../../src/kube/resource.ts';
import { Runner, type RunnerOptions } from '../../../src/kube/runner.ts';
import type { KubeObject, ObjectList } from '../../../src/kube/types.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import type { LeaseLock, LeaseRecord, LeaseSnapshot } from '../../../src/runtime/leader.ts';
import { done } from '../../../src/runtime/reconcile.ts';

type List = ObjectList<KubeObject>;

const things = (...names: string[]): List => ({
  items: names.map((name) => ({
    apiVersion: 'v1',
    kind: 'Thing',
    metadata: { namespace: 'ns', name, resourceVersion: '1' },
  })),
  resourceVersion: '1',
});

/** A list that answers when the test says so, and rejects when the informer's request is aborted. */
function pendingList(): { answer: (signal?: AbortSignal) => Promise<List>; resolve: (list: List) => void } {
  const list = Promise.withResolvers<List>();
  return {
    answer: (signal) =>
      new Promise((resolve, reject) => {
        list.promise.then(resolve);
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    resolve: list.resolve,
  };
}

/** Lists with `answer`; its watches stay open and silent, counted until the informer stops them. */
class Source implements WatchSource<KubeObject> {
  openWatches = 0;
  readonly resource: string;
  readonly #answer: (signal?: AbortSignal) => Promise<List>;

  constructor(resource: string, answer: (signal?: AbortSignal) => Promise<List> = async () => things()) {
    this.resource = resource;
    this.#answer = answer;
  }

  listPage(_namespace: string | undefined, options: ListOptions): Promise<List> {
    return this.#answer(options.signal);
  }

  async watch(): Promise<WatchHandle> {
    this.openWatches++;
    return { stop: () => this.openWatches-- };
  }
}

/** One Lease for one candidate; while `reachable` is false every call fails, as in a partition. */
class PartitionableLease implements LeaseLock {
  readonly description = 'test/lease';
  reachable = true;
  #snapshot: LeaseSnapshot | undefined;
  #version = 0;

  async get(): Promise<LeaseSnapshot | undefined> {
    this.#check();
    return this.#snapshot && structuredClone(this.#snapshot);
  }

  async create(record: LeaseRecord): Promise<LeaseSnapshot> {
    return this.#write(record);
  }

  async update(record: LeaseRecord): Promise<LeaseSnapshot> {
    return this.#write(record);
  }

  #write(record: LeaseRecord): LeaseSnapshot {
    this.#check();
    this.#snapshot = { record: structuredClone(record), resourceVersion: String(++this.#version) };
    return structuredClone(this.#snapshot);
  }

  #check(): void {
    if (!this.reachable) throw new Error('connection refused');
  }
}

const runners: Runner[] = [];
afterEach(async () => {
  for (const runner of runners.splice(0)) await runner.stop();
  vi.useRealTimers();
});

function aRunner(sources: Source[], extra: Partial<RunnerOptions> = {}) {
  const caches = sources.map((s) => new Informer(s, { initialBackoffMs: 10_000 }));
  const reconciled: string[] = [];
  const runner = new Runner({
    name: 'things',
    caches,
    reconcile: async (key) => {
      reconciled.push(key);
      return done;
    },
    keys: () => caches.flatMap((c) => c.keys()),
    logger: pino({ level: 'silent' }),
    metrics: createMetrics({ processMetrics: false }),
    ...extra,
  });
  runners.push(runner);
  return { runner, reconciled };
}

const status = async (url: string | undefined, path: string) => (await fetch(`${url}${path}`)).status;

const forbidden = () =>
  new KubeApiError(
    'Terminal',
    'list pluginactivations.pluginrelease.io: pluginactivations.pluginrelease.io is forbidden: User "x" cannot list resource "pluginactivations"',
    { statusCode: 403, reason: 'Forbidden' },
  );

describe('Runner start-up', () => {
  it('fails at once on a refused list, naming the verb and the resource, and stops what it started', async () => {
    const releases = new Source('pluginreleases.pluginrelease.io');
    const activations = new Source('pluginactivations.pluginrelease.io', () => Promise.reject(forbidden()));
    const { runner, reconciled } = aRunner([releases, activations], { metricsAddr: '127.0.0.1:0' });
    const failure = await runner.start().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CacheSyncTimeout);
    expect((failure as Error).message).toMatch(
      /the API server refused a list\): list pluginactivations\.pluginrelease\.io: .* is forbidden/,
    );
    expect((failure as Error).message).not.toMatch(/list pluginreleases/);
    expect(releases.openWatches).toBe(0);
    await expect(fetch(`${runner.metricsUrl}/healthz`)).rejects.toThrow();
    expect(reconciled).toEqual([]);
  });

  it('gives up after the sync timeout, naming each cache still missing', async () => {
    const nodes = new Source('nodes', pendingList().answer);
    const { runner } = aRunner([new Source('pluginreleases.pluginrelease.io'), nodes], {
      cacheSyncTimeoutMs: 50,
    });
    await expect(runner.start()).rejects.toThrow(/not synced within 0\.05 s\): list nodes: no answer yet$/);
  });

  it('reconciles nothing before the caches synced, then every cached key, then what is enqueued', async () => {
    const list = pendingList();
    const { runner, reconciled } = aRunner([new Source('things', list.answer)]);
    const starting = runner.start();
    runner.enqueue('ns/before-sync');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(runner.ready()).toBe(false);
    list.resolve(things('a', 'b'));
    await starting;
    await vi.waitFor(() => expect(reconciled.sort()).toEqual(['ns/a', 'ns/b']));
    runner.enqueue('ns/c');
    await vi.waitFor(() => expect(reconciled).toContain('ns/c'));
    expect(reconciled).not.toContain('ns/before-sync');
  });
});

describe('Runner health', () => {
  it('answers /healthz while the caches fill, and /readyz only once they synced', async () => {
    const list = pendingList();
    const { runner, reconciled } = aRunner([new Source('things', list.answer)], {
      metricsAddr: '127.0.0.1:0',
    });
    const starting = runner.start();
    await vi.waitFor(() => expect(runner.metricsUrl).toBeDefined());
    expect(await status(runner.metricsUrl, '/healthz')).toBe(200);
    expect(await status(runner.metricsUrl, '/readyz')).toBe(503);
    list.resolve(things('a'));
    await starting;
    expect(await status(runner.metricsUrl, '/readyz')).toBe(200);
    await vi.waitFor(() => expect(reconciled).toEqual(['ns/a']));
    const metrics = await (await fetch(`${runner.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/pluginrelease_workqueue_depth\{name="things"\} 0/);
    expect(metrics).toMatch(
      /pluginrelease_reconcile_duration_seconds_count\{controller="things",result="done"\} 1/,
    );
  });
});

describe('Runner terms of leadership', () => {
  it('reconciles only while leading: a fresh queue with every key each time the lease is won', async () => {
    vi.useFakeTimers();
    const lease = new PartitionableLease();
    // A 3 s lease: a 2 s renew deadline, a 400 ms retry period.
    const { runner, reconciled } = aRunner([new Source('things', async () => things('a'))], {
      leaderElection: { lock: lease, identity: 'me', leaseDurationSeconds: 3 },
    });
    lease.reachable = false;
    await runner.start();
    await vi.advanceTimersByTimeAsync(1_000);
    // Synced, but whether another process leads is not known yet: not ready.
    expect(runner.ready()).toBe(false);
    expect(reconciled).toEqual([]);
    lease.reachable = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(runner.ready()).toBe(true);
    expect(reconciled).toEqual(['ns/a']);

    lease.reachable = false;
    await vi.advanceTimersByTimeAsync(3_000);
    runner.enqueue('ns/a');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reconciled).toEqual(['ns/a']);

    lease.reachable = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reconciled).toEqual(['ns/a', 'ns/a']);
    runner.enqueue('ns/b');
    await vi.advanceTimersByTimeAsync(0);
    expect(reconciled).toEqual(['ns/a', 'ns/a', 'ns/b']);
    const stopping = runner.stop();
    await vi.advanceTimersByTimeAsync(1_000);
    await stopping;
  });
});

describe('Runner stop', () => {
  it('ends a start-up still waiting for the caches, and reconciles nothing', async () => {
    const source = new Source('things', pendingList().answer);
    const { runner, reconciled } = aRunner([source]);
    const starting = runner.start();
    await runner.stop();
    await expect(starting).rejects.toThrow('runner stopped');
    runner.enqueue('ns/a');
    expect(reconciled).toEqual([]);
  });

  it('aborts a reconcile still running after the drain timeout, then stops the caches and the health server', async () => {
    const source = new Source('things', async () => things('slow'));
    let entered = false;
    let aborted = false;
    const { runner } = aRunner([source], {
      metricsAddr: '127.0.0.1:0',
      drainTimeoutMs: 20,
      reconcile: (_key, _logger, signal) =>
        new Promise((resolve) => {
          entered = true;
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve(done);
          });
        }),
    });
    await runner.start();
    await vi.waitFor(() => expect(entered && source.openWatches === 1).toBe(true));
    await runner.stop();
    expect(aborted).toBe(true);
    expect(source.openWatches).toBe(0);
    await expect(fetch(`${runner.metricsUrl}/healthz`)).rejects.toThrow();
  });
});
