// Helpers for the kube integration tests: a dev cluster with clients, activation manifests, polling.
import pino from 'pino';
import { type DevCluster, startDevCluster } from '../../../dev/cluster/index.ts';
import { API_VERSION, Labels, type PluginActivation } from '../../../src/api/index.ts';
import {
  createKubeClients,
  type KubeClients,
  type KubeConfig,
  loadKubeConfig,
} from '../../../src/kube/index.ts';

export const NAMESPACE = 'default';
export const DIGEST = `sha256:${'a'.repeat(64)}`;

export interface World {
  cluster: DevCluster;
  kubeConfig: KubeConfig;
  clients: KubeClients;
}

/** A dev cluster without simulated nodes, and clients that retry quickly. */
export async function aWorld(options: { watchHistory?: number } = {}): Promise<World> {
  const cluster = await startDevCluster({
    nodes: 0,
    logger: pino({ level: 'silent' }),
    ...(options.watchHistory ? { watchHistory: options.watchHistory } : {}),
  });
  const kubeConfig = loadKubeConfig(cluster.kubeconfigPath);
  const clients = createKubeClients(kubeConfig, {
    fieldManager: 'kube-integration-test',
    retry: { retries: 4, minTimeoutMs: 20, maxTimeoutMs: 200 },
  });
  return { cluster, kubeConfig, clients };
}

/** A valid PluginActivation for `node`, as the controller would create it. */
export function anActivation(name: string, node = 'node-1', revision = 'rev-1'): PluginActivation {
  return {
    apiVersion: API_VERSION,
    kind: 'PluginActivation',
    metadata: {
      name,
      namespace: NAMESPACE,
      labels: { [Labels.node]: node, [Labels.release]: 'echo', [Labels.plugin]: 'echo' },
    },
    spec: {
      release: { name: 'echo' },
      nodeName: node,
      plugin: 'echo',
      version: '1.0.0',
      revision,
      artifact: { path: '/staging/echo/1.0.0/echo', digest: DIGEST },
    },
  } as unknown as PluginActivation;
}

/** Polls `check` until it returns a truthy value, or fails with `what` after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Server-side request count for one verb/resource since the last reset. */
export function requests(cluster: DevCluster, verb: string, resource: string, subresource?: string): number {
  return cluster
    .requestCounts()
    .filter((c) => c.verb === verb && c.resource === resource && (c.subresource ?? undefined) === subresource)
    .reduce((sum, c) => sum + c.count, 0);
}
