// The value a reconcile returns: done, or "look again after this long". Errors are thrown, not returned.

/**
 * What a reconcile asks of the work queue when it returns normally.
 * - `{}` (`done`): the object is converged; forget its backoff.
 * - `{ requeueAfterMs }`: waiting for something (a probe interval, a deadline); reconcile the key again
 *   after that long. Not an error: the key's failure backoff is reset.
 * A thrown error means per-key exponential backoff; a thrown `TerminalError` means no retry.
 */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** The converged result: nothing to do until the caches change. */
export const done: ReconcileResult = Object.freeze({});

/** Reconcile the same key again after `ms` (clamped to at least 1 ms). */
export function requeueAfter(ms: number): ReconcileResult {
  return { requeueAfterMs: Math.max(1, Math.ceil(ms)) };
}
