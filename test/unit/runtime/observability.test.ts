// Observability: JSON logs with reconcile ids, pluginrelease_* metrics, and the /metrics /healthz /readyz server.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createLogger,
  createMetrics,
  type HealthServer,
  parseAddress,
  reconcileLogger,
  startHealthServer,
} from '../../../src/observability/index.ts';
import { WorkQueue } from '../../../src/runtime/queue.ts';

describe('parseAddress', () => {
  const cases: { addr: string; want: { host: string; port: number } | 'error' }[] = [
    { addr: '127.0.0.1:8080', want: { host: '127.0.0.1', port: 8080 } },
    { addr: ':9090', want: { host: '0.0.0.0', port: 9090 } },
    { addr: '[::1]:0', want: { host: '::1', port: 0 } },
    { addr: 'localhost:65535', want: { host: 'localhost', port: 65535 } },
    { addr: 'localhost', want: 'error' },
    { addr: '127.0.0.1:99999', want: 'error' },
    { addr: '127.0.0.1:http', want: 'error' },
  ];
  for (const c of cases) {
    it(`${c.want === 'error' ? 'rejects' : 'parses'} "${c.addr}"`, () => {
      if (c.want === 'error') expect(() => parseAddress(c.addr)).toThrow(/expected host:port/);
      else expect(parseAddress(c.addr)).toEqual(c.want);
    });
  }
});

describe('createLogger', () => {
  it('writes JSON lines, and a reconcile child carries its reconcileId and key', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const root = createLogger({ destination, base: { component: 'controller' } });
    const log = reconcileLogger(root, 'default/echo');
    log.info({ nodes: 3 }, 'planned');
    reconcileLogger(root, 'default/echo').info('again');
    const [first, second] = lines.map((l) => JSON.parse(l));
    expect(first).toMatchObject({
      level: 30,
      component: 'controller',
      key: 'default/echo',
      nodes: 3,
      msg: 'planned',
    });
    expect(first.reconcileId).toMatch(/^[0-9a-f]{8}$/);
    expect(second.reconcileId).not.toBe(first.reconcileId);
    expect(typeof first.time).toBe('string');
  });
});

describe('startHealthServer', () => {
  let server: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves the pluginrelease metrics with live queue depth', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const queue = new WorkQueue({ name: 'pluginreleases' });
    metrics.trackQueue(queue);
    for (const key of ['ns/a', 'ns/b', 'ns/c', 'ns/a']) queue.add(key);
    metrics.reconcileDuration.observe({ controller: 'pluginrelease', result: 'done' }, 0.02);
    metrics.rollbacksTotal.inc({ plugin: 'echo', scope: 'node' });
    server = await startHealthServer({ addr: '127.0.0.1:0', registry: metrics.registry, ready: () => true });
    const response = await fetch(`${server.url}/metrics`);
    const body = await response.text();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    expect(body).toContain('pluginrelease_workqueue_depth{name="pluginreleases"} 3');
    expect(body).toContain(
      'pluginrelease_reconcile_duration_seconds_count{controller="pluginrelease",result="done"} 1',
    );
    expect(body).toContain('pluginrelease_rollbacks_total{plugin="echo",scope="node"} 1');
    for (const name of ['activations_by_phase', 'probe_duration_seconds', 'swap_duration_seconds']) {
      expect(body).toContain(`# TYPE pluginrelease_${name}`);
    }
    await queue.shutdown();
  });

  it('answers /readyz from the ready callback and /healthz while alive', async () => {
    let ready = false;
    server = await startHealthServer({
      addr: '127.0.0.1:0',
      registry: createMetrics({ processMetrics: false }).registry,
      ready: () => ready,
    });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
  });

  it('fails to start on an address already in use', async () => {
    const registry = createMetrics({ processMetrics: false }).registry;
    server = await startHealthServer({ addr: '127.0.0.1:0', registry, ready: () => true });
    await expect(
      startHealthServer({ addr: `127.0.0.1:${server.port}`, registry, ready: () => true }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});
