// Error classification and single-call retries: which failures retry, how long they wait.
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  classify,
  type ErrorClass,
  isNamespaceTerminating,
  KubeApiError,
  retryAfterMsOf,
  toKubeError,
} from '../../../src/kube/errors.ts';
import { HttpStatusError } from '../../../src/kube/rest.ts';
import { withRetry } from '../../../src/kube/retry.ts';

const apiException = (code: number, reason?: string, headers: Record<string, string> = {}) =>
  new ApiException(
    code,
    'Unknown API Status Code!',
    JSON.stringify({ kind: 'Status', code, reason, message: `${reason ?? 'error'} from server` }),
    headers,
  );
const network = (code: string, message = 'fetch failed') =>
  new TypeError(message, { cause: Object.assign(new Error('socket'), { code }) });

describe('classify', () => {
  const cases: { name: string; error: unknown; want: ErrorClass }[] = [
    { name: 'a 404 is NotFound', error: apiException(404, 'NotFound'), want: 'NotFound' },
    { name: 'a 409 Conflict is Conflict', error: apiException(409, 'Conflict'), want: 'Conflict' },
    {
      name: 'a 409 AlreadyExists is AlreadyExists',
      error: apiException(409, 'AlreadyExists'),
      want: 'AlreadyExists',
    },
    { name: 'a 422 is Invalid', error: apiException(422, 'Invalid'), want: 'Invalid' },
    { name: 'a 400 is Invalid', error: apiException(400, 'BadRequest'), want: 'Invalid' },
    { name: 'a 429 is Transient', error: apiException(429, 'TooManyRequests'), want: 'Transient' },
    { name: 'a 500 is Transient', error: apiException(500, 'InternalError'), want: 'Transient' },
    { name: 'a 503 is Transient', error: apiException(503, 'ServiceUnavailable'), want: 'Transient' },
    { name: 'a 504 is Transient', error: apiException(504, 'Timeout'), want: 'Transient' },
    { name: 'a 403 is Terminal', error: apiException(403, 'Forbidden'), want: 'Terminal' },
    { name: 'a 401 is Terminal', error: apiException(401), want: 'Terminal' },
    { name: 'a 410 on a single call is Terminal', error: apiException(410, 'Expired'), want: 'Terminal' },
    { name: 'a refused connection is Transient', error: network('ECONNREFUSED'), want: 'Transient' },
    { name: 'a reset connection is Transient', error: network('ECONNRESET'), want: 'Transient' },
    { name: "undici's socket error is Transient", error: network('UND_ERR_SOCKET'), want: 'Transient' },
    {
      name: 'a socket hang up is Transient',
      error: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      want: 'Transient',
    },
    {
      name: 'a timeout is Transient',
      error: new DOMException('timed out', 'TimeoutError'),
      want: 'Transient',
    },
    {
      name: 'a watch failure with statusCode 500 is Transient',
      error: Object.assign(new Error('Internal Server Error'), { statusCode: 500 }),
      want: 'Transient',
    },
    { name: 'an abort is Terminal', error: new DOMException('aborted', 'AbortError'), want: 'Terminal' },
    {
      name: 'a programming error is Terminal',
      error: new TypeError('x is not a function'),
      want: 'Terminal',
    },
    {
      name: 'a wrapped error keeps its class',
      error: toKubeError(apiException(404, 'NotFound'), 'get x'),
      want: 'NotFound',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(classify(c.error)).toBe(c.want);
    });
  }
});

