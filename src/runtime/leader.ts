// Leader election over a coordination.k8s.io/v1 Lease (client-go's leaderelection), through a LeaseLock
// interface so this module stays free of the Kubernetes client.
import type { Logger } from 'pino';
import { type Clock, sleep, systemClock, systemTimers, type Timers } from './clock.ts';

/** The fields of a Lease's spec that leader election reads and writes. */
export interface LeaseRecord {
  /** The current leader; '' means released (anyone may take it at once). */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: Date;
  renewTime?: Date;
  leaseTransitions: number;
}

export interface LeaseSnapshot {
  record: LeaseRecord;
  resourceVersion: string;
}

/**
 * Storage of one Lease. Implemented over the API server in src/kube (KubeLeaseLock) and in memory by
 * tests. Any failure (conflict, network, timeout) may be thrown: the elector treats every failure as
 * "not acquired / not renewed this round" and tries again after the retry period.
 */
export interface LeaseLock {
  /** `namespace/name`, for logs. */
  readonly description: string;
  /** The lease, or undefined when it does not exist. */
  get(signal: AbortSignal): Promise<LeaseSnapshot | undefined>;
  /** Creates the lease; throws when it already exists. */
  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot>;
  /** Replaces the lease if it is still at `resourceVersion`; throws on a conflict. */
  update(record: LeaseRecord, resourceVersion: string, signal: AbortSignal): Promise<LeaseSnapshot>;
}

export interface LeaderElectorOptions {
  lock: LeaseLock;
  /** Unique per process (e.g. `${hostname}_${randomUUID()}`): two processes must never share it. */
  identity: string;
  /** How long a lease stays valid after its holder stops renewing it (default 15). */
  leaseDurationSeconds?: number;
  /** A leader that has not renewed for this long steps down (default 10 000; < lease duration). */
  renewDeadlineMs?: number;
  /** Interval between acquire and renew attempts (default 2 000). */
  retryPeriodMs?: number;
  /** Give the lease up on graceful stop so a standby takes over at once (default true). */
  releaseOnCancel?: boolean;
  /**
   * Called when this process becomes leader. `signal` aborts when leadership ends (lost, or the
   * elector stops): stop all work then. The lease is released only after the returned promise settles,
   * so the next leader never overlaps with this one's in-flight work. A rejection ends leadership and
   * makes `run` reject.
   */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called after leadership ends, once onStartedLeading's work has settled. */
  onStoppedLeading?: () => void;
  /** Called whenever the observed leader changes (including to this process); '' = nobody. */
  onNewLeader?: (identity: string) => void;
  clock?: Clock;
  timers?: Timers;
  logger?: Pick<Logger, 'info' | 'warn' | 'debug'>;
}

/**
 * Campaigns for a Lease and runs `onStartedLeading` while holding it.
 *
 * - Acquire: a lease that is missing, released (holder ''), held by this identity, or whose record
 *   has not changed for its `leaseDurationSeconds` (measured on the local clock from when this process
 *   last saw it change, as client-go does, so clock skew between machines does not matter) is taken
 *   with an update at the observed resourceVersion; a conflict means someone else won the round.
 * - Renew: every retry period; no successful renew for `renewDeadlineMs` → leadership is lost.
 * - A standby therefore takes over within about `leaseDurationSeconds + 2 * retryPeriod` of the
 *   leader's death, and within one retry period of a graceful release.
 * After losing leadership the elector campaigns again until `run`'s signal aborts.
 */
export class LeaderElector {
  readonly identity: string;
  readonly #lock: LeaseLock;
  readonly #leaseDurationSeconds: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #releaseOnCancel: boolean;
  readonly #options: LeaderElectorOptions;
  readonly #clock: Clock;
  readonly #timers: Timers;
  #observed: LeaseSnapshot | undefined;
  #observedAtMs = 0;
  #leading = false;
  #reportedLeader: string | undefined;

