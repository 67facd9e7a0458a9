// Kubernetes API errors: one error class with a stable code, and classify() that says what to do about it.

import { type Clock, systemClock } from '../runtime/clock.ts';
import { PluginReleaseError } from '../runtime/errors.ts';

/**
 * What a failed API call means for the caller:
 * - NotFound: the object is gone (usually fine: a delete already happened).
 * - Conflict: stale resourceVersion or failed JSON-patch `test`: re-read from the cache and requeue.
 * - AlreadyExists: a create lost a race or repeated itself: read the existing object.
 * - Invalid: the server rejected the content (schema, 400/422): retrying the same body cannot help.
 * - Transient: 429, 5xx, a dropped or refused connection, a timeout: retry the same call.
 * - Terminal: anything else (401/403, 410 for a single call, a bug): do not retry.
 */
export type ErrorClass = 'NotFound' | 'Conflict' | 'AlreadyExists' | 'Invalid' | 'Transient' | 'Terminal';

const CODES: Record<ErrorClass, string> = {
  NotFound: 'PR_ERR_KUBE_NOT_FOUND',
  Conflict: 'PR_ERR_KUBE_CONFLICT',
  AlreadyExists: 'PR_ERR_KUBE_ALREADY_EXISTS',
  Invalid: 'PR_ERR_KUBE_INVALID',
  Transient: 'PR_ERR_KUBE_TRANSIENT',
  Terminal: 'PR_ERR_KUBE_TERMINAL',
};

/** A metav1.Status as the API server returns it in error bodies and watch ERROR events. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; retryAfterSeconds?: number; causes?: unknown[] };
}

/** Every failed API call from src/kube surfaces as this, with `code` = PR_ERR_KUBE_<CLASS>. */
export class KubeApiError extends PluginReleaseError {
  readonly classification: ErrorClass;
  /** The HTTP status, when the server answered. */
  readonly statusCode: number | undefined;
  /** The Status reason (NotFound, Conflict, AlreadyExists, Invalid, Expired, TooManyRequests, …). */
  readonly reason: string | undefined;
  /** From the Retry-After header or Status details, when the server sent one. */
  readonly retryAfterMs: number | undefined;
  /** The metav1.Status the server answered with, when it sent one (field causes are in details). */
  readonly status: KubeStatus | undefined;

  constructor(
    classification: ErrorClass,
    message: string,
    details: {
      statusCode?: number;
      reason?: string;
      retryAfterMs?: number;
      status?: KubeStatus;
      cause?: unknown;
    } = {},
  ) {
    super(CODES[classification], message, details.cause === undefined ? undefined : { cause: details.cause });
    this.classification = classification;
    this.statusCode = details.statusCode;
    this.reason = details.reason;
    this.retryAfterMs = details.retryAfterMs;
    this.status = details.status;
  }
}

/** Codes of network failures worth retrying (Node, undici). */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const TRANSIENT_MESSAGES = /socket hang up|fetch failed|other side closed|terminated|network error/i;

/** The HTTP status carried by an error from client-node (ApiException.code, Watch's statusCode), if any. */
export function statusCodeOf(error: unknown): number | undefined {
  if (error instanceof KubeApiError) return error.statusCode;
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; statusCode?: unknown; status?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode;
  // ApiException.code is the HTTP status; Node's system errors use string codes, so a number is safe.
  if (typeof e.code === 'number' && e.code >= 100 && e.code < 600) return e.code;
  if (typeof e.status === 'number' && e.status >= 100 && e.status < 600) return e.status;
  return undefined;
}

/** The metav1.Status in an ApiException body (a JSON string in client-node v2), if there is one. */
export function statusOf(error: unknown): KubeStatus | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const body = (error as { body?: unknown }).body;
  return parseStatus(body);
}

export function parseStatus(body: unknown): KubeStatus | undefined {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const status = value as KubeStatus;
  return status.kind === 'Status' || typeof status.code === 'number' || typeof status.reason === 'string'
    ? status
    : undefined;
}

/**
 * Milliseconds the server asked us to wait (Retry-After header, or Status details.retryAfterSeconds);
 * an HTTP-date Retry-After counts from `clock`'s now.
 */
