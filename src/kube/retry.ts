// Retrying ONE API call that failed transiently (429, 5xx, dropped connection), never a whole reconcile.
import pRetry from 'p-retry';
import { sleep } from '../runtime/clock.ts';
import { classify, retryAfterMsOf } from './errors.ts';

export interface RetryOptions {
  signal?: AbortSignal;
  /** Retries after the first attempt (default 4). */
  retries?: number;
  /** First backoff delay (default 100 ms); it doubles with jitter. */
  minTimeoutMs?: number;
  /** Cap of one backoff delay (default 5 s). */
  maxTimeoutMs?: number;
  /** Cap of a server-requested Retry-After wait (default 30 s), so a hostile header cannot stall us. */
  maxRetryAfterMs?: number;
  /** Called before each retry, for logs and metrics. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `call` and retries it only while classify(error) is 'Transient', waiting the longer of the
 * exponential backoff and the server's Retry-After. Any other failure, exhausted retries, or an
 * aborted `signal` rejects with the last error itself (not a wrapper).
 *
 * `call` must be one idempotent-enough API request: a create retried after a dropped connection may
 * find its own object (AlreadyExists), which the caller must accept.
 */
export function withRetry<T>(call: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
  return pRetry(call, {
    retries: options.retries ?? 4,
    minTimeout: options.minTimeoutMs ?? 100,
    maxTimeout: options.maxTimeoutMs ?? 5_000,
    factor: 2,
    randomize: true,
    signal: options.signal,
    shouldRetry: ({ error }) => classify(error) === 'Transient',
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft, retryDelay }) => {
      if (retriesLeft === 0 || classify(error) !== 'Transient') return;
      // p-retry waits retryDelay after this callback; top it up to what the server asked for.
      const retryAfter = Math.min(retryAfterMsOf(error) ?? 0, maxRetryAfterMs);
      const extra = Math.max(0, retryAfter - retryDelay);
      options.onRetry?.(error, attemptNumber, retryDelay + extra);
      if (extra > 0) await sleep(extra, options.signal);
    },
  });
}
