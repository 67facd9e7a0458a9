// Simulated node agents for fleet benchmarks: one process-wide informer over every PluginActivation
// feeds the real ActivationBinding of each node, running on an instant fake engine instead of real
// plugin processes, so status writes are exactly the ones a real agent makes.
import type { Logger } from 'pino';
import { ActivationBinding } from '../../src/agent/binding.ts';
import type { NodeEngine } from '../../src/agent/node-engine.ts';
import type { SupervisedHealth } from '../../src/agent/plugin-host.ts';
import {
  type Condition,
  Labels,
  NodeReason,
  type PluginActivation,
  type PluginActivationSpec,
  type PluginActivationStatus,
} from '../../src/api/index.ts';
import { createKubeClients, type KubeConfig, replaceStatusPatch } from '../../src/kube/index.ts';
import { setCondition } from '../../src/runtime/conditions.ts';
import { WorkQueue } from '../../src/runtime/queue.ts';
import { done } from '../../src/runtime/reconcile.ts';
import { ActivationWriter } from './api-writer.ts';

/** The part of NodeEngine the binding uses; the bench's engine fulfils it without processes or files. */
type EngineContract = Pick<NodeEngine, 'activate' | 'activeRevision' | 'health' | 'uninstall'>;

/**
 * One node's engine with an instant runtime: every activation stages, probes and swaps at once and
 * succeeds, offering the phases a real engine offers (Staged, Probing, Active) through onStatus.
 */
export class InstantEngine implements EngineContract {
  readonly #active = new Map<string, string>();
  readonly #previous = new Map<string, string>();
  readonly #attempts = new Map<string, number>();
  /** Activations run, across plugins: more than one per revision would mean the binding repeated one. */
  activations = 0;

  async activeRevision(plugin: string): Promise<string | undefined> {
    return this.#active.get(plugin);
  }

  /** A deleted activation: the plugin is gone from this node at once. */
  async uninstall(plugin: string): Promise<void> {
    this.#active.delete(plugin);
    this.#previous.delete(plugin);
  }

