// One watch request: newline-delimited JSON events (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR) from a
// resourceVersion, with selector transitions, bookmarks, timeouts and 410 Gone as the real server does.
import type { ServerResponse } from 'node:http';
import type { Api } from './api.ts';
import { apiVersionOf, type KubeObject, type ResourceType } from './resources.ts';
import type { FieldSelector, LabelSelector } from './selectors.ts';
import { errors } from './status.ts';
import { atResourceVersion, type Entry, type EventType, type StoreEvent } from './store.ts';
import { type IncludeObject, toTable } from './table.ts';

/** Initial events are written this many at a time, yielding to the event loop in between. */
const INITIAL_CHUNK = 500;

/** One typed JSON per stored entry, shared by every watcher of that resource (entries are immutable). */
const typedJson = new WeakMap<Entry, string>();

export type WatchRender = { kind: 'json' } | { kind: 'table'; includeObject: IncludeObject };

export interface WatchParams {
  type: ResourceType;
  namespace?: string;
  labelSelector: LabelSelector;
  fieldSelector: FieldSelector;
  /** Start after this resourceVersion; undefined, "" and "0" start with the current state. */
  resourceVersion?: number;
  sendInitialEvents?: boolean;
  allowWatchBookmarks: boolean;
  timeoutSeconds: number;
  render: WatchRender;
}

export interface WatchTuning {
  /** How often an idle watch with allowWatchBookmarks gets a BOOKMARK (the real server: ~1 min). */
  bookmarkIntervalMs: number;
  /** A watcher that stops reading is dropped once this much output is buffered for it. */
  maxBufferedBytes: number;
}

export class WatchStream {
  readonly #api: Api;
  readonly #res: ServerResponse;
  readonly #params: WatchParams;
  readonly #tuning: WatchTuning;
  readonly #match: (object: KubeObject) => boolean;
  readonly #onEnd: (stream: WatchStream) => void;
  #unsubscribe: (() => void) | undefined;
  #timers: NodeJS.Timeout[] = [];
  #bookmarkTimer: NodeJS.Timeout | undefined;
  #deadline = 0;
  #tableHeadersSent = false;
  #corked = false;
  #ended = false;
  /** Live events that arrived while the initial events were still being written. */
  #pending: string[] | undefined = [];

