// The cluster a conformance test runs against: a fresh dev cluster, or — with E2E_REAL_CLUSTER=1 and
// KUBECONFIG — a real one. Either way the test gets its own namespace, raw HTTP access (to check exact
// Status bodies), a client-node KubeConfig, and a kubectl runner; cleanup removes what it created.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { type DevCluster, type DevClusterOptions, startDevCluster } from '../../dev/cluster/index.ts';
import { type KubeVersion, missing, parseVersion } from './version.ts';

export const REAL = process.env.E2E_REAL_CLUSTER === '1' && !!process.env.KUBECONFIG;
export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
export const HAS_KUBECTL = existsSync(KUBECTL);
export const GROUP_PATH = '/apis/pluginrelease.io/v1alpha1';

const CRD_DIR = join(import.meta.dirname, '../../crds');

/** A JSON body the tests read field by field (Status, objects, lists); checked by expectations. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field
export type Body = any;

export interface Response<T = Body> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: T;
}

export interface CallOptions {
  body?: unknown;
  /** Sent as is when a string (patches), JSON-encoded otherwise. */
  contentType?: string;
  accept?: string;
  token?: string | null;
}

export interface Target {
  real: boolean;
  /** The dev cluster, when not running against a real one. */
  dev?: DevCluster;
  kc: KubeConfig;
  kubeconfigPath: string;
  /** A namespace created for this test file. */
  namespace: string;
  /** The server's version, read from /version: what the expectations are chosen by. */
  version: KubeVersion;
  /** Skips the running test, naming the release, when the server is older than `release`. */
  needs(ctx: { skip(condition: boolean, note?: string): void }, feature: string, release: string): void;
  call<T = Body>(method: string, path: string, options?: CallOptions): Promise<Response<T>>;
  /** Lines of one streamed response (a watch) until it ends or `until` returns true. */
  stream(path: string, until?: (events: WatchEvent[]) => boolean, timeoutMs?: number): Promise<WatchEvent[]>;
  kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** A collection path in the test namespace, e.g. `${GROUP_PATH}/namespaces/<ns>/pluginreleases`. */
  path(resource: string, name?: string, group?: string): string;
  close(): Promise<void>;
}

