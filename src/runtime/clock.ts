// Time as an injected dependency: a wall clock and cancellable timers, so tests can use fake timers.

/** The wall clock. Pure code takes `now` as a value; I/O code takes a Clock. */
export interface Clock {
  now(): Date;
}

/** The process's real clock. Reads `Date` at call time, so vitest fake timers apply to it. */
export const systemClock: Clock = { now: () => new Date() };

/** An opaque handle from `Timers.setTimeout`. */
export type TimerHandle = unknown;

/** One-shot timers. The default resolves the globals lazily so vitest fake timers replace them. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts.
 * Uses `timers`, so fake timers advance it.
 */
export function sleep(ms: number, signal?: AbortSignal, timers: Timers = systemTimers): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      timers.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
