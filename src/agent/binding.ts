// The agent's Kubernetes binding: executes the PluginActivations of its node on the node engine and
// reports through each activation's status. It never writes a PluginRelease.
import type { Logger } from 'pino';
import {
  ConditionType,
  formatIssues,
  NodeReason,
  type PluginActivation,
  PluginActivationSpec,
  type PluginActivationStatus,
} from '../api/index.ts';
import { canonicalJson } from '../api/revision.ts';
import { setCondition } from '../runtime/conditions.ts';
import { done, type ReconcileResult } from '../runtime/reconcile.ts';
import type { NodeEngine } from './node-engine.ts';
import type { SupervisedHealth } from './plugin-host.ts';

export interface AgentCaches {
  activation(key: string): PluginActivation | undefined;
}

export interface AgentWriter {
  /** Replaces the activation's whole status (fields absent from `status` are removed). */
  writeStatus(activation: PluginActivation, status: PluginActivationStatus): Promise<void>;
}

export interface BindingOptions {
  nodeName: string;
  engine: NodeEngine;
  caches: AgentCaches;
  writer: AgentWriter;
  /** What the engine's start-up recovery did, by plugin (NodeEngine.recover()); reported once each. */
  recovered?: Record<string, string[]>;
  /** Observes each finished activation (metrics). */
  onFinished?: (activation: PluginActivation, status: PluginActivationStatus, durationMs: number) => void;
}

const TERMINAL = new Set(['Active', 'RolledBack', 'Failed', 'Probed']);

export class ActivationBinding {
  readonly #o: BindingOptions;
  /**
   * The last status this agent wrote per activation key, with the generation it was for. The cache
   * replays our own progress writes after the final one, so it may briefly show a finished attempt
   * as still Probing; what we wrote wins for the same generation.
   */
  readonly #written = new Map<string, { generation: number; status: PluginActivationStatus }>();

  constructor(options: BindingOptions) {
    this.#o = options;
  }

