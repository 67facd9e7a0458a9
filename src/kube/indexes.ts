// Secondary indexes over an informer's cache (client-go's Indexers): index value → the keys of the objects
// that have it, so a reconcile reads its own objects without scanning the whole cache.

/** The values an object is filed under in one index (none: not in that index). */
export type IndexFunc<T> = (obj: T) => readonly string[];

/**
 * Named indexes over a keyed cache. The cache calls `file` after it stores an object and `unfile`
 * before it drops or replaces one, with the object it held, so no reverse map per object is kept.
 */
export class Indexes<T> {
  readonly #indexes = new Map<string, { fn: IndexFunc<T>; keys: Map<string, Set<string>> }>();

  /** Adds index `name`, filing `existing` (the cache's current contents) under it. Throws if taken. */
  add(name: string, fn: IndexFunc<T>, existing: Iterable<[string, T]>): void {
    if (this.#indexes.has(name)) throw new Error(`index ${name} already exists`);
    this.#indexes.set(name, { fn, keys: new Map() });
    for (const [key, obj] of existing) this.#fileIn(name, key, obj);
  }

  /** The keys filed under `value` in index `name`; throws for an index never added. */
  keys(name: string, value: string): string[] {
    return [...(this.#index(name).keys.get(value) ?? [])];
  }

  /** Every value of index `name` that at least one object is filed under. */
  values(name: string): string[] {
    return [...this.#index(name).keys.keys()];
  }

  file(key: string, obj: T): void {
    for (const name of this.#indexes.keys()) this.#fileIn(name, key, obj);
  }

  unfile(key: string, obj: T): void {
    for (const { fn, keys } of this.#indexes.values()) {
      for (const value of fn(obj)) {
        const set = keys.get(value);
        set?.delete(key);
        // Empty sets go, so `values` lists only values some object still has.
        if (set?.size === 0) keys.delete(value);
      }
    }
  }

  /** Forgets every filed key (the cache is being replaced wholesale). */
  clear(): void {
    for (const { keys } of this.#indexes.values()) keys.clear();
  }

  #fileIn(name: string, key: string, obj: T): void {
    const { fn, keys } = this.#index(name);
    for (const value of fn(obj)) {
      const set = keys.get(value) ?? new Set<string>();
      keys.set(value, set);
      set.add(key);
    }
  }

  #index(name: string) {
    const index = this.#indexes.get(name);
    if (!index) throw new Error(`no index named ${name}`);
    return index;
  }
}
