// The PluginRelease reconciler: reads the caches, plans (pure), applies the plan and patches status.
// Level-based: it never looks at which event woke it up.
import type { Logger } from 'pino';
import {
  formatIssues,
  Labels,
  type PluginActivation,
  type PluginRelease,
  PluginReleaseSpec,
  type PluginReleaseStatus,
  ReleaseReason,
} from '../api/index.ts';
import type { Clock } from '../runtime/clock.ts';
import { forEachLimited } from '../runtime/concurrency.ts';
import { markStalled, setCondition } from '../runtime/conditions.ts';
import { TerminalError } from '../runtime/errors.ts';
import { done, type ReconcileResult, requeueAfter } from '../runtime/reconcile.ts';
import { WrittenStatus } from '../runtime/written-status.ts';
import { type NodeInfo, plan, releasableActivations } from './planner.ts';
import { type PlannedEvent, releaseStatus } from './status.ts';

/** API writes one reconcile keeps in flight at once. */
const WRITE_CONCURRENCY = 16;

/** Read access to the informer caches. */
export interface ControllerCaches {
  release(key: string): PluginRelease | undefined;
  releases(): readonly PluginRelease[];
  /** The activations labelled with `release` in `namespace`. */
  activationsOf(namespace: string, release: string): readonly PluginActivation[];
  nodes(): readonly NodeInfo[];
}

/** The writes a reconcile makes. Each is one API call; transient failures are retried inside it. */
export interface ControllerWriter {
  createActivation(activation: PluginActivation): Promise<void>;
  /** Replaces spec, labels and annotations; throws a conflict when `resourceVersion` is stale. */
  replaceActivation(activation: PluginActivation): Promise<void>;
  deleteActivation(activation: PluginActivation): Promise<void>;
  /** Removes finalizer pluginrelease.io/agent from a deleted activation (NotFound is fine). */
  releaseFinalizer(activation: PluginActivation): Promise<void>;
  patchReleaseStatus(release: PluginRelease, status: PluginReleaseStatus): Promise<void>;
  recordEvent(release: PluginRelease, event: PlannedEvent): Promise<void>;
}

export interface ReconcilerOptions {
  caches: ControllerCaches;
  writer: ControllerWriter;
  clock: Clock;
  logger: Logger;
}

export class ReleaseReconciler {
  readonly #options: ReconcilerOptions;
  /** The cache may not have caught up with our last status patch yet. */
  readonly #written = new WrittenStatus<PluginReleaseStatus>();

  constructor(options: ReconcilerOptions) {
    this.#options = options;
  }

  /**
   * Converges one release. Throws on API errors (the queue backs off and retries the key). An invalid
   * spec is recorded as Stalled/InvalidSpec, then thrown as a TerminalError: nothing but a new spec
   * helps, and the change that brings one enqueues the key again.
   */
  async reconcile(key: string, logger: Logger): Promise<ReconcileResult> {
    const { caches, writer, clock } = this.#options;
    const [keyNamespace = '', keyName = ''] = key.split('/');
    // Deleted activations whose node is done with them (or gone): the release itself may be gone.
    const releasable = releasableActivations(caches.activationsOf(keyNamespace, keyName), caches.nodes());
    await forEachLimited(releasable, WRITE_CONCURRENCY, (a) => writer.releaseFinalizer(a));
    if (releasable.length > 0)
      logger.info({ activations: releasable.map((a) => a.metadata.name) }, 'released deleted activations');
    const cached = caches.release(key);
    if (!cached || cached.metadata.deletionTimestamp) {
      this.#written.forget(key);
      return done; // owner references let the garbage collector remove its activations
    }
    const now = clock.now();
    const status = this.#written.current(key, cached);
    const parsed = PluginReleaseSpec.safeParse(cached.spec);
    if (!parsed.success) {
      const message = `The spec is invalid: ${formatIssues(parsed.error, 'spec')}. Fix it and apply again.`;
      const generation = cached.metadata.generation ?? 0;
      let conditions = markStalled(status?.conditions, ReleaseReason.InvalidSpec, message, generation, now);
      conditions = setCondition(
        conditions,
        { type: 'Ready', status: 'False', reason: ReleaseReason.InvalidSpec, message },
        generation,
        now,
      );
      await this.#patch(key, cached, {
        ...status,
        observedGeneration: generation,
        phase: 'Stalled',
        conditions,
      });
      throw new TerminalError(ReleaseReason.InvalidSpec, message);
    }
    const release: PluginRelease = { ...cached, spec: parsed.data, ...(status ? { status } : {}) };
    const namespace = release.metadata.namespace ?? 'default';
    const name = release.metadata.name ?? '';
    const p = plan({
      release,
      nodes: caches.nodes(),
      activations: caches.activationsOf(namespace, name).filter((a) => ownedBy(a, release)),
      others: caches
        .releases()
        .filter((r) => r.metadata.uid !== release.metadata.uid)
        .flatMap(claimant),
      now,
    });
    // Independent objects: write them in parallel, boundedly, so a wave of thousands is not serial.
    await forEachLimited(p.delete, WRITE_CONCURRENCY, (a) => writer.deleteActivation(a));
    await forEachLimited(p.create, WRITE_CONCURRENCY, (a) => writer.createActivation(a));
    await forEachLimited(p.update, WRITE_CONCURRENCY, (a) => writer.replaceActivation(a));
    if (p.create.length + p.update.length + p.delete.length > 0) {
      logger.info(
        {
          verdict: p.verdict.kind,
          create: p.create.length,
          update: p.update.length,
          delete: p.delete.length,
        },
        'applied plan',
      );
    }
    const next = releaseStatus(release, p, now);
    for (const event of next.events) await writer.recordEvent(release, event);
    await this.#patch(key, cached, next.status);
    return p.requeueAfterMs !== undefined ? requeueAfter(p.requeueAfterMs) : done;
  }

  async #patch(key: string, release: PluginRelease, status: PluginReleaseStatus): Promise<void> {
    await this.#written.write(key, release, status, (s) =>
      this.#options.writer.patchReleaseStatus(release, s),
    );
  }
}

function ownedBy(activation: PluginActivation, release: PluginRelease): boolean {
  if (activation.metadata.labels?.[Labels.release] !== release.metadata.name) return false;
  const owner = activation.metadata.ownerReferences?.find((o) => o.controller);
  return !owner || !release.metadata.uid || owner.uid === release.metadata.uid;
}

/**
 * Another release as the planner weighs it for conflicts (its plugin and node selector, defaults
 * applied); none for an invalid one, which claims no node until its spec is fixed.
 */
function claimant(release: PluginRelease): PluginRelease[] {
  const parsed = PluginReleaseSpec.safeParse(release.spec);
  return parsed.success ? [{ ...release, spec: parsed.data }] : [];
}
