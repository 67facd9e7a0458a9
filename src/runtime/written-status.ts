// What one writer last wrote to each object's status: read-your-own-writes over a cache that lags.
import { canonicalJson } from '../api/revision.ts';

/** The parts of an object a status write is tied to: which object, which generation, what it shows. */
export interface StatusHolder<S> {
  metadata: { uid?: string; generation?: number };
  status?: S;
}

interface Written<S> {
  uid: string | undefined;
  generation: number;
  status: S;
}

/**
 * The status this writer last wrote per key, with the object (uid) and generation it was for. An
 * informer cache shows our own writes late (and replays older ones after newer), so for the same
 * object and generation what we wrote wins over what the cache shows. A new generation, or a new
 * object under the same name, makes the cache authoritative again.
 */
export class WrittenStatus<S> {
  readonly #byKey = new Map<string, Written<S>>();

  /** `object`'s status as far as this writer knows: its own last write for it, else the cached one. */
  current(key: string, object: StatusHolder<S>): S | undefined {
    const written = this.#byKey.get(key);
    return written &&
      written.uid === object.metadata.uid &&
      written.generation === (object.metadata.generation ?? 0)
      ? written.status
      : object.status;
  }

  /**
   * Writes `status` with `write` unless it says exactly what `current` says, and remembers it once
   * `write` resolved. Returns whether it wrote. Errors from `write` propagate (nothing is remembered).
   */
  async write(
    key: string,
    object: StatusHolder<S>,
    status: S,
    write: (status: S) => Promise<void>,
  ): Promise<boolean> {
    if (canonicalJson(this.current(key, object) ?? {}) === canonicalJson(status)) return false;
    await write(status);
    this.#byKey.set(key, { uid: object.metadata.uid, generation: object.metadata.generation ?? 0, status });
    return true;
  }

  /** Drops what was written for `key` (the object is gone). */
  forget(key: string): void {
    this.#byKey.delete(key);
  }
}