export interface WatchEvent {
  type: string;
  object: Body;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

async function httpsOptions(kc: KubeConfig): Promise<RequestOptions> {
  const options: RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  return options;
}

/** Opens the target cluster and a fresh namespace; call close() in afterAll. */
export async function openTarget(devOptions: DevClusterOptions = {}): Promise<Target> {
  let dev: DevCluster | undefined;
  const kc = new KubeConfig();
  let kubeconfigPath: string;
  if (REAL) {
    kubeconfigPath = process.env.KUBECONFIG!;
    kc.loadFromFile(kubeconfigPath);
  } else {
    dev = await startDevCluster({ watchHistory: 200, ...devOptions });
    kubeconfigPath = dev.kubeconfigPath;
    kc.loadFromFile(kubeconfigPath);
  }
  const server = kc.getCurrentCluster()!.server;
  const baseOptions = await httpsOptions(kc);
  const namespace = uniqueName('conformance');

  const call = <T>(method: string, path: string, options: CallOptions = {}) =>
    new Promise<Response<T>>((resolve, reject) => {
      const url = new URL(server + path);
      const headers: Record<string, string> = { ...(baseOptions.headers as Record<string, string>) };
      if (options.token === null) delete headers.Authorization;
      else if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
      headers.Accept = options.accept ?? 'application/json';
      let payload: string | undefined;
      if (options.body !== undefined) {
        payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
        headers['Content-Type'] = options.contentType ?? 'application/json';
        headers['Content-Length'] = String(Buffer.byteLength(payload));
      }
      const req = httpsRequest(
        {
          ...baseOptions,
          method,
          hostname: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = {};
            try {
              body = text ? JSON.parse(text) : {};
            } catch {
              body = {};
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: body as T });
          });
        },
      );
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });

  const stream = (path: string, until?: (events: WatchEvent[]) => boolean, timeoutMs = 10_000) =>
    new Promise<WatchEvent[]>((resolve, reject) => {
      const url = new URL(server + path);
      const events: WatchEvent[] = [];
      let buffer = '';
      const req = httpsRequest(
        {
          ...baseOptions,
          method: 'GET',
          hostname: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          headers: { ...(baseOptions.headers as Record<string, string>), Accept: 'application/json' },
        },
        (res) => {
          if (res.statusCode !== 200) {
            reject(new Error(`watch answered ${res.statusCode}`));
            res.resume();
            return;
          }
          res.on('data', (chunk: Buffer) => {
            buffer += chunk.toString('utf8');
            let newline = buffer.indexOf('\n');
            while (newline >= 0) {
              const line = buffer.slice(0, newline);
              buffer = buffer.slice(newline + 1);
              if (line.trim()) events.push(JSON.parse(line));
              newline = buffer.indexOf('\n');
            }
            if (until?.(events)) {
              clearTimeout(timer);
              req.destroy();
              resolve(events);
            }
          });
          res.on('end', () => {
            clearTimeout(timer);
            resolve(events);
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        resolve(events);
      }, timeoutMs);
      req.on('error', (error) => {
        if (!req.destroyed) reject(error);
      });
      req.end();
    });

  const kubectl = (args: string[], input?: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        KUBECTL,
        ['--kubeconfig', kubeconfigPath, ...args],
        { timeout: 30_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
      if (input !== undefined) child.stdin!.end(input);
    });

  const versionResponse = await call<Body>('GET', '/version');
  if (versionResponse.status !== 200) throw new Error(`GET /version answered ${versionResponse.status}`);
  const version = parseVersion(versionResponse.body);

  const target: Target = {
    real: REAL,
    dev,
    kc,
    kubeconfigPath,
    namespace,
    version,
    needs(ctx, feature, release) {
      const message = missing(version, feature, release);
      ctx.skip(message !== undefined, message);
    },
    call,
    stream,
    kubectl,
    path(resource, name, group = GROUP_PATH) {
      const base = `${group}/namespaces/${namespace}/${resource}`;
      return name ? `${base}/${name}` : base;
    },
    async close() {
      if (dev) {
        await dev.stop();
        return;
      }
      await call('DELETE', `/api/v1/namespaces/${namespace}`);
    },
  };

  if (REAL) await installCrdsIfAbsent(target);
  const created = await call('POST', '/api/v1/namespaces', {
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
  });
  if (created.status !== 201) throw new Error(`could not create namespace ${namespace}: ${created.text}`);
  return target;
}

/** On a real cluster, creates the project's CRDs when missing and waits until they are Established. */
async function installCrdsIfAbsent(target: Target) {
  for (const file of ['pluginrelease.io_pluginreleases.yaml', 'pluginrelease.io_pluginactivations.yaml']) {
    const crd = parseAllDocuments(readFileSync(join(CRD_DIR, file), 'utf8'))[0]!.toJS();
    const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`;
    if ((await target.call('GET', path)).status === 404) {
      await target.call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: crd });
    }
    for (let i = 0; i < 100; i++) {
      const got = await target.call('GET', path);
      const established = got.body.status?.conditions?.some(
        (c: Body) => c.type === 'Established' && c.status === 'True',
      );
      if (established) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The meta/v1 Status a failed request answers, as the tests expect it exactly. */
export function aFailure(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

/** A valid PluginRelease body (the smallest useful spec), with overrides merged into spec. */
export function aRelease(
  name: string,
  spec: Record<string, unknown> = {},
  metadata: Record<string, unknown> = {},
) {
  return {
    apiVersion: 'pluginrelease.io/v1alpha1',
    kind: 'PluginRelease',
    metadata: { name, ...metadata },
    spec: {
      plugin: 'echo',
      version: '1.0.0',
      artifact: {
        path: '/var/lib/plugin-release/staging/echo/1.0.0/echo-plugin',
        digest: `sha256:${'a'.repeat(64)}`,
      },
      ...spec,
    },
  };
}

/** A valid Lease body (a built-in type every cluster serves). */
export function aLease(name: string, holder = 'me', labels?: Record<string, string>) {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, ...(labels ? { labels } : {}) },
    spec: { holderIdentity: holder, leaseDurationSeconds: 15 },
  };
}

/** Polls until `check` returns a value (not undefined) or the timeout passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
