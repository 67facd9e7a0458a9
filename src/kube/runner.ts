// The controller runner the controller and the agent both run (controller-runtime's internal Controller,
// kube-rs's Controller): caches → sync → a work queue per term of leadership → reconcile, with health.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { type HealthServer, startHealthServer } from '../observability/health.ts';
import { reconcileLogger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Clock, Timers } from '../runtime/clock.ts';
import { TerminalError } from '../runtime/errors.ts';
import { LeaderElector, type LeaseLock } from '../runtime/leader.ts';
import { WorkQueue } from '../runtime/queue.ts';
import type { ReconcileResult } from '../runtime/reconcile.ts';
import { CACHE_SYNC_TIMEOUT_MS, type Informer, waitForCacheSync } from './informer.ts';
import type { KubeObject } from './types.ts';

/** What the runner uses of a cache: an Informer. */
export type RunnerCache = Pick<
  Informer<KubeObject>,
  'start' | 'stop' | 'synced' | 'resource' | 'listError' | 'waitForSync'
>;

export interface RunnerOptions {
  /** Names the work queue, its metrics (the `controller` label) and its logs, e.g. `pluginrelease`. */
  name: string;
  /** Started by `start`, synced before any reconcile, stopped by `stop`. */
  caches: RunnerCache[];
  /** One key, with its own child logger; the WorkQueue's contract (throw → backoff, TerminalError → none). */
  reconcile: (key: string, logger: Logger, signal: AbortSignal) => Promise<ReconcileResult>;
  /** Every key to reconcile when a term starts: nothing was queued while no term ran. */
  keys: () => Iterable<string>;
  logger: Logger;
  /** Gets the queue's depth and the reconcile durations; its registry is served at /metrics. */
  metrics: Metrics;
  /** Reconciles running at once (distinct keys; default 4). */
  workers?: number;
  /** Give up starting when the caches have not synced by then (default 60 s); a refused list fails at once. */
  cacheSyncTimeoutMs?: number;
  /** How long reconciles still running when a term ends may go on before their signal aborts (default 10 s). */
  drainTimeoutMs?: number;
  /** Reconcile only while holding this Lease; always when omitted. */
  leaderElection?: LeaderElection;
  /** host:port for /metrics, /healthz and /readyz; none when omitted. */
  metricsAddr?: string;
  clock?: Clock;
  timers?: Timers;
}

export interface LeaderElection {
  lock: LeaseLock;
  /** Unique per process (default `${hostname}_${uuid}`). */
  identity?: string;
  /** How long the Lease outlives a leader that stopped renewing it (default 15). */
  leaseDurationSeconds?: number;
}

/**
 * Runs one controller. `start` serves health, starts the caches and waits for them (rejecting with a
 * CacheSyncTimeout that names the verb and the resource), then reconciles in terms: the whole life of
 * the process without leader election, each term of leadership with it. Every term gets a fresh queue
 * (a shut-down queue cannot restart) seeded with `keys()`; `enqueue` feeds the current one. A term ends
 * when leadership is lost or on `stop`, draining its in-flight reconciles before the next can begin.
 */
export class Runner {
  readonly #options: RunnerOptions;
  readonly #stopping = new AbortController();
  #queue: WorkQueue | undefined;
  #elector: LeaderElector | undefined;
  #terms: Promise<void> | undefined;
  #health: HealthServer | undefined;
  #stopped: Promise<void> | undefined;

  constructor(options: RunnerOptions) {
    this.#options = options;
    const runner = this;
    options.metrics.trackQueue({
      name: options.name,
      get depth() {
        return runner.#queue?.depth ?? 0;
      },
    });
  }

  /** Queues `key` in the current term; between terms a no-op (the next term starts with every key). */
  enqueue(key: string): void {
    this.#queue?.add(key);
  }

