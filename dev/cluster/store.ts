// The dev cluster's "etcd": objects per storage, one global monotonically increasing resourceVersion,
// a bounded event history (older watches and continue tokens get 410 Gone, like etcd compaction),
// subscriptions for watch fan-out, and uid/owner indexes for garbage collection.
import type { KubeObject } from './resources.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One stored version of an object. Never mutated: every write stores a new Entry. */
export interface Entry {
  readonly object: KubeObject;
  /**
   * JSON of the object as a list item: with apiVersion/kind for custom resources (`typed`), without
   * them for built-ins (typed Go lists carry none); a serializer prefixes the TypeMeta when needed.
   */
  readonly body: string;
  readonly typed: boolean;
  readonly rv: number;
  readonly storage: string;
  readonly key: string;
}

export interface StoreEvent {
  readonly type: EventType;
  readonly rv: number;
  /** The new state; for DELETED the last state, stamped with the deletion's resourceVersion. */
  readonly entry: Entry;
  /** The state before (MODIFIED, DELETED). */
  readonly prev?: Entry;
}

export type Listener = (event: StoreEvent) => void;

/** A resourceVersion older than the retained history. */
export class CompactedError extends Error {
  readonly requested: number;
  readonly oldest: number;
  constructor(requested: number, oldest: number) {
    super(`too old resource version: ${requested} (${oldest})`);
    this.requested = requested;
    this.oldest = oldest;
  }
}

function makeEntry(storage: string, key: string, object: KubeObject, rv: number, typed: boolean): Entry {
  if (typed) {
    const { apiVersion, kind, ...rest } = object;
    return { object, body: JSON.stringify({ kind, apiVersion, ...rest }), typed, rv, storage, key };
  }
  const { apiVersion: _a, kind: _k, ...rest } = object;
  return { object, body: JSON.stringify(rest), typed, rv, storage, key };
}

/** The same object stamped with another resourceVersion (not stored: for one watch event). */
export function atResourceVersion(entry: Entry, rv: number): Entry {
  const object = { ...entry.object, metadata: { ...entry.object.metadata, resourceVersion: String(rv) } };
  return makeEntry(entry.storage, entry.key, object, rv, entry.typed);
}

export class Store {
  #rv: number;
  readonly #tables = new Map<string, Map<string, Entry>>();
  readonly #ring: Array<StoreEvent | undefined>;
  #head = 0;
  #count = 0;
  /** Every event with rv <= compactedRv has been dropped from the history. */
  #compacted: number;
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #globalListeners = new Set<Listener>();
  readonly #byUid = new Map<string, Entry>();
  readonly #dependents = new Map<string, Set<Entry>>();

  readonly #typedStorage: (storage: string) => boolean;

