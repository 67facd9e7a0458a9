// The controller work queue: deduplicated `namespace/name` keys, one worker per key at a time, per-key
// exponential backoff, an overall token bucket, delayed requeue and a draining shutdown.
import { type Clock, systemClock, systemTimers, type TimerHandle, type Timers } from './clock.ts';
import { TerminalError } from './errors.ts';
import type { ReconcileResult } from './reconcile.ts';

/**
 * Per-key exponential backoff: the n-th consecutive failure of a key waits `base * 2^(n-1)`, capped at
 * `max`. `forget` resets the key (controller-runtime's ItemExponentialFailureRateLimiter).
 */
export class ItemExponentialBackoff {
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #failures = new Map<string, number>();

  constructor(baseDelayMs: number, maxDelayMs: number) {
    this.#baseDelayMs = baseDelayMs;
    this.#maxDelayMs = maxDelayMs;
  }

  /** Records one more failure of `key` and returns how long it must wait. */
  when(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    // 2^failures overflows to Infinity long after the cap applies, so Math.min keeps it finite.
    return Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** failures);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }
}

/**
 * A token bucket shared by every key (golang.org/x/time/rate's Reserve): `burst` tokens, refilled at
 * `qps` per second. A reservation always succeeds and says how long to wait, so bursts of failures are
 * spread out instead of hammering the API server together.
 */
export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(qps: number, burst: number, now: () => number) {
    this.#qps = qps;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes one token and returns the milliseconds until it is really available (0 when in budget). */
  reserve(): number {
    const now = this.#now();
    const elapsedMs = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsedMs / 1000) * this.#qps);
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#qps) * 1000);
  }
}

export interface WorkQueueOptions {
  /** Names the queue in logs and metrics. */
  name?: string;
  /** First retry delay of a failing key (default 5 ms, as controller-runtime). */
  baseDelayMs?: number;
  /** Cap of a key's retry delay (default 5 minutes). */
  maxDelayMs?: number;
  /** Overall refill rate of rate-limited requeues, per second (default 10). */
  qps?: number;
  /** Overall burst of rate-limited requeues (default 100). */
  burst?: number;
  clock?: Clock;
  timers?: Timers;
}

/** Handles one key. Resolve with a result; throw to retry with backoff; throw TerminalError to give up. */
export type ReconcileHandler = (key: string, signal: AbortSignal) => Promise<ReconcileResult>;

export interface RunOptions {
  /**
   * Called for every thrown error, with the delay of the retry that was scheduled, or `undefined` when
   * none was (a TerminalError, or the queue is shutting down). Log here: the queue logs nothing itself.
   */
  onError?: (key: string, error: unknown, retryInMs: number | undefined) => void;
  /** Called after every handled key, for metrics. */
  onProcessed?: (key: string, outcome: ProcessOutcome, durationMs: number) => void;
}

export type ProcessOutcome = 'done' | 'requeue' | 'error' | 'terminal';

export interface ShutdownOptions {
  /**
   * How long in-flight handlers may run before their AbortSignal fires (default: never abort, wait for
   * them). Shutdown still waits for them to return after aborting.
   */
  drainTimeoutMs?: number;
}

interface Delayed {
  readyAt: number;
  handle: TimerHandle;
}

/**
 * A level-triggered work queue (client-go's workqueue): it carries keys, never events.
 *
 * Guarantees:
 * - a key waiting in the queue is held once however often it is added;
 * - a key is never handed to two workers at once: a key added while it is being processed is
 *   processed again after the current run finishes;
 * - `addRateLimited` waits `max(per-key exponential backoff, overall token bucket)`;
 * - `addAfter` keeps the earliest requested time for a key;
 * - after `shutdown()` nothing new starts, pending and delayed keys are dropped, in-flight handlers
 *   are awaited.
 */
