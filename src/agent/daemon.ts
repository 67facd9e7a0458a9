// The agent process: recovers the node engine, then watches this node's PluginActivations and runs
// them through the binding, with metrics and health endpoints.
import type { Logger } from 'pino';
import { EventReason, Labels, type PluginActivation } from '../api/index.ts';
import {
  createKubeClients,
  type Informer,
  type KubeClients,
  type KubeConfig,
  type KubeEventRecorder,
  objectKey,
  replaceStatusPatch,
} from '../kube/index.ts';
import { Runner } from '../kube/runner.ts';
import { createMetrics, type Metrics } from '../observability/index.ts';
import { type Clock, systemClock } from '../runtime/clock.ts';
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
  // The engine reports supervision news and hand-over requests before the rest is wired: late-bound.
  let onHealth: HealthListener = () => {};
  const setUp = Promise.withResolvers<void>();
  // A hand-over asked for while this agent is still starting waits until it can stop cleanly.
  let handOver: () => Promise<void> = async () => {
    await setUp.promise;
    await handOver();
  };
  const handedOver = Promise.withResolvers<void>();
  const { engine, recovered } = await recoverEngine(options, clock, {
    onHealth: (plugin, health, event) => onHealth(plugin, health, event),
    onHandover: () => handOver(),
  });

  const clients = createKubeClients(options.kubeConfig, { fieldManager: `plugin-release-agent-${nodeName}` });
  const activations = clients.informer(clients.activations, {
    labelSelector: `${Labels.node}=${nodeName}`,
    logger,
    clock,
  });
  const metrics = createMetrics();
  const events = clients.eventRecorder({ component: 'plugin-release-agent', instance: nodeName, logger });
  const binding = activationBinding({ nodeName, engine, recovered, activations, clients, events, metrics });
  const runner = new Runner({
    name: 'pluginactivation',
    caches: [activations],
    reconcile: (key, log, signal) => binding.reconcile(key, log, signal),
    keys: () => activations.keys(),
    logger,
    metrics,
    clock,
    workers: options.workers,
    cacheSyncTimeoutMs: options.cacheSyncTimeoutMs,
    drainTimeoutMs: 5_000,
    metricsAddr: options.metricsAddr,
  });
  const enqueue = (key: string) => runner.enqueue(key);
  followActivations(activations, binding, enqueue);
  onHealth = supervisionNews(nodeName, activations, events, enqueue);

  try {
    await runner.start();
  } catch (error) {
    await engine.close(false);
    throw error;
  }
  logger.info({ activations: activations.keys().length }, 'agent synced');
  let stopping: Promise<void> | undefined;
  const stop = (stopPlugins = false) => {
    stopping ??= (async () => {
      await runner.stop();
      await events.flush();
      await engine.close(stopPlugins);
    })();
    return stopping;
  };
  handOver = async () => {
    logger.info('a newer agent asked for the root: handing over (plugins and fronts keep serving)');
    await stop(false);
    handedOver.resolve();
  };
  setUp.resolve();
  return {
    ready: () => runner.ready(),
    engine,
    metricsUrl: runner.metricsUrl,
    stop,
    handedOver: handedOver.promise,
  };
}

type HealthListener = (plugin: string, health: SupervisedHealth, event: SupervisionEvent) => void;

/** Opens the node engine on the agent's root and runs its start-up recovery, logging what it did. */
async function recoverEngine(
  options: AgentOptions,
  clock: Clock,
  hooks: { onHealth: HealthListener; onHandover: () => Promise<void> },
): Promise<{ engine: NodeEngine; recovered: Record<string, string[]> }> {
  const { logger } = options;
  const fronts: Fronts =
    options.fronts === 'local' ? new LocalFronts(logger) : new KeeperFronts(options.root, logger);
  const engine = new NodeEngine({
    root: options.root,
    stagingRoot: options.stagingRoot,
    logger,
    fronts,
    now: () => clock.now(),
    onHealth: hooks.onHealth,
    lock: {
      version: options.version ?? 'unknown',
      ...(options.takeover ? { takeover: true } : {}),
      onHandover: hooks.onHandover,
    },
  });
  const recovered = await engine.recover();
  if (engine.predecessor) {
    logger.info({ predecessor: engine.predecessor }, 'took the root over from the previous agent');
  }
  for (const [plugin, actions] of Object.entries(recovered)) {
    if (actions.length > 0) logger.info({ plugin, actions }, 'recovered');
  }
  return { engine, recovered };
}

/** The binding over this node's activation cache, writing their status and its Events and metrics. */
function activationBinding(parts: {
  nodeName: string;
  engine: NodeEngine;
  recovered: Record<string, string[]>;
  activations: Informer<PluginActivation>;
  clients: KubeClients;
  events: KubeEventRecorder;
  metrics: Metrics;
}): ActivationBinding {
  const { nodeName, activations, clients, events, metrics } = parts;
  return new ActivationBinding({
    nodeName,
    engine: parts.engine,
    recovered: parts.recovered,
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
}

/** Each change of an activation queues it; one that makes its running attempt pointless cancels it. */
function followActivations(
  activations: Informer<PluginActivation>,
  binding: ActivationBinding,
  enqueue: (key: string) => void,
): void {
  activations.on({
    add: (a) => enqueue(objectKey(a)),
    update: (old, a) => {
      enqueue(objectKey(a));
      if (cancelsAttempt(old, a))
        binding.cancel(
          objectKey(a),
          a.metadata.deletionTimestamp ? 'the activation was deleted' : 'sent back',
        );
    },
  });
}

/** Supervision news: re-reconcile the plugin's activations (their status shows it) and record an Event. */
function supervisionNews(
  nodeName: string,
  activations: Informer<PluginActivation>,
  events: KubeEventRecorder,
  enqueue: (key: string) => void,
): HealthListener {
  return (plugin, health, event) => {
    for (const k of activations.keys()) {
      const a = activations.get(k);
      if (a?.spec.plugin !== plugin || a.spec.nodeName !== nodeName) continue;
      enqueue(k);
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
}