  /**
   * `historySize` events are kept for watch resume and consistent paging; `typedStorage` says which
   * storages keep apiVersion/kind in their cached JSON (custom resources).
   */
  constructor(historySize: number, typedStorage: (storage: string) => boolean = () => false, initialRv = 1) {
    this.#typedStorage = typedStorage;
    this.#ring = new Array(Math.max(0, historySize));
    this.#rv = initialRv;
    this.#compacted = initialRv;
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  /** The oldest resourceVersion a watch or continue can start from. */
  get compactedRv(): number {
    return this.#compacted;
  }

  table(storage: string): Map<string, Entry> {
    let t = this.#tables.get(storage);
    if (!t) {
      t = new Map();
      this.#tables.set(storage, t);
    }
    return t;
  }

  get(storage: string, key: string): Entry | undefined {
    return this.#tables.get(storage)?.get(key);
  }

  byUidLookup(uid: string): Entry | undefined {
    return this.#byUid.get(uid);
  }

  /** Live objects that list `uid` in their ownerReferences. */
  dependentsOf(uid: string): Entry[] {
    return [...(this.#dependents.get(uid) ?? [])];
  }

  /**
   * Stores `object` (which the caller hands over and must not touch again) under a new
   * resourceVersion, stamping metadata.resourceVersion, and emits ADDED or MODIFIED.
   */
  put(storage: string, key: string, object: KubeObject): Entry {
    const table = this.table(storage);
    const prev = table.get(key);
    const rv = ++this.#rv;
    object.metadata.resourceVersion = String(rv);
    const entry = makeEntry(storage, key, object, rv, this.#typedStorage(storage));
    table.set(key, entry);
    if (prev) this.#unindex(prev);
    this.#index(entry);
    this.#emit({ type: prev ? 'MODIFIED' : 'ADDED', rv, entry, prev });
    return entry;
  }

  /** Removes the object and emits DELETED with its last state under the deletion's resourceVersion. */
  remove(storage: string, key: string): Entry | undefined {
    const table = this.#tables.get(storage);
    const prev = table?.get(key);
    if (!table || !prev) return undefined;
    table.delete(key);
    this.#unindex(prev);
    const rv = ++this.#rv;
    const object = { ...prev.object, metadata: { ...prev.object.metadata, resourceVersion: String(rv) } };
    const entry = makeEntry(storage, key, object, rv, prev.typed);
    this.#emit({ type: 'DELETED', rv, entry, prev });
    return entry;
  }

  #index(entry: Entry) {
    const uid = entry.object.metadata.uid;
    if (uid) this.#byUid.set(uid, entry);
    for (const ref of entry.object.metadata.ownerReferences ?? []) {
      let set = this.#dependents.get(ref.uid);
      if (!set) {
        set = new Set();
        this.#dependents.set(ref.uid, set);
      }
      set.add(entry);
    }
  }

  #unindex(entry: Entry) {
    const uid = entry.object.metadata.uid;
    if (uid && this.#byUid.get(uid) === entry) this.#byUid.delete(uid);
    for (const ref of entry.object.metadata.ownerReferences ?? []) {
      const set = this.#dependents.get(ref.uid);
      set?.delete(entry);
      if (set?.size === 0) this.#dependents.delete(ref.uid);
    }
  }

  #emit(event: StoreEvent) {
    this.#record(event);
    const set = this.#listeners.get(event.entry.storage);
    if (set) for (const listener of [...set]) listener(event);
    for (const listener of [...this.#globalListeners]) listener(event);
  }

  #record(event: StoreEvent) {
    const capacity = this.#ring.length;
    if (capacity === 0) {
      this.#compacted = event.rv;
      return;
    }
    if (this.#count === capacity) {
      this.#compacted = this.#ring[this.#head]!.rv;
      this.#ring[this.#head] = event;
      this.#head = (this.#head + 1) % capacity;
    } else {
      this.#ring[(this.#head + this.#count) % capacity] = event;
      this.#count++;
    }
  }

  /** Events with resourceVersion > rv, oldest first; throws CompactedError when some were dropped. */
  eventsAfter(rv: number): StoreEvent[] {
    if (rv < this.#compacted) throw new CompactedError(rv, this.#compacted + 1);
    const capacity = this.#ring.length;
    // Binary search the ring (resourceVersions increase strictly) for the first event after rv.
    let lo = 0;
    let hi = this.#count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#ring[(this.#head + mid) % capacity]!.rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    const out: StoreEvent[] = [];
    for (let i = lo; i < this.#count; i++) out.push(this.#ring[(this.#head + i) % capacity]!);
    return out;
  }

  /**
   * The objects of one storage as they were at resourceVersion `rv`, rebuilt by undoing the newer
   * events of the history; throws CompactedError when the history no longer reaches back that far.
   */
  snapshot(storage: string, rv: number): Map<string, Entry> {
    const current = this.table(storage);
    if (rv >= this.#rv) return current;
    const newer = this.eventsAfter(rv);
    const snapshot = new Map(current);
    for (let i = newer.length - 1; i >= 0; i--) {
      const event = newer[i]!;
      if (event.entry.storage !== storage) continue;
      if (event.type === 'ADDED') snapshot.delete(event.entry.key);
      else if (event.prev) snapshot.set(event.entry.key, event.prev);
    }
    return snapshot;
  }

  subscribe(storage: string, listener: Listener): () => void {
    let set = this.#listeners.get(storage);
    if (!set) {
      set = new Set();
      this.#listeners.set(storage, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Every event of every storage (the garbage collector and namespace controller). */
  subscribeAll(listener: Listener): () => void {
    this.#globalListeners.add(listener);
    return () => {
      this.#globalListeners.delete(listener);
    };
  }
}