export function retryAfterMsOf(error: unknown, clock: Clock = systemClock): number | undefined {
  if (error instanceof KubeApiError) return error.retryAfterMs;
  if (typeof error !== 'object' || error === null) return undefined;
  const headers = (error as { headers?: Record<string, string> }).headers;
  const header = headers?.['retry-after'] ?? headers?.['Retry-After'];
  if (header !== undefined) {
    const seconds = Number(header);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    const date = Date.parse(header);
    if (!Number.isNaN(date)) return Math.max(0, date - clock.now().getTime());
  }
  const fromStatus = statusOf(error)?.details?.retryAfterSeconds;
  return typeof fromStatus === 'number' && fromStatus > 0 ? fromStatus * 1000 : undefined;
}

/** Classifies any error thrown by an API call (see ErrorClass). */
export function classify(error: unknown): ErrorClass {
  if (error instanceof KubeApiError) return error.classification;
  const status = statusCodeOf(error);
  if (status !== undefined) return classifyStatus(status, statusOf(error)?.reason);
  if (isAbort(error)) return 'Terminal';
  return isTransientNetworkError(error) ? 'Transient' : 'Terminal';
}

/** Classification of an HTTP status and Status reason. */
export function classifyStatus(statusCode: number, reason?: string): ErrorClass {
  if (statusCode === 404) return 'NotFound';
  if (statusCode === 409) return reason === 'AlreadyExists' ? 'AlreadyExists' : 'Conflict';
  if (statusCode === 400 || statusCode === 422) return 'Invalid';
  if (statusCode === 429 || statusCode >= 500) return 'Transient';
  return 'Terminal';
}

/** True for 410 Gone / reason Expired: a resourceVersion or continue token too old; relist. */
export function isGone(error: unknown): boolean {
  return statusCodeOf(error) === 410 || (error instanceof KubeApiError && error.reason === 'Expired');
}

export function isNotFound(error: unknown): boolean {
  return classify(error) === 'NotFound';
}

/**
 * A create refused because its namespace is being deleted (the NamespaceLifecycle admission plugin's
 * cause NamespaceTerminating): nothing to retry, and, for an Event, nothing to report.
 */
export function isNamespaceTerminating(error: unknown): boolean {
  const causes = statusOf(error)?.details?.causes ?? [];
  // metav1.StatusCause carries its type in the JSON field "reason".
  return causes.some((c) => (c as { reason?: unknown }).reason === 'NamespaceTerminating');
}

export function isConflict(error: unknown): boolean {
  return classify(error) === 'Conflict';
}

export function isAlreadyExists(error: unknown): boolean {
  return classify(error) === 'AlreadyExists';
}

/** Resolves to undefined instead of rejecting when the call failed with NotFound. */
export async function ignoreNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * Wraps whatever a client-node call threw into a KubeApiError naming the request (`what`, e.g.
 * "patch pluginactivations default/x"), keeping the original as `cause`. Abort errors pass through
 * unchanged so callers can tell cancellation from failure.
 */
export function toKubeError(error: unknown, what: string): unknown {
  if (error instanceof KubeApiError || isAbort(error)) return error;
  const statusCode = statusCodeOf(error);
  const status = statusOf(error);
  const classification = classify(error);
  const detail =
    status?.message ??
    (statusCode !== undefined
      ? `HTTP ${statusCode}`
      : error instanceof Error
        ? describeNetwork(error)
        : String(error));
  return new KubeApiError(classification, `${what}: ${detail}`, {
    statusCode,
    reason: status?.reason,
    retryAfterMs: retryAfterMsOf(error),
    status,
    cause: error,
  });
}

/** A KubeApiError from a watch ERROR event's Status object. */
export function errorFromStatus(status: KubeStatus, what: string): KubeApiError {
  const code = status.code ?? 500;
  return new KubeApiError(
    classifyStatus(code, status.reason),
    `${what}: ${status.message ?? `HTTP ${code}`}`,
    {
      statusCode: code,
      reason: status.reason,
      retryAfterMs: status.details?.retryAfterSeconds ? status.details.retryAfterSeconds * 1000 : undefined,
    },
  );
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

function isTransientNetworkError(error: unknown): boolean {
  // undici wraps the socket error: TypeError('fetch failed', { cause: SocketError{ code } }).
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (typeof e !== 'object') break;
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code)) return true;
    if (name === 'TimeoutError') return true;
    if (typeof message === 'string' && TRANSIENT_MESSAGES.test(message)) return true;
  }
  return false;
}

function describeNetwork(error: Error): string {
  const cause = error.cause as { code?: string; message?: string } | undefined;
  return cause?.code ? `${error.message} (${cause.code}: ${cause.message ?? ''})` : error.message;
}
