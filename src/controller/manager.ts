// The controller process: informers → work queue → ReleaseReconciler, behind optional leader election,
// with metrics and health endpoints. Workers start only after every cache has synced.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Finalizers, Labels, type PluginActivation } from '../api/index.ts';
import {
  CACHE_SYNC_TIMEOUT_MS,
  createKubeClients,
  ignoreNotFound,
  type KubeConfig,
  type KubeNode,
  leanActivation,
  leanNode,
  objectKey,
  removeFinalizer,
  replaceStatusPatch,
  Sharing,
  waitForCacheSync,
} from '../kube/index.ts';
import {
  createMetrics,
  type HealthServer,
  reconcileLogger,
  startHealthServer,
} from '../observability/index.ts';
import { type Clock, systemClock } from '../runtime/clock.ts';
import { LeaderElector } from '../runtime/leader.ts';
import { WorkQueue } from '../runtime/queue.ts';
import type { NodeInfo } from './planner.ts';
import { ReleaseReconciler } from './reconciler.ts';

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Watch one namespace; every namespace when omitted. */
  namespace?: string;
  /** Campaign for this Lease before reconciling; no election when omitted. */
  leaderElection?: { namespace: string; name: string; identity?: string; leaseDurationSeconds?: number };
  /** host:port for /metrics, /healthz, /readyz; none when omitted. */
  metricsAddr?: string;
  /** Reconciles running at once (distinct releases). */
  workers?: number;
  /** Give up starting when the caches have not synced by then (default 60 s); a refused list fails at once. */
  cacheSyncTimeoutMs?: number;
  clock?: Clock;
}

export interface RunningController {
  /** Caches synced and, with leader election, the leader known. */
  ready(): boolean;
  readonly metricsUrl: string | undefined;
  stop(): Promise<void>;
}