  /**
   * Converges one activation of this node: runs it on the engine unless its status already reports
   * this attempt as finished, and writes the status as it goes. Throws only on API errors (retried
   * with backoff) or when aborted; plugin failures end in a RolledBack or Failed status.
   */
  async reconcile(key: string, logger: Logger, signal: AbortSignal): Promise<ReconcileResult> {
    const activation = this.#o.caches.activation(key);
    if (!activation || activation.metadata.deletionTimestamp) {
      this.#written.delete(key);
      return done;
    }
    if (activation.spec.nodeName !== this.#o.nodeName) return done;
    const generation = activation.metadata.generation ?? 0;
    const written = this.#written.get(key);
    const status = (written?.generation === generation ? written.status : activation.status) ?? {};
    const parsed = PluginActivationSpec.safeParse(activation.spec);
    if (!parsed.success) {
      await this.#write(activation, {
        ...this.#finished(generation, activation),
        phase: 'Failed',
        reason: NodeReason.StageFailed,
        message: `The activation spec is invalid: ${formatIssues(parsed.error, 'spec')}.`,
      });
      return done;
    }
    const spec = parsed.data;
    if (status.phase && TERMINAL.has(status.phase) && (await this.#alreadyDone(spec, status))) {
      // The same attempt already finished (say, only probe settings changed): acknowledge the generation,
      // and say what recovery did if this agent restarted with work to repair.
      const repaired = this.#o.recovered?.[spec.plugin] ?? [];
      if (this.#o.recovered) delete this.#o.recovered[spec.plugin];
      const recovered =
        status.phase === 'Active' && repaired.length > 0
          ? {
              reason: NodeReason.Recovered,
              message: `Recovered after an agent restart: ${repaired.join(' ')}`,
            }
          : {};
      const supervised =
        status.phase === 'Active'
          ? supervisedStatus(status, await this.#o.engine.health(spec.plugin), new Date())
          : status;
      const acknowledged = { ...supervised, ...recovered, observedGeneration: generation };
      if (canonicalJson(acknowledged) !== canonicalJson(status)) {
        await this.#write(activation, acknowledged);
        this.#written.set(key, { generation, status: acknowledged });
      }
      return done;
    }

    const started = performance.now();
    const reporter = new StatusReporter((s) => this.#write(activation, s), logger);
    const final = await this.#o.engine.activate(spec, {
      signal,
      onStatus: (s) => reporter.offer({ ...s, ...this.#finished(generation, activation) }),
    });
    const result: PluginActivationStatus = { ...final, ...this.#finished(generation, activation) };
    await reporter.finish(result);
    this.#written.set(key, { generation, status: result });
    this.#o.onFinished?.(activation, result, performance.now() - started);
    logger.info({ phase: result.phase, reason: result.reason }, 'activation finished');
    return done;
  }

  /**
   * Whether `status` reports the very attempt `spec` asks for (revision, retry token, dry run, rollback
   * target) as finished, and the node still agrees. A rejected attempt stands until a retry or a new
   * revision; an Active one must still be what serves.
   */
  async #alreadyDone(spec: PluginActivationSpec, status: PluginActivationStatus): Promise<boolean> {
    const sameAttempt =
      status.revision === spec.revision &&
      status.retryAt === spec.retryAt &&
      (status.dryRun ?? false) === spec.dryRun &&
      status.rollbackTo === spec.rollbackTo?.revision;
    if (!sameAttempt) return false;
    if (status.phase !== 'Active') return true;
    return (
      (await this.#o.engine.activeRevision(spec.plugin)) === (spec.rollbackTo?.revision ?? spec.revision)
    );
  }

  /** The fields that tie a status to its attempt: generation, retry token, dry run, rollback target. */
  #finished(generation: number, activation: PluginActivation): PluginActivationStatus {
    const { retryAt, dryRun, rollbackTo } = activation.spec;
    return {
      observedGeneration: generation,
      dryRun: dryRun ?? false,
      ...(retryAt !== undefined ? { retryAt } : {}),
      ...(rollbackTo ? { rollbackTo: rollbackTo.revision } : {}),
    };
  }

  async #write(activation: PluginActivation, status: PluginActivationStatus): Promise<void> {
    if (canonicalJson(activation.status ?? {}) === canonicalJson(status)) return;
    await this.#o.writer.writeStatus(activation, status);
  }
}

/**
 * Coalesces progress statuses: one write in flight at a time, only the newest waiting status is
 * written after it, and a status that says what the last write said is not written again. Fast
 * phases collapse, which keeps an activation at about three status writes.
 */
class StatusReporter {
  readonly #write: (s: PluginActivationStatus) => Promise<void>;
  readonly #logger: Logger;
  #pending: PluginActivationStatus | undefined;
  #inFlight: Promise<void> | undefined;
  #lastWritten: string | undefined;

  constructor(write: (s: PluginActivationStatus) => Promise<void>, logger: Logger) {
    this.#write = write;
    this.#logger = logger;
  }

  offer(status: PluginActivationStatus): void {
    this.#pending = status;
    if (!this.#inFlight) this.#inFlight = this.#drain();
  }

  /** Writes the final status (errors propagate: the reconcile retries) unless the last write said it. */
  async finish(status: PluginActivationStatus): Promise<void> {
    this.#pending = undefined;
    await this.#inFlight;
    if (this.#lastWritten !== gist(status)) await this.#write(status);
  }

  async #drain(): Promise<void> {
    while (this.#pending) {
      const next = this.#pending;
      this.#pending = undefined;
      if (this.#lastWritten === gist(next)) continue;
      try {
        await this.#write(next);
        this.#lastWritten = gist(next);
      } catch (err) {
        // Progress is advisory; the final status is written (and retried) by the reconcile itself.
        this.#logger.warn({ err }, 'could not report progress');
      }
    }
    this.#inFlight = undefined;
  }
}

/**
 * An Active status with what supervision knows of the active process: the restart count and last exit,
 * `Degraded` (True while it is down, with CrashLoopBackOff), and `Ready` False (PluginDown) while no
 * process serves — so the release counts the node as unavailable. A status for another revision, or
 * from before any restart, is returned as it is.
 */
export function supervisedStatus(
  status: PluginActivationStatus,
  health: SupervisedHealth,
  now: Date,
): PluginActivationStatus {
  if (health.revision === undefined || health.revision !== status.activeRevision) return status;
  if (!health.down && health.restarts === 0) return status;
  const down = health.down;
  const detail = [health.lastExit, health.message].filter(Boolean).join(' ');
  let conditions = setCondition(
    status.conditions ?? [],
    down
      ? { type: ConditionType.Degraded, status: 'True', reason: NodeReason.CrashLoopBackOff, message: detail }
      : {
          type: ConditionType.Degraded,
          status: 'False',
          reason: NodeReason.PluginRestarted,
          message:
            `Restarted ${health.restarts} time(s) after it exited on its own; it serves again. ${health.lastExit ?? ''}`.trim(),
        },
    0,
    now,
  );
  const reason = down ? NodeReason.PluginDown : NodeReason.Activated;
  const message = down
    ? `Revision ${health.revision} is active but its process is down; the agent restarts it (new connections wait up to the front's hold time). ${detail}`
    : `Revision ${health.revision} is active and serving.`;
  conditions = setCondition(
    conditions,
    { type: ConditionType.Ready, status: down ? 'False' : 'True', reason, message },
    0,
    now,
  );
  return {
    ...status,
    reason,
    message,
    restarts: health.restarts,
    ...(health.lastExit ? { lastExit: health.lastExit.slice(0, 4096) } : {}),
    conditions,
  };
}

/** What a status says, without the timestamps that change on every report. */
function gist(status: PluginActivationStatus): string {
  const { lastTransitionTime: _, conditions: __, ...rest } = status;
  return canonicalJson(rest);
}
