// Probe scheduling and thresholds, with time injected: periods pass at once, a 30 s wait never ends.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ActivationError } from '../../../../src/agent/errors.ts';
import { runProbes } from '../../../../src/agent/runtime/index.ts';
import { type HandshakeResult, Health, type ProbeResult } from '../../../../src/api/index.ts';

const FOREVER = 30_000;
/** Every wait ends on the next turn of the event loop, except a 30 s one, which ends only on abort. */
const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal?.reason);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (ms !== FOREVER) setImmediate(resolve);
  });
const now = () => new Date('2030-01-01T00:00:00Z');

let statuses: number[];
let server: http.Server;
let target: HandshakeResult;

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    const status = statuses.length > 1 ? statuses.shift()! : (statuses[0] ?? 200);
    if (status === 0) return; // never answers
    res.statusCode = status;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  target = { coreProtocol: 1, appProtocol: 1, network: 'tcp', address: `127.0.0.1:${port}` };
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  statuses = [200];
});

function probe(extra: object = {}) {
  return { name: 'web', httpGet: { path: '/healthz' }, timeoutSeconds: 30, ...extra };
}

async function run(health: object, extra: object = {}) {
  const results: ProbeResult[] = [];
  const error = await runProbes(target, Health.parse(health), {
    delay,
    now,
    onResult: (r) => results.push(r),
    ...extra,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { results, error: error as ActivationError | undefined };
}

describe('runProbes', () => {
  it('passes a probe after successThreshold consecutive successes', async () => {
    statuses = [200, 500, 200, 200, 200];
    const { results, error } = await run({ probes: [probe({ successThreshold: 3 })] });
    expect(error).toBeUndefined();
    expect(results.slice(0, 5).map((r) => r.success)).toEqual([true, false, true, true, true]);
    expect(results[0]).toEqual({ time: '2030-01-01T00:00:00.000Z', probe: 'web', success: true });
  });

  it('rejects at failureThreshold consecutive failures; a success in between resets the count', async () => {
    statuses = [500, 500, 200, 500, 500, 500, 200];
    const { results, error } = await run({ probes: [probe({ failureThreshold: 3, successThreshold: 10 })] });
    expect(error?.reason).toBe('ProbeFailed');
    expect(error?.message).toContain(
      'Probe web failed 3 times in a row; last error: GET /healthz answered 500',
    );
    expect(results.map((r) => r.success)).toEqual([false, false, true, false, false, false]);
  });

  it('counts an attempt that outlives its timeout as a failure', async () => {
    statuses = [0];
    const { error } = await run({ probes: [probe({ timeoutSeconds: 2, failureThreshold: 1 })] });
    expect(error?.reason).toBe('ProbeFailed');
    expect(error?.message).toContain('timed out after 2s');
  });

  it('keeps probing through the soak and rejects a failure there', async () => {
    statuses = [200, 200, 500];
    const { results, error } = await run({ probes: [probe({ failureThreshold: 1 })], soakSeconds: 30 });
    expect(error?.reason).toBe('ProbeFailed');
    expect(results.map((r) => r.success)).toEqual([true, true, false]);
  });

  it('waits for every probe to pass before it resolves', async () => {
    statuses = [200];
    const { results, error } = await run({
      probes: [probe(), { name: 'port', tcpSocket: {}, successThreshold: 4, timeoutSeconds: 30 }],
    });
    expect(error).toBeUndefined();
    expect(results.filter((r) => r.probe === 'port' && r.success).length).toBeGreaterThanOrEqual(4);
  });

  it('in a verification window, fails on the failure threshold however many successes came first', async () => {
    statuses = [200, 200, 200, 200, 500, 500];
    const { error } = await run(
      { probes: [probe({ failureThreshold: 2 })] },
      { until: 'window', windowMs: FOREVER },
    );
    expect(error?.reason).toBe('ProbeFailed');
  });

  it('resolves a verification window that ends without a failure threshold', async () => {
    statuses = [200, 500, 200];
    const { error } = await run(
      { probes: [probe({ failureThreshold: 2 })] },
      { until: 'window', windowMs: 5000 },
    );
    expect(error).toBeUndefined();
  });

  it('stops with the abort reason when aborted', async () => {
    statuses = [500];
    const abort = new AbortController();
    const pending = run({ probes: [probe({ failureThreshold: 100 })] }, { signal: abort.signal });
    setTimeout(() => abort.abort(new Error('agent stopping')), 20);
    const { error } = await pending;
    expect((error as unknown as Error).message).toBe('agent stopping');
  });
});
