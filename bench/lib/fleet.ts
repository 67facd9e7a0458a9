// Shared by the fleet benchmarks (rollout, memory): the release they apply, and waiting for the dev
// cluster to go quiet.

import type { DevCluster } from '../../dev/cluster/index.ts';
import { API_VERSION, Kinds, type PluginRelease, type PluginReleaseSpecInput } from '../../src/api/index.ts';

export const NAMESPACE = 'default';

/**
 * A release of an echo-like plugin. Its artifact is never read (the agents are simulated), so the
 * path and digest only have to be valid.
 */
export function benchRelease(name: string, plugin: string, maxUnavailable: string): PluginRelease {
  const spec: PluginReleaseSpecInput = {
    plugin,
    version: '1.0.0',
    artifact: {
      path: `/var/lib/plugin-release/staging/${plugin}/1.0.0`,
      digest: `sha256:${'0'.repeat(64)}`,
      entrypoint: 'plugin',
    },
    health: { probes: [{ grpc: {}, periodSeconds: 1 }] },
    rollout: { maxUnavailable },
  };
  return {
    apiVersion: API_VERSION,
    kind: Kinds.PluginRelease.kind,
    metadata: { name, namespace: NAMESPACE },
    spec,
  } as unknown as PluginRelease;
}

/** Total requests the dev cluster has counted since its last reset. */
export function totalRequests(cluster: DevCluster): number {
  return cluster.requestCounts().reduce((sum, c) => sum + c.count, 0);
}

/**
 * Resolves once no request reached `cluster` for `quietMs`, or after `timeoutMs` (then `false`): the
 * writes that follow an event (trailing status patches, Events) are in.
 */
export async function quiet(cluster: DevCluster, quietMs = 300, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let last = totalRequests(cluster);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = totalRequests(cluster);
    if (now === last) return true;
    last = now;
  }
  return false;
}

/** Runs `work` on `items` with at most `concurrency` at once; rejects on the first failure. */
export async function inBatches<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}
