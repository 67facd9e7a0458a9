// Work queue: dedup, one worker per key, backoff and bucket delays, delayed requeue, outcomes, shutdown.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TerminalError } from '../../../src/runtime/errors.ts';
import { ItemExponentialBackoff, TokenBucket, WorkQueue } from '../../../src/runtime/queue.ts';
import { done, type ReconcileResult, requeueAfter } from '../../../src/runtime/reconcile.ts';

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

/** A handler whose calls the test resolves or rejects one by one. */
function controllableHandler() {
  const calls: {
    key: string;
    signal: AbortSignal;
    resolve(r: ReconcileResult): void;
    reject(e: unknown): void;
  }[] = [];
  const handler = (key: string, signal: AbortSignal) =>
    new Promise<ReconcileResult>((resolve, reject) => calls.push({ key, signal, resolve, reject }));
  return { calls, handler };
}

describe('ItemExponentialBackoff', () => {
  const cases: { name: string; base: number; max: number; failures: number; want: number[] }[] = [
    { name: 'doubles from the base delay', base: 5, max: 1000, failures: 5, want: [5, 10, 20, 40, 80] },
    { name: 'stops at the cap', base: 100, max: 500, failures: 5, want: [100, 200, 400, 500, 500] },
    { name: 'stays finite after very many failures', base: 5, max: 300_000, failures: 1100, want: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const backoff = new ItemExponentialBackoff(c.base, c.max);
      const got = Array.from({ length: c.failures }, () => backoff.when('ns/a'));
      if (c.want.length > 0) expect(got).toEqual(c.want);
      expect(got.every(Number.isFinite)).toBe(true);
      expect(Math.max(...got)).toBeLessThanOrEqual(c.max);
    });
  }

  it('keeps each key on its own schedule and starts over after forget', () => {
    const backoff = new ItemExponentialBackoff(5, 1000);
    expect([backoff.when('a'), backoff.when('a'), backoff.when('b')]).toEqual([5, 10, 5]);
    backoff.forget('a');
    expect(backoff.failures('a')).toBe(0);
    expect(backoff.when('a')).toBe(5);
  });
});

describe('TokenBucket', () => {
  const cases: {
    name: string;
    qps: number;
    burst: number;
    reservations: { atMs: number; want: number }[];
  }[] = [
    {
      name: 'lets a burst through without waiting',
      qps: 10,
      burst: 3,
      reservations: [0, 0, 0].map((atMs) => ({ atMs, want: 0 })),
    },
    {
      name: 'spaces reservations past the burst by 1/qps',
      qps: 10,
      burst: 2,
      reservations: [
        { atMs: 0, want: 0 },
        { atMs: 0, want: 0 },
        { atMs: 0, want: 100 },
        { atMs: 0, want: 200 },
      ],
    },
    {
      name: 'refills with time',
      qps: 10,
      burst: 1,
      reservations: [
        { atMs: 0, want: 0 },
        { atMs: 100, want: 0 },
        { atMs: 150, want: 50 },
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      let now = 0;
      const bucket = new TokenBucket(c.qps, c.burst, () => now);
      for (const r of c.reservations) {
        now = r.atMs;
        expect(bucket.reserve()).toBe(r.want);
      }
    });
  }
});