describe('toKubeError', () => {
  it('names the request, keeps the server message and a stable code', () => {
    const error = toKubeError(apiException(409, 'Conflict'), 'patch pluginactivations ns/a') as KubeApiError;
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error.code).toBe('PR_ERR_KUBE_CONFLICT');
    expect(error.message).toBe('patch pluginactivations ns/a: Conflict from server');
    expect(error.statusCode).toBe(409);
    expect(error.reason).toBe('Conflict');
  });

  it('describes a network failure by its socket code', () => {
    const error = toKubeError(network('ECONNREFUSED'), 'list nodes') as KubeApiError;
    expect(error.classification).toBe('Transient');
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('passes an abort through unchanged', () => {
    const abort = new DOMException('aborted', 'AbortError');
    expect(toKubeError(abort, 'get x')).toBe(abort);
  });
});

describe('retryAfterMsOf', () => {
  const cases: { name: string; error: unknown; want: number | undefined }[] = [
    {
      name: 'reads seconds from the header',
      error: apiException(429, 'TooManyRequests', { 'retry-after': '2' }),
      want: 2000,
    },
    {
      name: 'reads details.retryAfterSeconds from the Status',
      error: new ApiException(
        429,
        'x',
        JSON.stringify({ kind: 'Status', code: 429, details: { retryAfterSeconds: 3 } }),
        {},
      ),
      want: 3000,
    },
    { name: 'is undefined without either', error: apiException(500), want: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(retryAfterMsOf(c.error)).toBe(c.want);
      expect(retryAfterMsOf(toKubeError(c.error, 'x'))).toBe(c.want);
    });
  }
  it('counts an HTTP-date header from the clock it is given', () => {
    const error = apiException(503, 'ServiceUnavailable', { 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' });
    const clock = { now: () => new Date('2026-01-01T00:00:00Z') };
    expect(retryAfterMsOf(error, clock)).toBe(5000);
  });
});

describe('withRetry', () => {
  const cases: { name: string; failures: unknown[]; wantCalls: number; wantOk: boolean }[] = [
    {
      name: 'retries 5xx until the call succeeds',
      failures: [apiException(500), apiException(503)],
      wantCalls: 3,
      wantOk: true,
    },
    { name: 'retries a dropped connection', failures: [network('ECONNRESET')], wantCalls: 2, wantOk: true },
    {
      name: 'does not retry a conflict',
      failures: [apiException(409, 'Conflict')],
      wantCalls: 1,
      wantOk: false,
    },
    {
      name: 'does not retry NotFound',
      failures: [apiException(404, 'NotFound')],
      wantCalls: 1,
      wantOk: false,
    },
    { name: 'does not retry Invalid', failures: [apiException(422, 'Invalid')], wantCalls: 1, wantOk: false },
    {
      name: 'gives up after the retry budget',
      failures: [apiException(500), apiException(500), apiException(500), apiException(500)],
      wantCalls: 3,
      wantOk: false,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      let calls = 0;
      const call = async () => {
        const failure = c.failures[calls++];
        if (failure) throw failure;
        return 'ok';
      };
      const result = withRetry(call, { retries: 2, minTimeoutMs: 1, maxTimeoutMs: 2 });
      const outcome = await result.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      expect(calls).toBe(c.wantCalls);
      // On failure the caller sees the last error itself, not a wrapper.
      expect(outcome).toEqual(c.wantOk ? { value: 'ok' } : { error: c.failures[calls - 1] });
    });
  }

  it('waits at least what Retry-After asks for', async () => {
    let calls = 0;
    const started = Date.now();
    const result = await withRetry(
      async () => {
        if (calls++ === 0) throw apiException(429, 'TooManyRequests', { 'retry-after': '1' });
        return Date.now() - started;
      },
      { minTimeoutMs: 1, maxTimeoutMs: 2 },
    );
    expect(result).toBeGreaterThanOrEqual(990);
  });

  it('stops waiting when its signal aborts', async () => {
    const abort = new AbortController();
    const result = withRetry(
      async () => {
        throw apiException(429, 'TooManyRequests', { 'retry-after': '30' });
      },
      { signal: abort.signal, minTimeoutMs: 1 },
    );
    setTimeout(() => abort.abort(new Error('cancelled')), 20);
    await expect(result).rejects.toThrow('cancelled');
  });
});

describe('isNamespaceTerminating', () => {
  // The body kube-apiserver's NamespaceLifecycle admission answers with (metav1.StatusCause's type is
  // its JSON field "reason").
  const refused = (causes: unknown[]) =>
    new HttpStatusError(
      403,
      JSON.stringify({
        kind: 'Status',
        code: 403,
        reason: 'Forbidden',
        message:
          'events "x" is forbidden: unable to create new content in namespace ns because it is being terminated',
        details: { name: 'x', kind: 'events', causes },
      }),
      {},
    );
  it.each([
    [
      'the NamespaceTerminating cause',
      refused([{ reason: 'NamespaceTerminating', field: 'metadata.namespace' }]),
      true,
    ],
    ['another Forbidden', refused([]), false],
    ['another cause', refused([{ reason: 'FieldValueInvalid' }]), false],
    ['a network error', new Error('ECONNRESET'), false],
  ])('%s → %s', (_what, error, expected) => {
    expect(isNamespaceTerminating(error)).toBe(expected);
  });
});