  constructor(
    api: Api,
    res: ServerResponse,
    params: WatchParams,
    tuning: WatchTuning,
    onEnd: (s: WatchStream) => void,
  ) {
    this.#api = api;
    this.#res = res;
    this.#params = params;
    this.#tuning = tuning;
    this.#onEnd = onEnd;
    this.#match = api.matcher(
      params.type,
      params.type.namespaced ? params.namespace : undefined,
      params.labelSelector,
      params.fieldSelector,
    );
  }

  /** Writes the response head and the initial or replayed events, then follows the store. */
  start(): void {
    const { type } = this.#params;
    const store = this.#api.store;
    this.#res.writeHead(200, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Transfer-Encoding': 'chunked',
    });
    // Clients (client-go) wait for the response head before they consider the watch open.
    this.#res.flushHeaders();
    this.#res.on('close', () => this.end());
    const rv = this.#params.resourceVersion;
    const fromState = rv === undefined || rv === 0;
    if (!fromState && rv! < store.compactedRv) {
      const gone = errors.expired(`too old resource version: ${rv} (${store.compactedRv + 1})`);
      this.#write(`{"type":"ERROR","object":${JSON.stringify(gone.status)}}\n`);
      this.end();
      return;
    }
    // The starting point is captured now; its events go out in chunks so that a large initial state
    // does not block the event loop, and live events wait in `pending` until they are written.
    const initial: Array<() => string | undefined> = [];
    if (fromState) {
      if (this.#params.sendInitialEvents !== false) {
        for (const entry of store.table(type.storage).values()) {
          if (this.#match(entry.object)) initial.push(() => this.#line('ADDED', entry));
        }
        if (this.#params.sendInitialEvents && this.#params.allowWatchBookmarks) {
          initial.push(() => this.#bookmarkLine({ 'k8s.io/initial-events-end': 'true' }));
        }
      }
    } else {
      for (const event of store.eventsAfter(rv!)) {
        if (event.entry.storage === type.storage) initial.push(() => this.#transform(event));
      }
    }
    this.#unsubscribe = store.subscribe(type.storage, (event) => {
      if (this.#params.resourceVersion !== undefined && event.rv <= this.#params.resourceVersion) return;
      const line = this.#transform(event);
      if (!line) return;
      if (this.#pending) this.#pending.push(line);
      else this.#write(line);
    });
    if (initial.length <= INITIAL_CHUNK) {
      this.#write(initial.map((f) => f() ?? '').join(''));
      this.#pending = undefined;
    } else {
      void this.#writeInitial(initial);
    }
    const timeoutMs = this.#params.timeoutSeconds * 1000;
    this.#deadline = Date.now() + timeoutMs;
    this.#timers.push(setTimeout(() => this.end(), timeoutMs));
    if (this.#params.allowWatchBookmarks) this.#scheduleBookmark();
  }

  async #writeInitial(initial: Array<() => string | undefined>) {
    for (let i = 0; i < initial.length && !this.#ended; i += INITIAL_CHUNK) {
      const chunk = initial.slice(i, i + INITIAL_CHUNK).map((f) => f() ?? '');
      this.#write(chunk.join(''));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    if (pending.length) this.#write(pending.join(''));
  }

  /** Ends the stream cleanly (the client sees the response end), as the server does on timeout. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#unsubscribe?.();
    for (const t of this.#timers) clearTimeout(t);
    if (this.#bookmarkTimer) clearTimeout(this.#bookmarkTimer);
    // Corked events go out before the end of the chunked body.
    this.#flush();
    if (!this.#res.writableEnded && !this.#res.destroyed) this.#res.end();
    this.#onEnd(this);
  }

  /** Cuts the connection without a clean end (a dropped TCP connection). */
  destroy(): void {
    if (!this.#res.destroyed) this.#res.destroy();
    this.end();
  }

  #write(data: string) {
    if (this.#ended) return;
    // Writes in one tick (a burst of events, e.g. a cascade) leave as one TLS record, not one each.
    if (!this.#corked) {
      this.#corked = true;
      this.#res.cork();
      process.nextTick(() => this.#flush());
    }
    this.#res.write(data);
    if (this.#res.writableLength > this.#tuning.maxBufferedBytes) {
      // A watcher that cannot keep up is terminated, as the watch cache drops slow watchers.
      this.destroy();
    }
  }

  #flush() {
    if (!this.#corked) return;
    this.#corked = false;
    this.#res.uncork();
  }

  #scheduleBookmark() {
    const now = Date.now();
    let at = now + this.#tuning.bookmarkIntervalMs;
    const beforeDeadline = this.#deadline - 2000;
    if (beforeDeadline < at) at = beforeDeadline;
    if (at <= now) return;
    this.#bookmarkTimer = setTimeout(() => {
      // The current resourceVersion, as a 1.32 watch cache kept fresh by etcd progress notifications
      // sends it even to an idle watch (1.27+ may send the watch's own resourceVersion).
      this.#write(this.#bookmarkLine());
      this.#scheduleBookmark();
    }, at - now);
  }

  #bookmarkLine(annotations?: Record<string, string>): string {
    const { type } = this.#params;
    const metadata: Record<string, unknown> = { resourceVersion: String(this.#api.store.resourceVersion) };
    if (!type.custom) metadata.creationTimestamp = null;
    if (annotations) metadata.annotations = annotations;
    const object = { kind: type.kind, apiVersion: apiVersionOf(type), metadata };
    return `{"type":"BOOKMARK","object":${JSON.stringify(object)}}\n`;
  }

  /** The event this watcher sees, with the selector transitions the watch cache applies. */
  #transform(event: StoreEvent): string | undefined {
    const now = this.#match(event.entry.object);
    if (event.type === 'ADDED') return now ? this.#line('ADDED', event.entry) : undefined;
    if (event.type === 'DELETED') {
      return event.prev && this.#match(event.prev.object) ? this.#line('DELETED', event.entry) : undefined;
    }
    const prev = event.prev && this.#match(event.prev.object) ? event.prev : undefined;
    if (now && prev) return this.#line('MODIFIED', event.entry);
    if (now) return this.#line('ADDED', event.entry);
    // An object that stops matching leaves as DELETED with its previous content at the event's
    // resourceVersion, as the watch cache (cacheWatcher.convertToWatchEvent) sends it.
    if (prev) return this.#line('DELETED', atResourceVersion(prev, event.entry.rv));
    return undefined;
  }

  #line(type: EventType, entry: Entry): string {
    const render = this.#params.render;
    if (render.kind === 'table') {
      const object = this.#api.external(this.#params.type, entry.object);
      const table = toTable(
        this.#params.type,
        [object],
        { resourceVersion: String(entry.rv) },
        {
          includeObject: render.includeObject,
          noHeaders: this.#tableHeadersSent,
        },
      );
      this.#tableHeadersSent = true;
      return `{"type":"${type}","object":${JSON.stringify(table)}}\n`;
    }
    let json = this.#params.type.fromStorage ? undefined : typedJson.get(entry);
    if (json === undefined) {
      json = this.#api.serialize(this.#params.type, entry);
      if (!this.#params.type.fromStorage) typedJson.set(entry, json);
    }
    return `{"type":"${type}","object":${json}}\n`;
  }
}