  /** Caches synced and, with leader election, the leader known (this process or another). */
  ready(): boolean {
    return this.#options.caches.every((c) => c.synced) && (this.#elector?.leadershipKnown ?? true);
  }

  /** The health server's `http://host:port`, once `start` has bound it. */
  get metricsUrl(): string | undefined {
    return this.#health?.url;
  }

  /**
   * Resolves once the caches have synced and the first term has been asked for (leader election may
   * still be campaigning). On a failure it stops what it started and rejects: a CacheSyncTimeout, or
   * the health server's AddressError.
   */
  async start(): Promise<void> {
    const { caches, logger, metricsAddr } = this.#options;
    // Served first, so liveness answers while the caches fill (readiness waits for them).
    if (metricsAddr) {
      const ready = () => this.ready();
      this.#health = await startHealthServer({
        addr: metricsAddr,
        registry: this.#options.metrics.registry,
        ready,
        logger,
      });
    }
    for (const cache of caches) cache.start();
    try {
      await waitForCacheSync(caches, this.#options.cacheSyncTimeoutMs ?? CACHE_SYNC_TIMEOUT_MS, {
        signal: this.#stopping.signal,
        timers: this.#options.timers,
      });
    } catch (error) {
      await this.stop();
      throw error;
    }
    logger.info({ caches: caches.map((c) => c.resource) }, 'caches synced');
    this.#terms = this.#runTerms();
    this.#terms.catch((err: unknown) => logger.error({ err }, 'reconciling stopped'));
  }

  /** Ends the current term (draining it), stops the caches and the health server. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping.abort(new Error('runner stopped'));
      await this.#terms?.catch(() => {});
      for (const cache of this.#options.caches) await cache.stop();
      await this.#health?.close();
    })();
    return this.#stopped;
  }

  #runTerms(): Promise<void> {
    const election = this.#options.leaderElection;
    if (!election) return this.#term(this.#stopping.signal);
    const { clock, timers, logger } = this.#options;
    const seconds = election.leaseDurationSeconds;
    this.#elector = new LeaderElector({
      lock: election.lock,
      identity: election.identity ?? `${hostname()}_${randomUUID()}`,
      // client-go's proportions (15 s lease, 10 s renew deadline, 2 s retry) for any lease duration.
      ...(seconds
        ? {
            leaseDurationSeconds: seconds,
            renewDeadlineMs: (seconds * 2000) / 3,
            retryPeriodMs: (seconds * 2000) / 15,
          }
        : {}),
      onStartedLeading: (signal) => this.#term(signal),
      logger,
      clock,
      timers,
    });
    return this.#elector.run(this.#stopping.signal);
  }

  /** One term: a fresh queue seeded with every key, worked until `signal` aborts, then drained. */
  async #term(signal: AbortSignal): Promise<void> {
    const { name, logger, metrics, clock, timers } = this.#options;
    const queue = new WorkQueue({ name, clock, timers });
    this.#queue = queue;
    for (const key of this.#options.keys()) queue.add(key);
    const working = queue.run(
      this.#options.workers ?? 4,
      (key, aborted) => this.#options.reconcile(key, reconcileLogger(logger, key), aborted),
      {
        // A terminal error (an invalid spec, already in the object's status) waits for a person's change:
        // one line naming it, without a stack; anything else is retried with backoff.
        onError: (key, err, retryInMs) =>
          err instanceof TerminalError
            ? logger.warn(
                { key, reason: (err as Error).message },
                'reconcile gave up: not retried until the object changes',
              )
            : logger.warn({ key, err, retryInMs }, 'reconcile failed'),
        onProcessed: (_key, result, ms) =>
          metrics.reconcileDuration.observe({ controller: name, result }, ms / 1000),
      },
    );
    if (!signal.aborted) {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    }
    this.#queue = undefined;
    await queue.shutdown({ drainTimeoutMs: this.#options.drainTimeoutMs ?? 10_000 });
    await working;
  }
}