  constructor(options: LeaderElectorOptions) {
    this.identity = options.identity;
    this.#lock = options.lock;
    this.#leaseDurationSeconds = options.leaseDurationSeconds ?? 15;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.#releaseOnCancel = options.releaseOnCancel ?? true;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    if (!options.identity) throw new Error('leader election needs a non-empty identity');
    if (this.#renewDeadlineMs >= this.#leaseDurationSeconds * 1000) {
      throw new Error('renewDeadlineMs must be shorter than leaseDurationSeconds');
    }
    if (this.#retryPeriodMs >= this.#renewDeadlineMs) {
      throw new Error('retryPeriodMs must be shorter than renewDeadlineMs');
    }
  }

  /** True while this process holds the lease and its work runs. */
  get isLeader(): boolean {
    return this.#leading;
  }

  /** The last observed holder, or undefined before the first observation or when nobody holds it. */
  get leader(): string | undefined {
    return this.#reportedLeader || undefined;
  }

  /** True once the current leader (possibly nobody) has been observed at least once. */
  get leadershipKnown(): boolean {
    return this.#reportedLeader !== undefined;
  }

  /**
   * Campaigns and leads until `signal` aborts; then stops the leading work, releases the lease (when
   * `releaseOnCancel`) and resolves. Rejects only when onStartedLeading's work rejects.
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const acquired = await this.#acquire(signal);
      if (!acquired) return;
      await this.#lead(signal);
    }
  }

  async #acquire(signal: AbortSignal): Promise<boolean> {
    this.#options.logger?.info({ lease: this.#lock.description, identity: this.identity }, 'campaigning');
    while (!signal.aborted) {
      if (await this.#tryAcquireOrRenew(signal)) return true;
      if (!(await this.#pause(this.#jittered(), signal))) return false;
    }
    return false;
  }

  async #lead(outer: AbortSignal): Promise<void> {
    const leading = new AbortController();
    const stop = () => leading.abort(outer.reason);
    outer.addEventListener('abort', stop, { once: true });
    this.#leading = true;
    this.#options.logger?.info({ lease: this.#lock.description, identity: this.identity }, 'became leader');
    let failure: unknown;
    let failed = false;
    const work = Promise.resolve()
      .then(() => this.#options.onStartedLeading(leading.signal))
      .catch((error: unknown) => {
        failed = true;
        failure = error;
        leading.abort(error);
      });
    let lastRenewMs = this.#nowMs();
    while (!leading.signal.aborted) {
      if (!(await this.#pause(this.#retryPeriodMs, leading.signal))) break;
      const deadline = lastRenewMs + this.#renewDeadlineMs;
      if (await this.#tryAcquireOrRenew(leading.signal, deadline - this.#nowMs())) {
        lastRenewMs = this.#nowMs();
      } else if (this.#nowMs() >= deadline) {
        this.#options.logger?.warn(
          { lease: this.#lock.description, identity: this.identity },
          'failed to renew the lease within the renew deadline; stepping down',
        );
        leading.abort(new Error('leadership lost'));
      }
    }
    outer.removeEventListener('abort', stop);
    await work;
    this.#leading = false;
    // Release only on a graceful stop: after a lost renewal someone else may already hold it.
    if ((outer.aborted || failed) && this.#releaseOnCancel) await this.#release();
    this.#options.logger?.info({ lease: this.#lock.description, identity: this.identity }, 'stopped leading');
    this.#options.onStoppedLeading?.();
    if (failed) throw failure;
  }

  /** One round of client-go's tryAcquireOrRenew. Never throws. */
  async #tryAcquireOrRenew(signal: AbortSignal, timeoutMs = this.#renewDeadlineMs): Promise<boolean> {
    if (signal.aborted || timeoutMs <= 0) return false;
    const call = this.#boundedSignal(signal, timeoutMs);
    try {
      const now = this.#clock.now();
      const current = await this.#lock.get(call.signal);
      if (!current) {
        const created = await this.#lock.create(
          {
            holderIdentity: this.identity,
            leaseDurationSeconds: this.#leaseDurationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
          call.signal,
        );
        this.#observe(created);
        return true;
      }
      if (!sameSnapshot(this.#observed, current)) this.#observe(current);
      const held = current.record.holderIdentity;
      const expiresAt = this.#observedAtMs + current.record.leaseDurationSeconds * 1000;
      if (held !== '' && held !== this.identity && expiresAt > this.#nowMs()) return false;
      const mine = held === this.identity;
      const updated = await this.#lock.update(
        {
          holderIdentity: this.identity,
          leaseDurationSeconds: this.#leaseDurationSeconds,
          acquireTime: mine ? (current.record.acquireTime ?? now) : now,
          renewTime: now,
          leaseTransitions: mine ? current.record.leaseTransitions : current.record.leaseTransitions + 1,
        },
        current.resourceVersion,
        call.signal,
      );
      this.#observe(updated);
      return true;
    } catch (error) {
      this.#options.logger?.debug({ err: error, lease: this.#lock.description }, 'lease attempt failed');
      return false;
    } finally {
      call.dispose();
    }
  }

  /**
   * Gives the lease up (holder '', 1 s duration) so a standby need not wait for it to expire. A renew
   * that raced the release may have moved the resourceVersion, so a failed update re-reads the lease
   * and tries again while this process still holds it.
   */
  async #release(): Promise<void> {
    const call = this.#boundedSignal(new AbortController().signal, this.#renewDeadlineMs);
    try {
      let observed = this.#observed;
      for (let attempt = 1; ; attempt++) {
        if (!observed || observed.record.holderIdentity !== this.identity) return;
        const now = this.#clock.now();
        try {
          const released = await this.#lock.update(
            {
              holderIdentity: '',
              leaseDurationSeconds: 1,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: observed.record.leaseTransitions,
            },
            observed.resourceVersion,
            call.signal,
          );
          this.#observe(released);
          this.#options.logger?.info(
            { lease: this.#lock.description, identity: this.identity },
            'released the lease',
          );
          return;
        } catch (error) {
          if (attempt >= 3 || call.signal.aborted) throw error;
          observed = await this.#lock.get(call.signal);
        }
      }
    } catch (error) {
      this.#options.logger?.warn(
        { err: error, lease: this.#lock.description },
        'could not release the lease',
      );
    } finally {
      call.dispose();
    }
  }

  #observe(snapshot: LeaseSnapshot): void {
    this.#observed = snapshot;
    this.#observedAtMs = this.#nowMs();
    const holder = snapshot.record.holderIdentity;
    if (holder !== this.#reportedLeader) {
      this.#reportedLeader = holder;
      this.#options.onNewLeader?.(holder);
    }
  }

  /** Sleeps; false when `signal` aborted first. */
  async #pause(ms: number, signal: AbortSignal): Promise<boolean> {
    try {
      await sleep(ms, signal, this.#timers);
      return true;
    } catch {
      return false;
    }
  }

  /** A signal that aborts with `parent` or after `timeoutMs`, on the injected timers. */
  #boundedSignal(parent: AbortSignal, timeoutMs: number): { signal: AbortSignal; dispose(): void } {
    const controller = new AbortController();
    const onAbort = () => controller.abort(parent.reason);
    parent.addEventListener('abort', onAbort, { once: true });
    const handle = this.#timers.setTimeout(
      () => controller.abort(new Error(`lease call timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    return {
      signal: controller.signal,
      dispose: () => {
        this.#timers.clearTimeout(handle);
        parent.removeEventListener('abort', onAbort);
      },
    };
  }

  /** The retry period plus up to 10% jitter, so standbys do not poll in lockstep. */
  #jittered(): number {
    return Math.round(this.#retryPeriodMs * (1 + Math.random() * 0.1));
  }

  #nowMs(): number {
    return this.#clock.now().getTime();
  }
}

function sameSnapshot(a: LeaseSnapshot | undefined, b: LeaseSnapshot): boolean {
  return a !== undefined && a.resourceVersion === b.resourceVersion;
}
