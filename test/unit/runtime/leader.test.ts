// Leader election against an in-memory Lease with optimistic concurrency, on fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  LeaderElector,
  type LeaderElectorOptions,
  type LeaseLock,
  type LeaseRecord,
  type LeaseSnapshot,
} from '../../../src/runtime/leader.ts';

/** One Lease in memory: create fails if it exists, update fails on a stale resourceVersion. */
class MemoryLease {
  snapshot: LeaseSnapshot | undefined;
  #rv = 0;
  writes: string[] = [];

  lock(name: string): LeaseLock & { partitioned: boolean } {
    const lease = this;
    return {
      description: 'default/test',
      partitioned: false,
      async get() {
        if (this.partitioned) throw new Error('connection refused');
        return lease.snapshot && structuredClone(lease.snapshot);
      },
      async create(record: LeaseRecord) {
        if (this.partitioned) throw new Error('connection refused');
        if (lease.snapshot) throw new Error('AlreadyExists');
        return lease.#write(record, name);
      },
      async update(record: LeaseRecord, resourceVersion: string) {
        if (this.partitioned) throw new Error('connection refused');
        if (lease.snapshot?.resourceVersion !== resourceVersion) throw new Error('Conflict');
        return lease.#write(record, name);
      },
    };
  }

  #write(record: LeaseRecord, writer: string): LeaseSnapshot {
    this.#rv++;
    this.writes.push(`${writer}:${record.holderIdentity || '<released>'}`);
    this.snapshot = { record: structuredClone(record), resourceVersion: String(this.#rv) };
    return structuredClone(this.snapshot);
  }
}

const timing = { leaseDurationSeconds: 4, renewDeadlineMs: 3000, retryPeriodMs: 500 };

function candidate(
  lease: MemoryLease,
  identity: string,
  extra: Partial<LeaderElectorOptions> = {},
): {
  elector: LeaderElector;
  lock: ReturnType<MemoryLease['lock']>;
  stop: AbortController;
  events: string[];
  run: Promise<void>;
} {
  const events: string[] = [];
  const lock = lease.lock(identity);
  const elector = new LeaderElector({
    lock,
    identity,
    ...timing,
    onStartedLeading: (signal) =>
      new Promise<void>((resolve) => {
        events.push(`started@${Date.now() - T0}`);
        signal.addEventListener('abort', () => resolve());
      }),
    onStoppedLeading: () => events.push(`stopped@${Date.now() - T0}`),
    ...extra,
  });
  const stop = new AbortController();
  const run = elector.run(stop.signal);
  return { elector, lock, stop, events, run };
}

let T0 = 0;
beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
  T0 = Date.now();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LeaderElector', () => {
  it('creates a missing lease and leads at once', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    await vi.advanceTimersByTimeAsync(0);
    expect(a.events).toEqual(['started@0']);
    expect(a.elector.isLeader).toBe(true);
    expect(lease.snapshot?.record).toMatchObject({
      holderIdentity: 'a',
      leaseDurationSeconds: 4,
      leaseTransitions: 0,
    });
    a.stop.abort();
    await a.run;
  });

  it('renews the lease every retry period while leading', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    await vi.advanceTimersByTimeAsync(2_100);
    expect(lease.writes).toEqual(['a:a', 'a:a', 'a:a', 'a:a', 'a:a']);
    expect(lease.snapshot?.record.renewTime?.getTime()).toBe(T0 + 2_000);
    expect(lease.snapshot?.record.acquireTime?.getTime()).toBe(T0);
    a.stop.abort();
    await a.run;
  });

  it('lets only one of two racing candidates lead', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    const b = candidate(lease, 'b');
    await vi.advanceTimersByTimeAsync(10_000);
    expect([a.elector.isLeader, b.elector.isLeader].filter(Boolean)).toHaveLength(1);
    expect(a.elector.leader).toBe(b.elector.leader);
    a.stop.abort();
    b.stop.abort();
    await Promise.all([a.run, b.run]);
  });

  it('keeps a standby waiting while the leader renews', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    await vi.advanceTimersByTimeAsync(0);
    const b = candidate(lease, 'b');
    await vi.advanceTimersByTimeAsync(30_000);
    expect(b.events).toEqual([]);
    expect(b.elector.leader).toBe('a');
    expect(b.elector.leadershipKnown).toBe(true);
    a.stop.abort();
    b.stop.abort();
    await Promise.all([a.run, b.run]);
  });

  it('lets a standby take over within the lease duration after the leader dies', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    await vi.advanceTimersByTimeAsync(0);
    const b = candidate(lease, 'b');
    await vi.advanceTimersByTimeAsync(5_000);
    // The leader's process dies: it neither renews nor releases.
    a.lock.partitioned = true;
    const diedAt = Date.now() - T0;
    await vi.advanceTimersByTimeAsync(timing.leaseDurationSeconds * 1000 + 2 * 550);
    expect(b.events).toHaveLength(1);
    const tookOverAt = Number(b.events[0]!.split('@')[1]);
    expect(tookOverAt - diedAt).toBeLessThanOrEqual(timing.leaseDurationSeconds * 1000 + 2 * 550);
    expect(tookOverAt - diedAt).toBeGreaterThanOrEqual(
      timing.leaseDurationSeconds * 1000 - timing.retryPeriodMs,
    );
    expect(lease.snapshot?.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    a.stop.abort();
    b.stop.abort();
    await Promise.all([a.run, b.run]);
  });

  it('steps down when it cannot renew within the renew deadline', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    await vi.advanceTimersByTimeAsync(1_000);
    a.lock.partitioned = true;
    await vi.advanceTimersByTimeAsync(timing.renewDeadlineMs + timing.retryPeriodMs);
    expect(a.elector.isLeader).toBe(false);
    expect(a.events).toEqual(['started@0', expect.stringMatching(/^stopped@/)]);
    const stoppedAt = Number(a.events[1]!.split('@')[1]);
    // The last renewal was at 1000 ms; the deadline is 3000 ms after it.
    expect(stoppedAt).toBe(1_000 + timing.renewDeadlineMs);
    // It campaigns again and leads once the partition heals.
    a.lock.partitioned = false;
    await vi.advanceTimersByTimeAsync(timing.leaseDurationSeconds * 1000 + 1_000);
    expect(a.elector.isLeader).toBe(true);
    a.stop.abort();
    await a.run;
  });

  it('releases the lease on graceful stop so a standby takes over within one retry period', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a');
    await vi.advanceTimersByTimeAsync(0);
    const b = candidate(lease, 'b');
    await vi.advanceTimersByTimeAsync(3_000);
    a.stop.abort();
    await a.run;
    const releasedAt = Date.now() - T0;
    expect(lease.snapshot?.record.holderIdentity).toBe('');
    expect(a.events.at(-1)).toBe(`stopped@${releasedAt}`);
    await vi.advanceTimersByTimeAsync(600);
    expect(b.events).toHaveLength(1);
    expect(Number(b.events[0]!.split('@')[1]) - releasedAt).toBeLessThanOrEqual(550);
    b.stop.abort();
    await b.run;
  });

  it('waits for the leading work to finish before releasing the lease', async () => {
    const lease = new MemoryLease();
    let finishWork: () => void = () => {};
    const a = candidate(lease, 'a', {
      onStartedLeading: () =>
        new Promise<void>((resolve) => {
          finishWork = resolve;
        }),
    });
    await vi.advanceTimersByTimeAsync(0);
    a.stop.abort();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lease.snapshot?.record.holderIdentity).toBe('a');
    finishWork();
    await a.run;
    expect(lease.snapshot?.record.holderIdentity).toBe('');
  });

  it('ends leadership, releases the lease and rejects when the leading work fails', async () => {
    const lease = new MemoryLease();
    const a = candidate(lease, 'a', {
      onStartedLeading: async () => {
        throw new Error('caches never synced');
      },
    });
    await expect(a.run).rejects.toThrow('caches never synced');
    expect(lease.snapshot?.record.holderIdentity).toBe('');
    expect(a.events).toEqual([expect.stringMatching(/^stopped@/)]);
  });

  it('takes a lease it already holds at once after a restart', async () => {
    const lease = new MemoryLease();
    const first = candidate(lease, 'a', { releaseOnCancel: false });
    await vi.advanceTimersByTimeAsync(0);
    first.stop.abort();
    await first.run;
    expect(lease.snapshot?.record.holderIdentity).toBe('a');
    const again = candidate(lease, 'a');
    await vi.advanceTimersByTimeAsync(0);
    expect(again.elector.isLeader).toBe(true);
    expect(lease.snapshot?.record.leaseTransitions).toBe(0);
    again.stop.abort();
    await again.run;
  });

  it('rejects timings where the renew deadline is not shorter than the lease', () => {
    const lease = new MemoryLease();
    expect(
      () =>
        new LeaderElector({
          lock: lease.lock('a'),
          identity: 'a',
          leaseDurationSeconds: 2,
          renewDeadlineMs: 2_000,
          onStartedLeading: () => {},
        }),
    ).toThrow(/renewDeadlineMs/);
  });
});
