// Kubernetes Events (core/v1, what `kubectl describe` shows), with client-go style aggregation of
// repeated identical events into one object with a growing count.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../runtime/clock.ts';
import { isNamespaceTerminating, isNotFound, toKubeError } from './errors.ts';
import type { KubeRest } from './rest.ts';
import { withRetry } from './retry.ts';
import type { KubeObject } from './types.ts';

export type EventType = 'Normal' | 'Warning';

/** The interface domain code depends on (and fakes): fire-and-forget, never throws. */
export interface EventRecorder {
  /**
   * Records `reason`/`message` about `involvedObject` (it needs apiVersion, kind, metadata.name and
   * ideally uid). Returns at once; the write happens in the background, failures are logged.
   * `reason` is CamelCase; `message` a sentence for a person.
   */
  recordEvent(involvedObject: KubeObject, type: EventType, reason: string, message: string): void;
}

export interface EventRecorderOptions {
  /** source.component / reportingComponent, e.g. "plugin-release-controller". */
  component: string;
  /** source.host / reportingInstance, e.g. the pod or node name. */
  instance?: string;
  /** Identical events remembered for aggregation (default 4096, least recently used evicted). */
  cacheSize?: number;
  clock?: Clock;
  logger?: Pick<Logger, 'warn' | 'debug'>;
}

interface Aggregate {
  namespace: string;
  name: string;
  count: number;
}

/** A core/v1 Event as written (timestamps are RFC 3339 strings). */
interface CoreEvent {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  involvedObject: {
    apiVersion: string | undefined;
    kind: string | undefined;
    name: string | undefined;
    namespace: string | undefined;
    uid: string | undefined;
    resourceVersion: string | undefined;
  };
  type: EventType;
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component: string; host: string | undefined };
  reportingComponent: string;
  reportingInstance: string;
}

function eventsPath(namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`;
}

/** Events longer than this are cut, as the events.k8s.io API limits notes to 1 KiB. */
const MAX_MESSAGE = 1024;

/**
 * Writes core/v1 Events. The first occurrence creates an Event; an identical one (same object,
 * type, reason, message) patches that Event's `count` and `lastTimestamp` instead of creating
 * another, like client-go's EventCorrelator. If the Event expired (NotFound) a new one is created.
 * Writes for one aggregate are serialised so counts never go backwards.
 *
 * Chosen: core/v1 rather than events.k8s.io/v1 because `kubectl describe` and `kubectl get events`
 * read core/v1 and every API server serves it (on a real server both are views of one store).
 */
export class KubeEventRecorder implements EventRecorder {
  readonly #rest: KubeRest;
  readonly #options: EventRecorderOptions;
  readonly #clock: Clock;
  readonly #cache = new Map<string, Aggregate>();
  readonly #chains = new Map<string, Promise<void>>();
  readonly #pending = new Set<Promise<void>>();

  constructor(rest: KubeRest, options: EventRecorderOptions) {
    this.#rest = rest;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  recordEvent(involvedObject: KubeObject, type: EventType, reason: string, message: string): void {
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    const meta = involvedObject.metadata;
    const key = [meta.namespace, involvedObject.kind, meta.name, meta.uid, type, reason, text].join('\u0000');
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const write = previous.then(() => this.#write(key, involvedObject, type, reason, text));
    this.#chains.set(key, write);
    this.#pending.add(write);
    void write.finally(() => {
      this.#pending.delete(write);
      if (this.#chains.get(key) === write) this.#chains.delete(key);
    });
  }

  /** Resolves when every event recorded so far has been written (or given up on). For tests and shutdown. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  async #write(
    key: string,
    obj: KubeObject,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<void> {
    const now = this.#clock.now().toISOString();
    try {
      const existing = this.#cache.get(key);
      if (existing) {
        try {
          const count = existing.count + 1;
          await withRetry(
            () =>
              this.#rest.request({
                method: 'PATCH',
                path: `${eventsPath(existing.namespace)}/${encodeURIComponent(existing.name)}`,
                body: { count, lastTimestamp: now },
                contentType: 'application/merge-patch+json',
              }),
            { retries: 3 },
          );
          existing.count = count;
          this.#touch(key, existing);
          return;
        } catch (error) {
          if (!isNotFound(error)) throw error;
          // The Event expired (TTL) or was deleted: start a new one.
          this.#cache.delete(key);
        }
      }
      const event = this.#newEvent(obj, type, reason, message, now);
      const { namespace, name } = event.metadata;
      await withRetry(
        () => this.#rest.request({ method: 'POST', path: eventsPath(namespace), body: event }),
        { retries: 3 },
      );
      this.#touch(key, { namespace, name, count: 1 });
    } catch (error) {
      // As client-go's recorder: an Event for an object whose namespace is going away is dropped quietly.
      const level = isNamespaceTerminating(error) ? 'debug' : 'warn';
      this.#options.logger?.[level](
        { err: toKubeError(error, 'record event'), reason, object: `${obj.kind} ${obj.metadata.name}` },
        'could not record event',
      );
    }
  }

  #newEvent(obj: KubeObject, type: EventType, reason: string, message: string, now: string): CoreEvent {
    const meta = obj.metadata;
    // Events of cluster-scoped objects (Nodes) live in "default", as kubelet's do.
    const namespace = meta.namespace || 'default';
    // client-go names events <object>.<unix nanos in hex>; random bits keep two in one ms apart.
    const suffix = `${(BigInt(this.#clock.now().getTime()) * 1_000_000n).toString(16)}${randomBytes(3).toString('hex')}`;
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${meta.name}.${suffix}`, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
      },
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.#options.component, host: this.#options.instance },
      reportingComponent: this.#options.component,
      reportingInstance: this.#options.instance ?? '',
    };
  }

  #touch(key: string, aggregate: Aggregate): void {
    // Map keeps insertion order: re-inserting makes this key the most recently used.
    this.#cache.delete(key);
    this.#cache.set(key, aggregate);
    const limit = this.#options.cacheSize ?? 4096;
    while (this.#cache.size > limit) this.#cache.delete(this.#cache.keys().next().value!);
  }
}
