// The dev cluster's programmatic API: kubeconfig, simulated nodes and their directories, faults,
// request counts, restart and stop.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type DevCluster, startDevCluster } from '../../../dev/cluster/index.ts';

let cluster: DevCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
type Body = any;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Body;
}

/** One HTTPS request to the cluster with its CA and token (or another token). */
function call(
  c: DevCluster,
  method: string,
  path: string,
  body?: unknown,
  token: string | null = c.token,
): Promise<Reply> {
  const kubeconfig = parse(readFileSync(c.kubeconfigPath, 'utf8'));
  const ca = Buffer.from(kubeconfig.clusters[0].cluster['certificate-authority-data'], 'base64');
  const url = new URL(c.url + path);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method,
        hostname: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        ca,
        // A fresh connection per call: pooled keep-alive sockets do not survive restart().
        agent: false,
        headers: {
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...(payload
            ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
            : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : {} }),
        );
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

describe('startDevCluster', () => {
  it('writes a kubeconfig with context devcluster, namespace default, the server URL and the token', async () => {
    cluster = await startDevCluster();
    const kubeconfig = parse(readFileSync(cluster.kubeconfigPath, 'utf8'));
    expect(cluster.kubeconfigPath).toBe(join(cluster.dir, 'kubeconfig'));
    expect(kubeconfig['current-context']).toBe('devcluster');
    expect(kubeconfig.contexts[0].context.namespace).toBe('default');
    expect(kubeconfig.clusters[0].cluster.server).toBe(cluster.url);
    expect(kubeconfig.users[0].user.token).toBe(cluster.token);
    expect(cluster.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(statSync(cluster.kubeconfigPath).mode & 0o777).toBe(0o600);
  });

  it('answers requests without a token with 401', async () => {
    cluster = await startDevCluster();
    const res = await call(cluster, 'GET', '/api/v1/namespaces', undefined, null);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('Unauthorized');
  });

  it('seeds the system namespaces and serves the CRDs as Established', async () => {
    cluster = await startDevCluster();
    const namespaces = await call(cluster, 'GET', '/api/v1/namespaces');
    expect(namespaces.body.items.map((n: Body) => n.metadata.name).sort()).toEqual([
      'default',
      'kube-node-lease',
      'kube-public',
      'kube-system',
    ]);
    const crd = await call(
      cluster,
      'GET',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pluginreleases.pluginrelease.io',
    );
    expect(crd.body.status.conditions.find((c: Body) => c.type === 'Established').status).toBe('True');
  });

  it('serves CustomResourceDefinitions read-only with 405 on writes', async () => {
    cluster = await startDevCluster();
    const res = await call(
      cluster,
      'DELETE',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pluginreleases.pluginrelease.io',
    );
    expect(res.status).toBe(405);
  });

  it('removes its default temporary directory on stop', async () => {
    const c = await startDevCluster({ nodes: 1 });
    expect(existsSync(c.dir)).toBe(true);
    await c.stop();
    expect(existsSync(c.dir)).toBe(false);
  });
});

describe('simulated nodes', () => {
  it('creates node-1..node-N as Ready Node objects with a root and a staging directory each', async () => {
    cluster = await startDevCluster({ nodes: 3 });
    expect(cluster.nodes.map((n) => n.name)).toEqual(['node-1', 'node-2', 'node-3']);
    for (const node of cluster.nodes) {
      expect(node.root).toBe(join(cluster.dir, 'nodes', node.name, 'root'));
      expect(node.stagingRoot).toBe(join(cluster.dir, 'nodes', node.name, 'staging'));
      expect(statSync(node.root).isDirectory()).toBe(true);
      expect(statSync(node.stagingRoot).isDirectory()).toBe(true);
    }
    const list = await call(cluster, 'GET', '/api/v1/nodes');
    expect(list.body.items.map((n: Body) => n.metadata.name)).toEqual(['node-1', 'node-2', 'node-3']);
    const ready = list.body.items[0].status.conditions.find((c: Body) => c.type === 'Ready');
    expect(ready.status).toBe('True');
  });

  it('labels named nodes and selects them by label', async () => {
    cluster = await startDevCluster({
      nodes: [{ name: 'edge-a', labels: { zone: 'edge' } }, { name: 'core-a' }],
    });
    const res = await call(cluster, 'GET', '/api/v1/nodes?labelSelector=zone%3Dedge');
    expect(res.body.items.map((n: Body) => n.metadata.name)).toEqual(['edge-a']);
    expect(res.body.items[0].metadata.labels['kubernetes.io/hostname']).toBe('edge-a');
  });

  it('adds and removes nodes at runtime, calling the node hooks', async () => {
    const added: string[] = [];
    const removed: string[] = [];
    cluster = await startDevCluster({
      onNodeAdded: (n) => {
        added.push(n.name);
      },
      onNodeRemoved: (n) => {
        removed.push(n.name);
      },
    });
    const node = await cluster.addNode('late', { role: 'canary' });
    expect(node.labels).toEqual({ role: 'canary' });
    expect((await call(cluster, 'GET', '/api/v1/nodes/late')).body.metadata.labels.role).toBe('canary');
    await cluster.removeNode('late');
    expect((await call(cluster, 'GET', '/api/v1/nodes/late')).status).toBe(404);
    expect(cluster.nodes).toEqual([]);
    expect(added).toEqual(['late']);
    expect(removed).toEqual(['late']);
  });
});

describe('faults', () => {
  it('answers the next N requests with 429 and Retry-After, then recovers', async () => {
    cluster = await startDevCluster();
    cluster.faults.failNext(2, 429, 3);
    const first = await call(cluster, 'GET', '/api/v1/namespaces');
    const second = await call(cluster, 'GET', '/api/v1/namespaces');
    const third = await call(cluster, 'GET', '/api/v1/namespaces');
    expect([first.status, second.status, third.status]).toEqual([429, 429, 200]);
    expect(first.headers['retry-after']).toBe('3');
    expect(first.body).toMatchObject({
      kind: 'Status',
      reason: 'TooManyRequests',
      code: 429,
      details: { retryAfterSeconds: 3 },
    });
  });

  it('answers with 500 InternalError and 503 ServiceUnavailable', async () => {
    cluster = await startDevCluster();
    cluster.faults.failNext(1, 500);
    expect((await call(cluster, 'GET', '/api/v1/nodes')).body).toMatchObject({
      reason: 'InternalError',
      code: 500,
    });
    cluster.faults.failNext(1, 503, 1);
    const unavailable = await call(cluster, 'GET', '/api/v1/nodes');
    expect(unavailable.body).toMatchObject({ reason: 'ServiceUnavailable', code: 503 });
    expect(unavailable.headers['retry-after']).toBe('1');
  });

  it('delays responses until cleared', async () => {
    cluster = await startDevCluster();
    cluster.faults.delay(300);
    let started = Date.now();
    await call(cluster, 'GET', '/version');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    cluster.faults.clear();
    started = Date.now();
    await call(cluster, 'GET', '/version');
    expect(Date.now() - started).toBeLessThan(250);
  });
});

describe('request counts', () => {
  it('counts requests per verb, resource and subresource, and resets', async () => {
    cluster = await startDevCluster();
    const base = '/apis/coordination.k8s.io/v1/namespaces/default/leases';
    await call(cluster, 'POST', base, { metadata: { name: 'l1' }, spec: {} });
    await call(cluster, 'GET', `${base}/l1`);
    await call(cluster, 'GET', base);
    await call(cluster, 'GET', base);
    await call(cluster, 'PUT', `${base}/l1`, { metadata: { name: 'l1' }, spec: { holderIdentity: 'x' } });
    await call(cluster, 'GET', '/api/v1/nodes/missing');
    await call(cluster, 'GET', '/api/v1/namespaces/default/events?watch=1&timeoutSeconds=1');
    const counts = cluster.requestCounts();
    expect(counts).toEqual(
      expect.arrayContaining([
        { verb: 'create', resource: 'leases', count: 1 },
        { verb: 'get', resource: 'leases', count: 1 },
        { verb: 'list', resource: 'leases', count: 2 },
        { verb: 'update', resource: 'leases', count: 1 },
        { verb: 'get', resource: 'nodes', count: 1 },
        { verb: 'watch', resource: 'events', count: 1 },
      ]),
    );
    cluster.resetRequestCounts();
    expect(cluster.requestCounts()).toEqual([]);
  });

  it('counts status subresource writes separately', async () => {
    cluster = await startDevCluster({ nodes: 1 });
    await call(cluster, 'PUT', '/api/v1/nodes/node-1/status', {
      metadata: { name: 'node-1' },
      status: { phase: 'Running' },
    });
    expect(cluster.requestCounts()).toContainEqual({
      verb: 'update',
      resource: 'nodes',
      subresource: 'status',
      count: 1,
    });
  });
});

describe('restart', () => {
  it('keeps the data and the port, and ends open watches', async () => {
    cluster = await startDevCluster();
    await call(cluster, 'POST', '/api/v1/namespaces', { metadata: { name: 'survivor' } });
    const url = new URL(`${cluster.url}/api/v1/namespaces?watch=1`);
    const kubeconfig = parse(readFileSync(cluster.kubeconfigPath, 'utf8'));
    const ca = Buffer.from(kubeconfig.clusters[0].cluster['certificate-authority-data'], 'base64');
    const ended = new Promise<string>((resolve) => {
      const req = request(
        {
          hostname: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          ca,
          headers: { Authorization: `Bearer ${cluster!.token}` },
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve('end'));
          res.on('error', () => resolve('error'));
        },
      );
      req.on('error', () => resolve('error'));
      req.end();
    });
    await new Promise((r) => setTimeout(r, 100));
    const before = cluster.url;
    await cluster.restart();
    expect(['end', 'error']).toContain(await ended);
    expect(cluster.url).toBe(before);
    const got = await call(cluster, 'GET', '/api/v1/namespaces/survivor');
    expect(got.status).toBe(200);
  });
});
