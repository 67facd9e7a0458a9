// Prometheus metrics of plugin-release: one Registry per process, every metric prefixed `pluginrelease_`.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export { Registry };

export interface Metrics {
  readonly registry: Registry;
  /** Seconds per reconcile, by controller and outcome (done | requeue | error | terminal). */
  readonly reconcileDuration: Histogram<'controller' | 'result'>;
  /** Keys ready in a work queue, by queue name; queues registered with trackQueue are read at scrape time. */
  readonly workqueueDepth: Gauge<'name'>;
  /** Targeted activations by phase (Pending, Staged, Probing, Active, RolledBack, Failed, Probed). */
  readonly activationsByPhase: Gauge<'phase'>;
  /** Rollbacks, by plugin and scope (node: one node restored; fleet: RollbackFleet). */
  readonly rollbacksTotal: Counter<'plugin' | 'scope'>;
  /** Seconds per probe run, by plugin, probe type and result (success | failure). */
  readonly probeDuration: Histogram<'plugin' | 'probe' | 'result'>;
  /** Seconds per swap of the active revision, by plugin and result (success | failure). */
  readonly swapDuration: Histogram<'plugin' | 'result'>;
  /** Reports `queue.depth` as workqueue_depth{name=queue.name} at every scrape (never stale). */
  trackQueue(queue: { readonly name: string; readonly depth: number }): void;
}

export interface MetricsOptions {
  /** Also export Node process metrics (CPU, memory, event loop lag) with the prefix (default true). */
  processMetrics?: boolean;
}

export const METRIC_PREFIX = 'pluginrelease_';

/** Creates a fresh Registry with every plugin-release metric registered on it. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const queues = new Set<{ readonly name: string; readonly depth: number }>();
  return {
    registry,
    reconcileDuration: new Histogram({
      name: `${METRIC_PREFIX}reconcile_duration_seconds`,
      help: 'Time spent in one reconcile, by controller and result.',
      labelNames: ['controller', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    workqueueDepth: new Gauge({
      name: `${METRIC_PREFIX}workqueue_depth`,
      help: 'Keys waiting in a work queue, ready to be processed.',
      labelNames: ['name'],
      registers,
      collect() {
        for (const queue of queues) this.set({ name: queue.name }, queue.depth);
      },
    }),
    activationsByPhase: new Gauge({
      name: `${METRIC_PREFIX}activations_by_phase`,
      help: 'PluginActivations by phase.',
      labelNames: ['phase'],
      registers,
    }),
    rollbacksTotal: new Counter({
      name: `${METRIC_PREFIX}rollbacks_total`,
      help: 'Rollbacks performed, by plugin and scope (node or fleet).',
      labelNames: ['plugin', 'scope'],
      registers,
    }),
    probeDuration: new Histogram({
      name: `${METRIC_PREFIX}probe_duration_seconds`,
      help: 'Time spent probing a candidate, by plugin, probe type and result.',
      labelNames: ['plugin', 'probe', 'result'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    swapDuration: new Histogram({
      name: `${METRIC_PREFIX}swap_duration_seconds`,
      help: 'Time spent swapping the active revision, by plugin and result.',
      labelNames: ['plugin', 'result'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    trackQueue: (queue) => {
      queues.add(queue);
    },
  };
}
