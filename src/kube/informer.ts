// Informer: list + watch into a local cache, with handlers, `synced`, relist on 410 Gone, and a loop that
// restarts itself with backoff after any error or stream end (client-node's ListWatch gives up instead).
import type { Logger } from 'pino';
import { type Clock, sleep, systemClock, systemTimers, type Timers } from '../runtime/clock.ts';
import { PluginReleaseError } from '../runtime/errors.ts';
import { isGone, KubeApiError, type KubeStatus } from './errors.ts';
import { Indexes, type IndexFunc } from './indexes.ts';
import type { ListOptions, WatchEventType, WatchHandle, WatchSource } from './resource.ts';
import { type KubeObject, objectKey } from './types.ts';

/** Notified after the cache changed. Level-based controllers only enqueue keys here. */
export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  /** `obj` is the last state the cache knew (after a relist, possibly older than the deletion). */
  delete?(obj: T): void;
}

export interface InformerOptions<T = KubeObject> {
  /** Watch one namespace; all namespaces (or a cluster-scoped kind) when omitted. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** First restart delay after a failed or ended watch (default 100 ms); doubles per failure. */
  initialBackoffMs?: number;
  /** Cap of the restart delay (default 30 s). */
  maxBackoffMs?: number;
  /**
   * What the cache keeps of each listed or watched object (client-go's SetTransform), e.g. lean.ts's
   * leanActivation: handlers and readers see only its result. managedFields are dropped before it.
   */
  transform?: (obj: T) => T;
  /** List page size (default 500); 0 lists in one request. */
  pageSize?: number;
  /** The server-side watch timeout is drawn from this range, as client-go does (default 300–600 s). */
  watchTimeoutSeconds?: [number, number];
  logger?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** Reads how long a watch stayed open. */
  clock?: Clock;
  timers?: Timers;
}

/** Counters for tests and metrics: how often the informer had to list and re-watch. */
export interface InformerStats {
  lists: number;
  watches: number;
  /** Lists forced by 410 Gone / Expired. */
  relistsAfterGone: number;
  /** Failures of list or watch requests (connection, 5xx, 429, …). */
  failures: number;
}

/** Someone waiting for the first list. */
interface SyncWaiter {
  synced(): void;
  listFailed(error: unknown): void;
}

/** A watch ended this way. */
type WatchEnd = 'gone' | 'ended' | 'failed' | 'stopped';

/** A watch that stayed open this long, or delivered an event, resets the backoff. */
const HEALTHY_WATCH_MS = 1_000;

/**
 * A shared, self-healing cache of one resource kind.
 *
 * - `start()` lists (page by page), fills the cache, sets `synced`, then watches from the list's
 *   resourceVersion with bookmarks.
 * - Any watch end or error restarts the watch from the last seen resourceVersion after a backoff;
 *   410 Gone (on the watch request or as an ERROR event) relists at once, emitting the difference
 *   as add/update/delete. A failed list is retried with backoff too. The loop only ends on stop().
 * - Handlers run synchronously after the cache changed; a throwing handler is logged and ignored.
 */
export class Informer<T extends KubeObject> {
  readonly #source: WatchSource<T>;
  readonly #options: InformerOptions<T>;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #cache = new Map<string, T>();
  readonly #indexes = new Indexes<T>();
  readonly #handlers = new Set<InformerHandlers<T>>();
  readonly #syncWaiters = new Set<SyncWaiter>();
  readonly #stopController = new AbortController();
  readonly stats: InformerStats = { lists: 0, watches: 0, relistsAfterGone: 0, failures: 0 };
  #synced = false;
  /** Why the last list failed, while the cache has not synced yet: what a sync timeout reports. */
  #listError: unknown;
  #resourceVersion = '';
  #watch: WatchHandle | undefined;
  #loop: Promise<void> | undefined;

  constructor(source: WatchSource<T>, options: InformerOptions<T> = {}) {
    this.#source = source;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
  }

  /** True once the first list has filled the cache; stays true across restarts (as client-go). */
  get synced(): boolean {
    return this.#synced;
  }

  /** The resourceVersion the next watch resumes from. */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** The resource this informer caches, as `plural.group` (`nodes` for the core group). */
  get resource(): string {
    return this.#source.resource;
  }

