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
import { canonicalJson } from '../api/revision.ts';
import type { Clock } from '../runtime/clock.ts';
import { forEachLimited } from '../runtime/concurrency.ts';
import { markStalled, setCondition } from '../runtime/conditions.ts';
import { done, type ReconcileResult, requeueAfter } from '../runtime/reconcile.ts';
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

/** Status this controller last wrote per key: the cache may not have caught up with it yet. */
interface Written {
  generation: number;
  status: PluginReleaseStatus;
}

export class ReleaseReconciler {
  readonly #o: ReconcilerOptions;
  readonly #written = new Map<string, Written>();

  constructor(options: ReconcilerOptions) {
    this.#o = options;
  }

  /**
   * Converges one release. Throws on API errors (the queue backs off and retries the key); an invalid
   * spec is recorded as Stalled/InvalidSpec and not retried until the spec changes.
   */
  async reconcile(key: string, logger: Logger): Promise<ReconcileResult> {
    const { caches, writer, clock } = this.#o;
    const [keyNamespace = '', keyName = ''] = key.split('/');
    // Deleted activations whose node is done with them (or gone): the release itself may be gone.
    const releasable = releasableActivations(caches.activationsOf(keyNamespace, keyName), caches.nodes());
    await forEachLimited(releasable, WRITE_CONCURRENCY, (a) => writer.releaseFinalizer(a));
    if (releasable.length > 0)
      logger.info({ activations: releasable.map((a) => a.metadata.name) }, 'released deleted activations');
    const cached = caches.release(key);
    if (!cached || cached.metadata.deletionTimestamp) {
      this.#written.delete(key);
      return done; // owner references let the garbage collector remove its activations
    }
    const now = clock.now();
    const written = this.#written.get(key);
    const status =
      written && written.generation === cached.metadata.generation ? written.status : cached.status;
    const parsed = PluginReleaseSpec.safeParse(cached.spec);
    if (!parsed.success) {
      const message = `The spec is invalid: ${formatIssues(parsed.error, 'spec')}. Fix it and apply again.`;
      logger.warn({ message }, 'invalid spec');
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
      return done;
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
        .map(withDefaults),
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
    const known = this.#written.get(key);
    const current = known && known.generation === release.metadata.generation ? known.status : release.status;
    if (canonicalJson(current ?? {}) === canonicalJson(status)) return;
    await this.#o.writer.patchReleaseStatus(release, status);
    this.#written.set(key, { generation: release.metadata.generation ?? 0, status });
  }
}

function ownedBy(activation: PluginActivation, release: PluginRelease): boolean {
  if (activation.metadata.labels?.[Labels.release] !== release.metadata.name) return false;
  const owner = activation.metadata.ownerReferences?.find((o) => o.controller);
  return !owner || !release.metadata.uid || owner.uid === release.metadata.uid;
}

/** Another release, read only for its plugin and node selector; an invalid one claims nothing. */
function withDefaults(release: PluginRelease): PluginRelease {
  const parsed = PluginReleaseSpec.safeParse(release.spec);
  return parsed.success
    ? { ...release, spec: parsed.data }
    : { ...release, spec: { ...release.spec, plugin: '' } };
}