  /** Instant plugins never crash: supervision has nothing to report. */
  async health(plugin: string): Promise<SupervisedHealth> {
    return { revision: this.#active.get(plugin), restarts: 0, down: false };
  }

  async activate(
    spec: PluginActivationSpec,
    options: { onStatus?: (status: PluginActivationStatus) => void } = {},
  ): Promise<PluginActivationStatus> {
    this.activations++;
    const revision = spec.rollbackTo?.revision ?? spec.revision;
    const attemptKey = `${spec.plugin}/${revision}`;
    const attempts = (this.#attempts.get(attemptKey) ?? 0) + 1;
    this.#attempts.set(attemptKey, attempts);
    let conditions: Condition[] = [];
    const status = (phase: 'Staged' | 'Probing' | 'Active', reason: string): PluginActivationStatus => {
      const now = new Date();
      const message =
        phase === 'Active'
          ? `Revision ${revision} is active and serving.`
          : `Revision ${revision}: ${reason}.`;
      conditions = setCondition(
        conditions,
        { type: 'Ready', status: phase === 'Active' ? 'True' : 'False', reason, message },
        0,
        now,
      );
      const active = this.#active.get(spec.plugin);
      const previous = this.#previous.get(spec.plugin);
      return {
        phase,
        reason,
        message,
        revision,
        ...(active ? { activeRevision: active } : {}),
        ...(previous ? { previousRevision: previous } : {}),
        // What a real engine reports after launch and probe, so objects have a realistic size.
        ...(phase === 'Staged'
          ? {}
          : {
              handshake: {
                coreProtocol: 1,
                appProtocol: 1,
                network: 'unix' as const,
                address: `/var/lib/plugin-release/plugins/${spec.plugin}/run/${revision}/plugin.sock`,
              },
              lastProbe: { time: now.toISOString(), probe: 'grpc', success: true },
            }),
        attempts,
        ...(spec.retryAt ? { retryAt: spec.retryAt } : {}),
        lastTransitionTime: now.toISOString(),
        conditions,
      };
    };
    options.onStatus?.(status('Staged', NodeReason.Staged));
    await Promise.resolve();
    options.onStatus?.(status('Probing', NodeReason.Probing));
    await Promise.resolve();
    const old = this.#active.get(spec.plugin);
    if (old && old !== revision) this.#previous.set(spec.plugin, old);
    this.#active.set(spec.plugin, revision);
    // As PluginHost does: every phase change is offered, the terminal one too, then returned.
    const active = status('Active', NodeReason.Activated);
    options.onStatus?.(active);
    return active;
  }
}

export interface SimulatedAgentsOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Activations handled at once across the whole fleet (default 64). */
  workers?: number;
}

export interface SimulatedAgentsStats {
  /** Nodes that have seen at least one activation. */
  nodes: number;
  /** Engine activations run; equal to the activations converged unless one ran twice. */
  activations: number;
  /** Status writes the bindings made (each one merge patch on the status subresource). */
  statusWrites: number;
  /** Reconciles that failed and were retried (API errors). */
  errors: number;
  /** performance.now() when the informer delivered the last new activation (the controller's last create). */
  lastAddedAt: number | undefined;
}

export interface SimulatedAgents {
  stats(): SimulatedAgentsStats;
  stop(): Promise<void>;
}

/**
 * Starts one informer over every PluginActivation (a real fleet has one per node, filtered by the
 * `pluginrelease.io/node` label) and one work queue; each key goes to the ActivationBinding of the
 * node its spec names, created on first sight, with that node's InstantEngine. Resolves once the
 * informer has synced.
 */
export async function startSimulatedAgents(options: SimulatedAgentsOptions): Promise<SimulatedAgents> {
  const { logger } = options;
  const clients = createKubeClients(options.kubeConfig, { fieldManager: 'plugin-release-simulated-agents' });
  const activations = clients.informer(clients.activations, { labelSelector: Labels.node, logger });
  const workers = options.workers ?? 64;
  // Status patches go over keep-alive connections (see ActivationWriter): a real fleet's agents each
  // pay their own TLS handshakes on their own machines, not in this process.
  const patcher = await ActivationWriter.create(
    options.kubeConfig,
    workers,
    'plugin-release-simulated-agents',
  );
  const queue = new WorkQueue({ name: 'simulated-agents' });
  const key = (a: PluginActivation) => `${a.metadata.namespace}/${a.metadata.name}`;
  let lastAddedAt: number | undefined;
  activations.on({
    add: (a) => {
      lastAddedAt = performance.now();
      queue.add(key(a));
    },
    update: (_, a) => queue.add(key(a)),
  });

  let statusWrites = 0;
  let errors = 0;
  const engines = new Map<string, InstantEngine>();
  const bindings = new Map<string, ActivationBinding>();
  const bindingOf = (nodeName: string): ActivationBinding => {
    let binding = bindings.get(nodeName);
    if (!binding) {
      const engine = new InstantEngine();
      engines.set(nodeName, engine);
      binding = new ActivationBinding({
        nodeName,
        engine: engine as unknown as NodeEngine,
        caches: { activation: (k) => activations.get(k), activations: () => activations.list() },
        writer: {
          // The same write as src/agent/daemon.ts: one merge patch of the status subresource.
          writeStatus: async (a, status) => {
            statusWrites++;
            await patcher.patchStatus(
              a.metadata.namespace ?? '',
              a.metadata.name ?? '',
              replaceStatusPatch(a.status, status),
            );
          },
        },
      });
      bindings.set(nodeName, binding);
    }
    return binding;
  };

  activations.start();
  await activations.waitForSync();
  const running = queue.run(
    workers,
    async (k, signal) => {
      const activation = activations.get(k);
      if (!activation) return done;
      return bindingOf(activation.spec.nodeName).reconcile(k, logger, signal);
    },
    {
      onError: (k, err, retryInMs) => {
        errors++;
        logger.warn({ key: k, err, retryInMs }, 'simulated agent: activation sync failed');
      },
    },
  );
  return {
    stats: () => ({
      nodes: engines.size,
      activations: [...engines.values()].reduce((sum, e) => sum + e.activations, 0),
      statusWrites,
      errors,
      lastAddedAt,
    }),
    async stop() {
      await queue.shutdown({ drainTimeoutMs: 5_000 });
      await running;
      await activations.stop();
      patcher.close();
    },
  };
}