  /**
   * Resolves once synced; rejects with the signal's reason if `signal` aborts first, or with the list
   * error itself when `giveUpOn` says that error is final.
   */
  waitForSync(signal?: AbortSignal, giveUpOn?: (listError: unknown) => boolean): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: SyncWaiter = {
        synced: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        listFailed: (error) => {
          if (!giveUpOn?.(error)) return;
          this.#syncWaiters.delete(waiter);
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        this.#syncWaiters.delete(waiter);
        reject(signal?.reason);
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      this.#syncWaiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Why the cache has not synced yet: the last failed list, if any. */
  get listError(): unknown {
    return this.#synced ? undefined : this.#listError;
  }

  /** Registers handlers; returns a function that unregisters them. Objects already cached are not replayed. */
  on(handlers: InformerHandlers<T>): () => void {
    this.#handlers.add(handlers);
    return () => this.#handlers.delete(handlers);
  }

  /** The cached object by `namespace/name` (or `name` for cluster-scoped kinds). Do not mutate it. */
  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  /** Every cached object, optionally filtered. Do not mutate them. */
  list(filter?: (obj: T) => boolean): T[] {
    const all = [...this.#cache.values()];
    return filter ? all.filter(filter) : all;
  }

  /** Every cached key. */
  keys(): string[] {
    return [...this.#cache.keys()];
  }

  /**
   * Files every cached object, now and from now on, under the values `fn` returns, for `byIndex`
   * (client-go's AddIndexers). Throws when `name` is taken.
   */
  addIndex(name: string, fn: IndexFunc<T>): void {
    this.#indexes.add(name, fn, this.#cache);
  }

  /** The cached objects filed under `value` in index `name`. Do not mutate them. */
  byIndex(name: string, value: string): T[] {
    return this.#indexes.keys(name, value).flatMap((key) => this.#cache.get(key) ?? []);
  }

  /** Every value of index `name` that some cached object is filed under. */
  indexValues(name: string): string[] {
    return this.#indexes.values(name);
  }

  /** Starts the list/watch loop in the background. Idempotent. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops watching and resolves when the loop has ended. The cache keeps its last contents. */
  async stop(): Promise<void> {
    this.#stopController.abort(new Error('informer stopped'));
    this.#watch?.stop();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const stopSignal = this.#stopController.signal;
    let needList = true;
    let failures = 0;
    // Gone twice in a row without progress means something is off: back off instead of spinning.
    let goneInARow = 0;
    while (!stopSignal.aborted) {
      try {
        if (needList) {
          await this.#relist(stopSignal);
          needList = false;
        }
        const started = this.#clock.now().getTime();
        const { end, sawEvents, error } = await this.#watchOnce();
        if (end === 'stopped') break;
        if (end === 'gone') {
          this.stats.relistsAfterGone++;
          this.#options.logger?.info(
            { resource: this.#source.resource },
            'watch expired (410 Gone); relisting',
          );
          needList = true;
          goneInARow = sawEvents ? 1 : goneInARow + 1;
          if (goneInARow === 1) continue;
          failures++;
        } else {
          goneInARow = 0;
          // A watch that delivered events or stayed open a while was healthy however it ended (client-node
          // also cuts idle streams after 30 s): resume promptly. A watch that died at once backs off.
          const healthy = sawEvents || this.#clock.now().getTime() - started >= HEALTHY_WATCH_MS;
          failures = healthy ? 0 : failures + 1;
          if (end === 'failed') {
            this.stats.failures++;
            this.#options.logger?.[healthy ? 'debug' : 'warn'](
              { err: error, resource: this.#source.resource, failures },
              'watch failed; resuming',
            );
          } else {
            this.#options.logger?.debug({ resource: this.#source.resource }, 'watch ended; resuming');
          }
        }
      } catch (error) {
        if (stopSignal.aborted) break;
        // A failed list (a 410 here can only be an expired continue token, already retried unpaginated).
        this.#listError = error;
        for (const waiter of [...this.#syncWaiters]) waiter.listFailed(error);
        this.stats.failures++;
        failures++;
        this.#options.logger?.warn(
          { err: error, resource: this.#source.resource, failures },
          'list/watch failed; retrying with backoff',
        );
      }
      try {
        await sleep(this.#backoff(failures), stopSignal, this.#timers);
      } catch {
        break;
      }
    }
  }

  #backoff(failures: number): number {
    const initial = this.#options.initialBackoffMs ?? 100;
    const max = this.#options.maxBackoffMs ?? 30_000;
    // A healthy end (failures 0) and the first failure both wait `initial`; each further failure doubles it.
    const base = Math.min(max, initial * 2 ** Math.min(Math.max(0, failures - 1), 30));
    // Up to 20% jitter, so many informers do not hit a recovering API server in lockstep.
    return Math.round(base * (1 + Math.random() * 0.2));
  }

  async #relist(signal: AbortSignal): Promise<void> {
    const pageSize = this.#options.pageSize ?? 500;
    let items: T[];
    let resourceVersion: string;
    try {
      ({ items, resourceVersion } = await this.#listAll(pageSize, signal));
    } catch (error) {
      // A continue token can expire between pages (410): fall back to one unpaginated list.
      if (!(isGone(error) && pageSize > 0)) throw error;
      ({ items, resourceVersion } = await this.#listAll(0, signal));
    }
    const next = new Map<string, T>();
    for (const item of items) next.set(objectKey(item), item);
    const previous = new Map(this.#cache);
    this.#cache.clear();
    this.#indexes.clear();
    for (const [key, obj] of next) {
      this.#cache.set(key, obj);
      this.#indexes.file(key, obj);
    }
    this.#resourceVersion = resourceVersion;
    for (const [key, obj] of next) {
      const old = previous.get(key);
      if (!old) this.#emit('add', obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.#emit('update', obj, old);
    }
    for (const [key, old] of previous) if (!next.has(key)) this.#emit('delete', old);
    if (!this.#synced) {
      this.#synced = true;
      this.#listError = undefined;
      for (const waiter of [...this.#syncWaiters]) waiter.synced();
      this.#syncWaiters.clear();
    }
  }

  async #listAll(pageSize: number, signal: AbortSignal): Promise<{ items: T[]; resourceVersion: string }> {
    this.stats.lists++;
    const items: T[] = [];
    let resourceVersion = '';
    let continueToken: string | undefined;
    do {
      const options: ListOptions = {
        signal,
        labelSelector: this.#options.labelSelector,
        fieldSelector: this.#options.fieldSelector,
        ...(pageSize > 0 ? { limit: pageSize } : {}),
        ...(continueToken ? { continue: continueToken } : {}),
      };
      const page = await this.#source.listPage(this.#options.namespace, options);
      // Transformed page by page, so the full objects of a large list die young.
      for (const item of page.items) items.push(this.#transform(item));
      // The first page's resourceVersion is the snapshot every later page belongs to.
      resourceVersion ||= page.resourceVersion;
      continueToken = page.continue;
    } while (continueToken);
    return { items, resourceVersion };
  }

  #watchOnce(): Promise<{ end: WatchEnd; sawEvents: boolean; error?: unknown }> {
    const stopSignal = this.#stopController.signal;
    this.stats.watches++;
    const [min, max] = this.#options.watchTimeoutSeconds ?? [300, 600];
    return new Promise((resolve) => {
      let sawEvents = false;
      let settled = false;
      let gone = false;
      let eventError: unknown;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        this.#watch = undefined;
        stopSignal.removeEventListener('abort', onStop);
        if (stopSignal.aborted) resolve({ end: 'stopped', sawEvents });
        else if (gone || isGone(error)) resolve({ end: 'gone', sawEvents });
        else if (eventError || error) resolve({ end: 'failed', sawEvents, error: eventError ?? error });
        else resolve({ end: 'ended', sawEvents });
      };
      const onStop = () => {
        this.#watch?.stop();
        finish();
      };
      stopSignal.addEventListener('abort', onStop, { once: true });
      const onEvent = (type: WatchEventType, object: T | KubeStatus) => {
        if (settled) return;
        if (type === 'ERROR') {
          const status = object as KubeStatus;
          if (status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone') gone = true;
          else eventError = watchEventError(this.#source, status);
          this.#watch?.stop();
          finish();
          return;
        }
        sawEvents = true;
        this.#apply(type, object as T);
      };
      this.#source
        .watch(
          this.#options.namespace,
          {
            resourceVersion: this.#resourceVersion,
            labelSelector: this.#options.labelSelector,
            fieldSelector: this.#options.fieldSelector,
            allowWatchBookmarks: true,
            timeoutSeconds: Math.floor(min + Math.random() * (max - min)),
          },
          onEvent,
          finish,
        )
        .then(
          (handle) => {
            if (settled) handle.stop();
            else this.#watch = handle;
          },
          (error: unknown) => finish(error ?? new Error('watch failed')),
        );
    });
  }

  #apply(type: WatchEventType, received: T): void {
    if (type === 'BOOKMARK') {
      const rv = received.metadata?.resourceVersion;
      if (rv) this.#resourceVersion = rv;
      return;
    }
    const obj = this.#transform(received);
    const rv = obj.metadata?.resourceVersion;
    const key = objectKey(obj);
    const old = this.#cache.get(key);
    if (old) this.#indexes.unfile(key, old);
    if (type === 'DELETED') {
      this.#cache.delete(key);
      this.#emit('delete', obj);
    } else {
      this.#cache.set(key, obj);
      this.#indexes.file(key, obj);
      if (old) this.#emit('update', obj, old);
      else this.#emit('add', obj);
    }
    if (rv) this.#resourceVersion = rv;
  }

  #transform(received: T): T {
    const obj = withoutManagedFields(received);
    return this.#options.transform ? this.#options.transform(obj) : obj;
  }

  #emit(kind: 'add' | 'update' | 'delete', obj: T, old?: T): void {
    for (const handlers of this.#handlers) {
      try {
        if (kind === 'add') handlers.add?.(obj);
        else if (kind === 'update') handlers.update?.(old!, obj);
        else handlers.delete?.(obj);
      } catch (error) {
        this.#options.logger?.error(
          { err: error, resource: this.#source.resource },
          'informer handler threw',
        );
      }
    }
  }
}

function watchEventError(source: WatchSource<KubeObject>, status: KubeStatus): Error {
  const withError = source as { watchError?: (status: KubeStatus) => Error };
  return (
    withError.watchError?.(status) ??
    Object.assign(new Error(status.message ?? `watch error ${status.code}`), { statusCode: status.code })
  );
}

/**
 * The object without `metadata.managedFields`: server-side apply bookkeeping that no reconcile reads and
 * that doubles an object's size in memory (controller-runtime's TransformStripManagedFields).
 */
function withoutManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata && 'managedFields' in obj.metadata)
    delete (obj.metadata as { managedFields?: unknown }).managedFields;
  return obj;
}

/** How long a process waits for its caches before it gives up starting (controller-runtime: 2 min). */
export const CACHE_SYNC_TIMEOUT_MS = 60_000;

/** The caches did not fill in time: names each resource still missing and why its list failed. */
export class CacheSyncTimeout extends PluginReleaseError {
  constructor(message: string, options?: ErrorOptions) {
    super('PR_ERR_CACHE_SYNC_TIMEOUT', message, options);
  }
}

/**
 * Waits until every informer has synced, as controller-runtime's CacheSyncTimeout does: after
 * `timeoutMs`, or at once when a list is refused (401/403: a missing RBAC grant does not heal by
 * retrying), rejects with a CacheSyncTimeout naming the verb, the resource and the server's answer.
 */
export async function waitForCacheSync(
  informers: Pick<Informer<KubeObject>, 'synced' | 'resource' | 'listError' | 'waitForSync'>[],
  timeoutMs: number,
  options: { signal?: AbortSignal; timers?: Timers } = {},
): Promise<void> {
  const giveUp = new AbortController();
  const timer = (options.timers ?? systemTimers).setTimeout(() => giveUp.abort(), timeoutMs);
  const stop = options.signal ? AbortSignal.any([options.signal, giveUp.signal]) : giveUp.signal;
  try {
    await Promise.all(informers.map((i) => i.waitForSync(stop, isRefused)));
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    const waiting = informers.filter((i) => !i.synced);
    const refused = waiting.some((i) => isRefused(i.listError));
    // A KubeApiError's message already says "list <resource>: <the server's answer>".
    const why = waiting.map((i) => {
      const cause = i.listError;
      if (cause instanceof KubeApiError) return cause.message;
      return `list ${i.resource}: ${cause instanceof Error ? cause.message : 'no answer yet'}`;
    });
    const when = refused ? 'the API server refused a list' : `not synced within ${timeoutMs / 1000} s`;
    throw new CacheSyncTimeout(`caches did not sync (${when}): ${why.join('; ')}`, { cause: error });
  } finally {
    (options.timers ?? systemTimers).clearTimeout(timer);
    giveUp.abort();
  }
}

function isRefused(error: unknown): boolean {
  return error instanceof KubeApiError && (error.statusCode === 401 || error.statusCode === 403);
}