describe('WorkQueue', () => {
  it('holds a key once however often it is added', () => {
    const queue = new WorkQueue();
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/b');
    queue.add('ns/a');
    expect(queue.depth).toBe(2);
  });

  it('hands keys out in the order they were first added', async () => {
    const queue = new WorkQueue();
    for (const key of ['ns/c', 'ns/a', 'ns/c', 'ns/b']) queue.add(key);
    const got = [await queue.get(), await queue.get(), await queue.get()];
    expect(got).toEqual(['ns/c', 'ns/a', 'ns/b']);
  });

  it('processes a key added during its own processing again afterwards, never concurrently', async () => {
    const queue = new WorkQueue();
    const { calls, handler } = controllableHandler();
    void queue.run(4, handler);
    queue.add('ns/a');
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    queue.add('ns/a');
    queue.add('ns/a');
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    expect(queue.processingCount).toBe(1);
    calls[0]!.resolve(done);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.key)).toEqual(['ns/a', 'ns/a']);
    calls[1]!.resolve(done);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(2);
    await queue.shutdown();
  });

  it('processes different keys in parallel up to the concurrency', async () => {
    const queue = new WorkQueue();
    const { calls, handler } = controllableHandler();
    void queue.run(2, handler);
    for (const key of ['ns/a', 'ns/b', 'ns/c']) queue.add(key);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.key)).toEqual(['ns/a', 'ns/b']);
    expect(queue.depth).toBe(1);
    calls[1]!.resolve(done);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.key)).toEqual(['ns/a', 'ns/b', 'ns/c']);
    calls[0]!.resolve(done);
    calls[2]!.resolve(done);
    await queue.shutdown();
  });

  it('keeps the earliest time when a key is added after two different delays', async () => {
    const queue = new WorkQueue();
    queue.addAfter('ns/a', 1000);
    queue.addAfter('ns/a', 300);
    queue.addAfter('ns/a', 5000);
    expect(queue.delayedCount).toBe(1);
    await vi.advanceTimersByTimeAsync(299);
    expect(queue.depth).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(queue.depth).toBe(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(queue.depth).toBe(1);
  });

  it('waits the larger of the key backoff and the overall bucket', () => {
    const queue = new WorkQueue({ baseDelayMs: 5, maxDelayMs: 10_000, qps: 1, burst: 1 });
    expect(queue.addRateLimited('ns/a')).toBe(5);
    // The bucket is empty now: the next reservation waits a full second, whatever the key's backoff.
    expect(queue.addRateLimited('ns/b')).toBe(1000);
    expect(queue.numRequeues('ns/a')).toBe(1);
  });

  describe('outcomes of a handler', () => {
    const cases: {
      name: string;
      outcome: () => Promise<ReconcileResult>;
      windowMs: number;
      wantCallsAt: number[];
      wantRetryIn: (number | undefined)[];
    }[] = [
      {
        name: 'a done result is not processed again',
        outcome: async () => done,
        windowMs: 10_000,
        wantCallsAt: [0],
        wantRetryIn: [],
      },
      {
        name: 'a requeueAfterMs result is processed again after that long',
        outcome: async () => requeueAfter(250),
        windowMs: 600,
        wantCallsAt: [0, 250, 500],
        wantRetryIn: [],
      },
      {
        name: 'a thrown error is retried with a doubling backoff',
        outcome: async () => {
          throw new Error('API server unavailable');
        },
        windowMs: 100,
        wantCallsAt: [0, 10, 30, 70],
        wantRetryIn: [10, 20, 40, 80],
      },
      {
        name: 'a TerminalError is not retried',
        outcome: async () => {
          throw new TerminalError('InvalidSpec', 'spec.version is empty');
        },
        windowMs: 10_000,
        wantCallsAt: [0],
        wantRetryIn: [undefined],
      },
      {
        name: 'a synchronous throw is retried like a rejection',
        outcome: () => {
          throw new Error('boom');
        },
        windowMs: 15,
        wantCallsAt: [0, 10],
        wantRetryIn: [10, 20],
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const queue = new WorkQueue({ baseDelayMs: 10 });
        const callsAt: number[] = [];
        const retries: (number | undefined)[] = [];
        const t0 = Date.now();
        void queue.run(
          1,
          () => {
            callsAt.push(Date.now() - t0);
            return c.outcome();
          },
          { onError: (_key, _err, retryIn) => retries.push(retryIn) },
        );
        queue.add('ns/a');
        await vi.advanceTimersByTimeAsync(c.windowMs);
        expect(callsAt).toEqual(c.wantCallsAt);
        expect(retries).toEqual(c.wantRetryIn);
        await queue.shutdown();
      });
    }
  });

  it('resets the backoff of a key once it succeeds', async () => {
    const queue = new WorkQueue({ baseDelayMs: 10 });
    let failuresLeft = 3;
    const retries: (number | undefined)[] = [];
    void queue.run(
      1,
      async () => {
        if (failuresLeft-- > 0) throw new Error('transient');
        return done;
      },
      { onError: (_k, _e, retryIn) => retries.push(retryIn) },
    );
    queue.add('ns/a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(retries).toEqual([10, 20, 40]);
    expect(queue.numRequeues('ns/a')).toBe(0);
    failuresLeft = 1;
    queue.add('ns/a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(retries).toEqual([10, 20, 40, 10]);
    await queue.shutdown();
  });

  it('reports each outcome with its duration', async () => {
    const queue = new WorkQueue();
    const seen: [string, string, number][] = [];
    void queue.run(
      1,
      async () => {
        await new Promise((r) => setTimeout(r, 40));
        return done;
      },
      { onProcessed: (key, outcome, ms) => seen.push([key, outcome, ms]) },
    );
    queue.add('ns/a');
    await vi.advanceTimersByTimeAsync(50);
    expect(seen).toEqual([['ns/a', 'done', 40]]);
    await queue.shutdown();
  });

  it('waits for in-flight work on shutdown and drops what was still queued', async () => {
    const queue = new WorkQueue();
    const { calls, handler } = controllableHandler();
    const running = queue.run(1, handler);
    queue.add('ns/a');
    queue.add('ns/b');
    queue.addAfter('ns/c', 100);
    await vi.advanceTimersByTimeAsync(0);
    let drained = false;
    const shutdown = queue.shutdown().then(() => {
      drained = true;
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(drained).toBe(false);
    expect(calls[0]!.signal.aborted).toBe(false);
    calls[0]!.resolve(done);
    await shutdown;
    await running;
    expect(calls.map((c) => c.key)).toEqual(['ns/a']);
    expect(queue.depth).toBe(0);
    expect(queue.delayedCount).toBe(0);
    queue.add('ns/d');
    expect(queue.depth).toBe(0);
  });

  it('aborts in-flight handlers that outlive the drain timeout and does not retry them', async () => {
    const queue = new WorkQueue();
    const retries: (number | undefined)[] = [];
    void queue.run(
      1,
      (_key, signal) =>
        new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      { onError: (_k, _e, retryIn) => retries.push(retryIn) },
    );
    queue.add('ns/a');
    await vi.advanceTimersByTimeAsync(0);
    const shutdown = queue.shutdown({ drainTimeoutMs: 500 });
    await vi.advanceTimersByTimeAsync(500);
    await shutdown;
    expect(retries).toEqual([undefined]);
    expect(queue.delayedCount).toBe(0);
  });

  it('returns undefined from get once shut down', async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    await queue.shutdown();
    expect(await waiting).toBeUndefined();
    expect(await queue.get()).toBeUndefined();
  });
});