export class WorkQueue {
  readonly name: string;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #backoff: ItemExponentialBackoff;
  readonly #bucket: TokenBucket;
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #delayed = new Map<string, Delayed>();
  readonly #waiters: Array<(key: string | undefined) => void> = [];
  readonly #inflight = new Map<string, AbortController>();
  readonly #workers = new Set<Promise<void>>();
  #shuttingDown = false;
  #drained: Promise<void> | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.name = options.name ?? 'default';
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    this.#backoff = new ItemExponentialBackoff(options.baseDelayMs ?? 5, options.maxDelayMs ?? 300_000);
    this.#bucket = new TokenBucket(options.qps ?? 10, options.burst ?? 100, () => this.#nowMs());
  }

  /** Keys ready to be processed now (not counting in-flight or delayed ones). */
  get depth(): number {
    return this.#queue.length;
  }

  /** Keys waiting for their `addAfter` / backoff delay. */
  get delayedCount(): number {
    return this.#delayed.size;
  }

  /** Keys being processed right now. */
  get processingCount(): number {
    return this.#processing.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Queues `key` now. A no-op when it is already queued or the queue is shutting down. */
  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    // A key being processed is requeued by done(), which keeps one worker per key.
    if (this.#processing.has(key)) return;
    this.#queue.push(key);
    this.#handOut();
  }

  /** Queues `key` after `ms`; an earlier pending request for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const readyAt = this.#nowMs() + ms;
    const existing = this.#delayed.get(key);
    if (existing && existing.readyAt <= readyAt) return;
    if (existing) this.#timers.clearTimeout(existing.handle);
    const handle = this.#timers.setTimeout(() => {
      const current = this.#delayed.get(key);
      if (current?.handle !== handle) return;
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    this.#delayed.set(key, { readyAt, handle });
  }

  /** Queues `key` after its backoff and the overall bucket allow; returns the delay chosen. */
  addRateLimited(key: string): number {
    const delay = Math.max(this.#backoff.when(key), this.#bucket.reserve());
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets `key`'s failure backoff (it succeeded, or will never be retried). */
  forget(key: string): void {
    this.#backoff.forget(key);
  }

  /** Consecutive failures recorded for `key` since it was last forgotten. */
  numRequeues(key: string): number {
    return this.#backoff.failures(key);
  }

  /**
   * Waits for the next key and marks it processing; `undefined` once the queue is shutting down.
   * Every key returned must be passed to `done` (run() does this).
   */
  get(): Promise<string | undefined> {
    const key = this.#take();
    if (key !== undefined || this.#shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Ends processing of `key`; if it was added meanwhile, it goes back into the queue. */
  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) {
      this.#queue.push(key);
      this.#handOut();
    }
  }

  /**
   * Starts `concurrency` workers that call `handler` for each key, and resolves when they have all
   * stopped after `shutdown()`. Outcomes: a result with `requeueAfterMs` → forget + addAfter; any
   * other result → forget; a TerminalError → forget, no retry; any other error → addRateLimited.
   */
  run(concurrency: number, handler: ReconcileHandler, options: RunOptions = {}): Promise<void> {
    const started: Promise<void>[] = [];
    for (let i = 0; i < concurrency; i++) {
      const worker = this.#work(handler, options);
      this.#workers.add(worker);
      void worker.finally(() => this.#workers.delete(worker));
      started.push(worker);
    }
    return Promise.all(started).then(() => undefined);
  }

  /**
   * Stops the queue: no new key starts, queued and delayed keys are dropped, and the returned promise
   * resolves when every in-flight handler has returned. With `drainTimeoutMs`, handlers still running
   * after it get their AbortSignal fired. Idempotent.
   */
  shutdown(options: ShutdownOptions = {}): Promise<void> {
    if (this.#drained) return this.#drained;
    this.#shuttingDown = true;
    for (const { handle } of this.#delayed.values()) this.#timers.clearTimeout(handle);
    this.#delayed.clear();
    this.#queue.length = 0;
    this.#dirty.clear();
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    let abortTimer: TimerHandle | undefined;
    if (options.drainTimeoutMs !== undefined) {
      abortTimer = this.#timers.setTimeout(() => {
        for (const controller of this.#inflight.values()) controller.abort(new Error('work queue shut down'));
      }, options.drainTimeoutMs);
    }
    this.#drained = Promise.all([...this.#workers]).then(() => {
      if (abortTimer !== undefined) this.#timers.clearTimeout(abortTimer);
    });
    return this.#drained;
  }

  async #work(handler: ReconcileHandler, options: RunOptions): Promise<void> {
    for (;;) {
      const key = await this.get();
      if (key === undefined) return;
      try {
        await this.#process(key, handler, options);
      } finally {
        this.done(key);
      }
    }
  }

  async #process(key: string, handler: ReconcileHandler, options: RunOptions): Promise<void> {
    const controller = new AbortController();
    this.#inflight.set(key, controller);
    const started = this.#nowMs();
    let outcome: ProcessOutcome;
    try {
      // Promise.resolve().then turns a synchronous throw into a rejection handled below.
      const result = await Promise.resolve().then(() => handler(key, controller.signal));
      this.forget(key);
      const after = result?.requeueAfterMs;
      if (after !== undefined && after > 0) {
        this.addAfter(key, after);
        outcome = 'requeue';
      } else {
        outcome = 'done';
      }
    } catch (error) {
      if (isTerminal(error)) {
        this.forget(key);
        outcome = 'terminal';
        options.onError?.(key, error, undefined);
      } else {
        outcome = 'error';
        const retryInMs = this.#shuttingDown ? undefined : this.addRateLimited(key);
        options.onError?.(key, error, retryInMs);
      }
    } finally {
      this.#inflight.delete(key);
    }
    options.onProcessed?.(key, outcome, this.#nowMs() - started);
  }

  #take(): string | undefined {
    const key = this.#queue.shift();
    if (key === undefined) return undefined;
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }

  #handOut(): void {
    while (this.#waiters.length > 0 && this.#queue.length > 0) {
      const waiter = this.#waiters.shift()!;
      waiter(this.#take());
    }
  }

  #nowMs(): number {
    return this.#clock.now().getTime();
  }
}

/** TerminalError by class, or by its stable code when it came from another copy of the module. */
function isTerminal(error: unknown): boolean {
  return (
    error instanceof TerminalError ||
    (typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'PR_ERR_TERMINAL')
  );
}