/** Starts the controller; resolves once its caches have synced (and its metrics server listens). */
export async function startController(options: ControllerOptions): Promise<RunningController> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const clients = createKubeClients(options.kubeConfig, { fieldManager: 'plugin-release-controller' });
  const scope = options.namespace ? { namespace: options.namespace } : {};
  const releases = clients.informer(clients.releases, { ...scope, logger });
  // Lean caches: only what the planner and status aggregation read, strings and specs shared.
  const sharing = new Sharing();
  const activations = clients.informer(clients.activations, {
    ...scope,
    labelSelector: Labels.release,
    logger,
    transform: leanActivation(sharing),
  });
  const nodes = clients.informer(clients.nodes, { logger, transform: leanNode(sharing) });
  const events = clients.eventRecorder({
    component: 'plugin-release-controller',
    instance: hostname(),
    logger,
  });
  const metrics = createMetrics();
  // One queue per term of leadership: a shut-down queue cannot be restarted.
  let queue: WorkQueue | undefined;
  const enqueue = (key: string) => queue?.add(key);
  metrics.trackQueue({
    name: 'pluginrelease',
    get depth() {
      return queue?.depth ?? 0;
    },
  });

  // Index: release key → its activations' keys, so a reconcile reads only its own.
  const byRelease = new Map<string, Set<string>>();
  const releaseKeyOf = (a: PluginActivation) =>
    `${a.metadata.namespace}/${a.metadata.labels?.[Labels.release] ?? ''}`;
  const index = (a: PluginActivation, add: boolean) => {
    const key = releaseKeyOf(a);
    const set = byRelease.get(key) ?? new Set<string>();
    byRelease.set(key, set);
    if (add) set.add(objectKey(a));
    else set.delete(objectKey(a));
  };
  const enqueuePlugin = (plugin: string) => {
    for (const r of releases.list((r) => r.spec?.plugin === plugin)) enqueue(objectKey(r));
  };
  releases.on({
    add: (r) => enqueuePlugin(r.spec?.plugin),
    update: (_, r) => enqueue(objectKey(r)),
    delete: (r) => enqueuePlugin(r.spec?.plugin),
  });
  const phaseOf = (a: PluginActivation) => ({ phase: a.status?.phase ?? 'Pending' });
  activations.on({
    add: (a) => {
      index(a, true);
      metrics.activationsByPhase.inc(phaseOf(a));
      enqueue(releaseKeyOf(a));
    },
    update: (old, a) => {
      metrics.activationsByPhase.dec(phaseOf(old));
      metrics.activationsByPhase.inc(phaseOf(a));
      enqueue(releaseKeyOf(a));
    },
    delete: (a) => {
      index(a, false);
      metrics.activationsByPhase.dec(phaseOf(a));
      enqueue(releaseKeyOf(a));
    },
  });
  // Every release, and every deleted one whose activations linger (a Node leaving may free them).
  const everyRelease = () => {
    for (const key of new Set([...releases.keys(), ...byRelease.keys()])) enqueue(key);
  };
  nodes.on({
    add: everyRelease,
    delete: everyRelease,
    update: (old, n) => {
      if (JSON.stringify(old.metadata.labels) !== JSON.stringify(n.metadata.labels)) everyRelease();
    },
  });

  const reconciler = new ReleaseReconciler({
    clock,
    logger,
    caches: {
      release: (key) => releases.get(key),
      releases: () => releases.list(),
      activationsOf: (namespace, release) =>
        [...(byRelease.get(`${namespace}/${release}`) ?? [])].flatMap((k) => activations.get(k) ?? []),
      nodes: () => nodes.list().map(nodeInfo),
    },
    writer: {
      createActivation: async (a) => {
        await clients.activations.create(a);
      },
      replaceActivation: async (a) => {
        const { status: _, ...object } = a;
        await clients.activations.replace(object as PluginActivation);
      },
      deleteActivation: async (a) => {
        await clients.activations.delete({
          namespace: a.metadata.namespace ?? '',
          name: a.metadata.name ?? '',
        });
      },
      releaseFinalizer: async (a) => {
        await ignoreNotFound(removeFinalizer(clients.activations, a, Finalizers.agent));
      },
      patchReleaseStatus: async (r, status) => {
        await clients.releases.patchStatus(
          { namespace: r.metadata.namespace ?? '', name: r.metadata.name ?? '' },
          replaceStatusPatch(r.status, status),
        );
      },
      recordEvent: async (r, e) => events.recordEvent(r, e.type, e.reason, e.message),
    },
  });

  const informers = [releases, activations, nodes];
  for (const informer of informers) informer.start();
  try {
    await waitForCacheSync(informers, options.cacheSyncTimeoutMs ?? CACHE_SYNC_TIMEOUT_MS);
  } catch (error) {
    for (const informer of informers) await informer.stop();
    throw error;
  }
  logger.info({ namespace: options.namespace ?? '*' }, 'caches synced');

  const runWorkers = async (signal: AbortSignal) => {
    const term = new WorkQueue({ name: 'pluginrelease' });
    queue = term;
    everyRelease();
    const running = term.run(
      options.workers ?? 4,
      (key) => reconciler.reconcile(key, reconcileLogger(logger, key)),
      {
        onError: (key, error, retryInMs) => logger.warn({ key, err: error, retryInMs }, 'reconcile failed'),
        onProcessed: (_key, outcome, ms) =>
          metrics.reconcileDuration.observe({ controller: 'pluginrelease', result: outcome }, ms / 1000),
      },
    );
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    queue = undefined;
    await term.shutdown({ drainTimeoutMs: 10_000 });
    await running;
  };

  const stop = new AbortController();
  let elector: LeaderElector | undefined;
  let leading: Promise<void>;
  if (options.leaderElection) {
    const le = options.leaderElection;
    elector = new LeaderElector({
      lock: clients.leaseLock(le.namespace, le.name),
      identity: le.identity ?? `${hostname()}_${randomUUID()}`,
      // client-go's proportions (15 s lease, 10 s renew deadline, 2 s retry) for any lease duration.
      ...(le.leaseDurationSeconds
        ? {
            leaseDurationSeconds: le.leaseDurationSeconds,
            renewDeadlineMs: (le.leaseDurationSeconds * 1000 * 2) / 3,
            retryPeriodMs: (le.leaseDurationSeconds * 1000 * 2) / 15,
          }
        : {}),
      onStartedLeading: runWorkers,
      logger,
    });
    leading = elector.run(stop.signal);
  } else {
    leading = runWorkers(stop.signal);
  }
  leading.catch((err: unknown) => logger.error({ err }, 'controller stopped'));

  const synced = () => releases.synced && activations.synced && nodes.synced;
  const ready = () => synced() && (elector ? elector.leadershipKnown : true);
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
    metricsUrl: health?.url,
    async stop() {
      stop.abort();
      await leading.catch(() => {});
      await events.flush();
      for (const informer of [releases, activations, nodes]) await informer.stop();
      await health?.close();
    },
  };
}

function nodeInfo(node: KubeNode): NodeInfo {
  return { name: node.metadata.name ?? '', labels: node.metadata.labels ?? {} };
}
