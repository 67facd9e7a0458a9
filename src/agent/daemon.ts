// The agent process: recovers the node engine, then watches this node's PluginActivations and runs
// them through the binding, with metrics and health endpoints.
import type { Logger } from 'pino';
import { Labels, type PluginActivation } from '../api/index.ts';
import { createKubeClients, type KubeConfig, replaceStatusPatch } from '../kube/index.ts';
import {
  createMetrics,
  type HealthServer,
  reconcileLogger,
  startHealthServer,
} from '../observability/index.ts';
import { type Clock, systemClock } from '../runtime/clock.ts';
import { WorkQueue } from '../runtime/queue.ts';
import { ActivationBinding } from './binding.ts';
import { NodeEngine } from './node-engine.ts';

export interface AgentOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  root: string;
  stagingRoot: string;
  logger: Logger;
  /** host:port for /metrics, /healthz, /readyz; none when omitted. */
  metricsAddr?: string;
  /** Activations of different plugins running at once. */
  workers?: number;
  clock?: Clock;
}

export interface RunningAgent {
  ready(): boolean;
  readonly engine: NodeEngine;
  readonly metricsUrl: string | undefined;
  /** Stops watching and closes the fronts; plugin processes keep running unless `stopPlugins`. */
  stop(stopPlugins?: boolean): Promise<void>;
}

/** Starts the agent; resolves once recovery has run and the cache has synced. */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const { logger, nodeName } = options;
  const clock = options.clock ?? systemClock;
  const engine = new NodeEngine({
    root: options.root,
    stagingRoot: options.stagingRoot,
    logger,
    now: () => clock.now(),
  });
  const recovered = await engine.recover();
  for (const [plugin, actions] of Object.entries(recovered)) {
    if (actions.length > 0) logger.info({ plugin, actions }, 'recovered');
  }

  const clients = createKubeClients(options.kubeConfig, { fieldManager: `plugin-release-agent-${nodeName}` });
  const activations = clients.informer(clients.activations, {
    labelSelector: `${Labels.node}=${nodeName}`,
    logger,
  });
  const metrics = createMetrics();
  const queue = new WorkQueue({ name: 'pluginactivation' });
  metrics.trackQueue(queue);
  const key = (a: PluginActivation) => `${a.metadata.namespace}/${a.metadata.name}`;
  activations.on({ add: (a) => queue.add(key(a)), update: (_, a) => queue.add(key(a)) });

  const binding = new ActivationBinding({
    nodeName,
    engine,
    recovered,
    caches: { activation: (k) => activations.get(k) },
    writer: {
      writeStatus: async (a, status) => {
        await clients.activations.patchStatus(
          { namespace: a.metadata.namespace ?? '', name: a.metadata.name ?? '' },
          replaceStatusPatch(a.status, status),
        );
      },
    },
    onFinished: (activation, status) => {
      if (status.phase === 'RolledBack' || status.phase === 'Failed') {
        metrics.rollbacksTotal.inc({ plugin: activation.spec.plugin, scope: 'node' });
      }
    },
  });

  activations.start();
  await activations.waitForSync();
  logger.info({ node: nodeName, activations: activations.keys().length }, 'agent synced');
  const running = queue.run(
    options.workers ?? 4,
    (k, signal) => binding.reconcile(k, reconcileLogger(logger, k), signal),
    {
      onError: (k, err, retryInMs) => logger.warn({ key: k, err, retryInMs }, 'activation sync failed'),
      onProcessed: (_k, outcome, ms) =>
        metrics.reconcileDuration.observe({ controller: 'pluginactivation', result: outcome }, ms / 1000),
    },
  );

  const ready = () => activations.synced;
  let health: HealthServer | undefined;
  if (options.metricsAddr) {
    health = await startHealthServer({
      addr: options.metricsAddr,
      registry: metrics.registry,
      ready,
      logger,
    });
  }
  return {
    ready,
    engine,
    metricsUrl: health?.url,
    async stop(stopPlugins = false) {
      await queue.shutdown({ drainTimeoutMs: 5_000 });
      await running;
      await activations.stop();
      await engine.close(stopPlugins);
      await health?.close();
    },
  };
}
