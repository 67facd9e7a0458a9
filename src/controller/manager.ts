// The controller process: informers → work queue → ReleaseReconciler, behind optional leader election,
// with metrics and health endpoints. Workers start only after every cache has synced.

import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Finalizers, Labels, type PluginActivation } from '../api/index.ts';
import {
  createKubeClients,
  ignoreNotFound,
  type KubeClients,
  type KubeConfig,
  type KubeEventRecorder,
  type KubeNode,
  leanActivation,
  leanNode,
  objectKey,
  removeFinalizer,
  replaceStatusPatch,
  Sharing,
} from '../kube/index.ts';
import { Runner } from '../kube/runner.ts';
import { createMetrics, type Metrics } from '../observability/index.ts';
import { type Clock, systemClock } from '../runtime/clock.ts';
import type { NodeInfo } from './planner.ts';
import { type ControllerWriter, ReleaseReconciler } from './reconciler.ts';

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
  const caches = releaseCaches(clients, options);
  const events = clients.eventRecorder({
    component: 'plugin-release-controller',
    instance: hostname(),
    logger,
  });
  const metrics = createMetrics();
  const reconciler = new ReleaseReconciler({
    clock,
    logger,
    caches: {
      release: (key) => caches.releases.get(key),
      releases: () => caches.releases.list(),
      activationsOf: (namespace, release) =>
        caches.activations.byIndex(BY_RELEASE, `${namespace}/${release}`),
      nodes: () => caches.nodes.list().map(nodeInfo),
    },
    writer: releaseWriter(clients, events),
  });
  const le = options.leaderElection;
  const runner = new Runner({
    name: 'pluginrelease',
    caches: [caches.releases, caches.activations, caches.nodes],
    reconcile: (key, log) => reconciler.reconcile(key, log),
    keys: () => everyRelease(caches),
    logger,
    metrics,
    clock,
    workers: options.workers,
    cacheSyncTimeoutMs: options.cacheSyncTimeoutMs,
    leaderElection: le && {
      lock: clients.leaseLock(le.namespace, le.name),
      identity: le.identity,
      leaseDurationSeconds: le.leaseDurationSeconds,
    },
    metricsAddr: options.metricsAddr,
  });
  enqueueOnChange(caches, metrics, (key) => runner.enqueue(key));
  await runner.start();
  return {
    ready: () => runner.ready(),
    metricsUrl: runner.metricsUrl,
    async stop() {
      await runner.stop();
      await events.flush();
    },
  };
}

/** The activations index by their release's `namespace/name`, so a reconcile reads only its own. */
const BY_RELEASE = 'release';

type Caches = ReturnType<typeof releaseCaches>;

function releaseCaches(clients: KubeClients, options: ControllerOptions) {
  const { logger } = options;
  const scope = options.namespace ? { namespace: options.namespace } : {};
  // Lean caches: only what the planner and status aggregation read, strings and specs shared.
  const sharing = new Sharing();
  const releases = clients.informer(clients.releases, { ...scope, logger });
  const activations = clients.informer(clients.activations, {
    ...scope,
    labelSelector: Labels.release,
    logger,
    transform: leanActivation(sharing),
  });
  activations.addIndex(BY_RELEASE, (a) => [releaseKeyOf(a)]);
  const nodes = clients.informer(clients.nodes, { logger, transform: leanNode(sharing) });
  return { releases, activations, nodes };
}

function releaseKeyOf(a: PluginActivation): string {
  return `${a.metadata.namespace}/${a.metadata.labels?.[Labels.release] ?? ''}`;
}

/** Every release, and every deleted one whose activations linger (a Node leaving may free them). */
function everyRelease({ releases, activations }: Caches): Set<string> {
  return new Set([...releases.keys(), ...activations.indexValues(BY_RELEASE)]);
}

/** Maps cache changes to the releases they concern (level-based: keys only), and counts phases. */
function enqueueOnChange(caches: Caches, metrics: Metrics, enqueue: (key: string) => void): void {
  const { releases, activations, nodes } = caches;
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
      metrics.activationsByPhase.inc(phaseOf(a));
      enqueue(releaseKeyOf(a));
    },
    update: (old, a) => {
      metrics.activationsByPhase.dec(phaseOf(old));
      metrics.activationsByPhase.inc(phaseOf(a));
      enqueue(releaseKeyOf(a));
    },
    delete: (a) => {
      metrics.activationsByPhase.dec(phaseOf(a));
      enqueue(releaseKeyOf(a));
    },
  });
  const enqueueEvery = () => {
    for (const key of everyRelease(caches)) enqueue(key);
  };
  nodes.on({
    add: enqueueEvery,
    delete: enqueueEvery,
    update: (old, n) => {
      if (JSON.stringify(old.metadata.labels) !== JSON.stringify(n.metadata.labels)) enqueueEvery();
    },
  });
}

/** The reconciler's writes, one API call each. */
function releaseWriter(clients: KubeClients, events: KubeEventRecorder): ControllerWriter {
  return {
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
  };
}

function nodeInfo(node: KubeNode): NodeInfo {
  return { name: node.metadata.name ?? '', labels: node.metadata.labels ?? {} };
}
