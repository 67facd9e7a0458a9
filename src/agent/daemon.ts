// The agent process: recovers the node engine, then watches this node's PluginActivations and runs
// them through the binding, with metrics and health endpoints.
import type { Logger } from 'pino';
import { EventReason, Labels, type PluginActivation } from '../api/index.ts';
import {
  CACHE_SYNC_TIMEOUT_MS,
  createKubeClients,
  type KubeConfig,
  replaceStatusPatch,
  waitForCacheSync,
} from '../kube/index.ts';
import {
  createMetrics,
  type HealthServer,
  reconcileLogger,
  startHealthServer,
} from '../observability/index.ts';
import { type Clock, systemClock } from '../runtime/clock.ts';
import { WorkQueue } from '../runtime/queue.ts';
import { ActivationBinding, cancelsAttempt } from './binding.ts';
import { type Fronts, LocalFronts } from './front/fronts.ts';
import { KeeperFronts } from './front/keeper.ts';
import { NodeEngine } from './node-engine.ts';
import type { SupervisedHealth, SupervisionEvent } from './plugin-host.ts';

export interface AgentOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  root: string;
  stagingRoot: string;
  /** The caller binds `node` (as the CLI and the local fleet do), so no line here repeats it. */
  logger: Logger;
  /** host:port for /metrics, /healthz, /readyz; none when omitted. */
  metricsAddr?: string;
  /** Activations of different plugins running at once. */
  workers?: number;
  clock?: Clock;
  /** Who this agent is, for the root's lock (its version, or a build id). */
  version?: string;
  /** Ask a live agent on the same root to hand over (an upgrade) instead of refusing to start. */
  takeover?: boolean;
  /**
   * Where the fronts live: 'keeper' (default), a separate process that outlives this one, so clients
   * are served while the agent is dead, restarting or replaced; 'local', inside this process.
   */
  fronts?: 'keeper' | 'local';
  /** Give up starting when the cache has not synced by then (default 60 s); a refused list fails at once. */
  cacheSyncTimeoutMs?: number;
}

export interface RunningAgent {
  ready(): boolean;
  readonly engine: NodeEngine;
  readonly metricsUrl: string | undefined;
  /** Stops watching; plugin processes and the keeper's fronts keep serving unless `stopPlugins`. */
  stop(stopPlugins?: boolean): Promise<void>;
  /** Resolves when a newer agent took the root over (this one stopped working and should exit). */
  readonly handedOver: Promise<void>;
}

/** Starts the agent; resolves once recovery has run and the cache has synced. */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const { logger, nodeName } = options;
  const clock = options.clock ?? systemClock;
  const fronts: Fronts =
    options.fronts === 'local' ? new LocalFronts(logger) : new KeeperFronts(options.root, logger);
  let onHealth: (plugin: string, health: SupervisedHealth, event: SupervisionEvent) => void = () => {};
  let setUp: () => void = () => {};
  const isSetUp = new Promise<void>((resolve) => {
    setUp = resolve;
  });
  // A hand-over asked for while this agent is still starting waits until it can stop cleanly.
  let handOver: () => Promise<void> = async () => {
    await isSetUp;
    await handOver();
  };
  let resolveHandedOver: () => void = () => {};
  const handedOver = new Promise<void>((resolve) => {
    resolveHandedOver = resolve;
  });
  const engine = new NodeEngine({
    root: options.root,
    stagingRoot: options.stagingRoot,
    logger,
    fronts,
    now: () => clock.now(),
    onHealth: (plugin, health, event) => onHealth(plugin, health, event),
    lock: {
      version: options.version ?? 'unknown',
      ...(options.takeover ? { takeover: true } : {}),
      onHandover: () => handOver(),
    },
  });
  const recovered = await engine.recover();
  if (engine.predecessor) {
    logger.info({ predecessor: engine.predecessor }, 'took the root over from the previous agent');
  }
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
  activations.on({
    add: (a) => queue.add(key(a)),
    update: (old, a) => {
      queue.add(key(a));
      if (cancelsAttempt(old, a))
        binding.cancel(key(a), a.metadata.deletionTimestamp ? 'the activation was deleted' : 'sent back');
    },
  });
  const events = clients.eventRecorder({ component: 'plugin-release-agent', instance: nodeName, logger });
  // Supervision news: re-reconcile the plugin's activations (their status shows it) and record an Event.
  onHealth = (plugin, health, event) => {
    for (const k of activations.keys()) {
      const a = activations.get(k);
      if (a?.spec.plugin !== plugin || a.spec.nodeName !== nodeName) continue;
      queue.add(k);
      if (event === 'Crashed') {
        events.recordEvent(
          a,
          'Warning',
          EventReason.PluginCrashed,
          health.lastExit ?? 'The active plugin exited.',
        );
      } else if (event === 'Restarted') {
        events.recordEvent(
          a,
          'Normal',
          EventReason.PluginRestarted,
          `Restarted revision ${health.revision} after it exited on its own (${health.restarts} restart(s)).`,
        );
      }
    }
  };

  const binding = new ActivationBinding({
    nodeName,
    engine,
    recovered,
    caches: { activation: (k) => activations.get(k), activations: () => activations.list() },
    writer: {
      writeStatus: async (a, status) => {
        await clients.activations.patchStatus(
          { namespace: a.metadata.namespace ?? '', name: a.metadata.name ?? '' },
          replaceStatusPatch(a.status, status),
        );
      },
    },
    onUninstalled: (a) =>
      events.recordEvent(
        a,
        'Normal',
        EventReason.PluginUninstalled,
        `Plugin ${a.spec.plugin} was uninstalled from ${nodeName}: its process stopped and its front closed.`,
      ),
    onFinished: (activation, status) => {
      if (status.phase === 'RolledBack' || status.phase === 'Failed') {
        metrics.rollbacksTotal.inc({ plugin: activation.spec.plugin, scope: 'node' });
      }
    },
  });

  activations.start();
  try {
    await waitForCacheSync([activations], options.cacheSyncTimeoutMs ?? CACHE_SYNC_TIMEOUT_MS);
  } catch (error) {
    await activations.stop();
    await engine.close(false);
    throw error;
  }
  logger.info({ activations: activations.keys().length }, 'agent synced');
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
  let stopping: Promise<void> | undefined;
  const stop = (stopPlugins = false) => {
    stopping ??= (async () => {
      await queue.shutdown({ drainTimeoutMs: 5_000 });
      await running;
      await activations.stop();
      await events.flush();
      await engine.close(stopPlugins);
      await health?.close();
    })();
    return stopping;
  };
  handOver = async () => {
    logger.info('a newer agent asked for the root: handing over (plugins and fronts keep serving)');
    await stop(false);
    resolveHandedOver();
  };
  setUp();
  return { ready, engine, metricsUrl: health?.url, stop, handedOver };
}
