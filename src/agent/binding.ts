// The agent's Kubernetes binding: executes the PluginActivations of its node on the node engine and
// reports through each activation's status. It never writes a PluginRelease.
import type { Logger } from 'pino';
import {
  ConditionType,
  Finalizers,
  formatIssues,
  NodeReason,
  type PluginActivation,
  PluginActivationSpec,
  type PluginActivationStatus,
} from '../api/index.ts';
import { canonicalJson } from '../api/revision.ts';
import { findCondition, setCondition } from '../runtime/conditions.ts';
import { TerminalError } from '../runtime/errors.ts';
import { done, type ReconcileResult } from '../runtime/reconcile.ts';
import { WrittenStatus } from '../runtime/written-status.ts';
import type { NodeEngine } from './node-engine.ts';
import type { SupervisedHealth } from './plugin-host.ts';

export interface AgentCaches {
  activation(key: string): PluginActivation | undefined;
  /** Every activation of this node in the cache. */
  activations(): readonly PluginActivation[];
}

export interface AgentWriter {
  /** Replaces the activation's whole status (fields absent from `status` are removed). */
  writeStatus(activation: PluginActivation, status: PluginActivationStatus): Promise<void>;
}

/** What the binding asks of the node engine (NodeEngine). */
export type ActivationEngine = Pick<NodeEngine, 'activate' | 'activeRevision' | 'health' | 'uninstall'>;

export interface BindingOptions {
  nodeName: string;
  engine: ActivationEngine;
  caches: AgentCaches;
  writer: AgentWriter;
  /** What the engine's start-up recovery did, by plugin (NodeEngine.recover()); reported once each. */
  recovered?: Record<string, string[]>;
  /** Observes each finished activation (metrics). */
  onFinished?: (activation: PluginActivation, status: PluginActivationStatus, durationMs: number) => void;
  /** Observes each plugin removed because its activation was deleted (an Event). */
  onUninstalled?: (activation: PluginActivation) => void;
  /** The time condition transitions are stamped with (default: the system clock). */
  now?: () => Date;
}

/**
 * Whether `next` makes the attempt running for `previous` pointless, so it is cancelled rather than
 * finished: the activation is being deleted, or the controller sends the node back (an abort or a
 * fleet rollback names a new `rollbackTo`).
 */
export function cancelsAttempt(previous: PluginActivation, next: PluginActivation): boolean {
  if (next.metadata.deletionTimestamp !== undefined) return previous.metadata.deletionTimestamp === undefined;
  const target = next.spec.rollbackTo?.revision;
  return target !== undefined && target !== previous.spec.rollbackTo?.revision;
}

const TERMINAL = new Set(['Active', 'RolledBack', 'Failed', 'Probed']);

export class ActivationBinding {
  readonly #options: BindingOptions;
  readonly #now: () => Date;
  /**
   * The cache replays our own progress writes after the final one, so it may briefly show a finished
   * attempt as still Probing; what we wrote wins for the same generation.
   */
  readonly #written = new WrittenStatus<PluginActivationStatus>();
  /** The attempt running per activation key, to cancel (see cancelsAttempt). */
  readonly #running = new Map<string, AbortController>();
  /** What start-up recovery did, by plugin, not yet reported (each plugin's is reported once). */
  readonly #unreportedRecovery: Map<string, readonly string[]>;

  constructor(options: BindingOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    this.#unreportedRecovery = new Map(Object.entries(options.recovered ?? {}));
  }

  /**
   * Converges one activation of this node: runs it on the engine unless its status already reports
   * this attempt as finished, and writes the status as it goes. Throws on API errors (retried with
   * backoff) or when aborted; an invalid spec is reported Failed/InvalidSpec and thrown as a
   * TerminalError (only a new spec helps). Plugin failures end in a RolledBack or Failed status.
   */
  async reconcile(key: string, logger: Logger, signal: AbortSignal): Promise<ReconcileResult> {
    const activation = this.#options.caches.activation(key);
    if (!activation) {
      this.#written.forget(key);
      return done;
    }
    if (activation.spec.nodeName !== this.#options.nodeName) return done;
    if (activation.metadata.deletionTimestamp) return this.#uninstall(key, activation, logger);
    const generation = activation.metadata.generation ?? 0;
    const status = this.#written.current(key, activation) ?? {};
    const write = (s: PluginActivationStatus) => this.#write(key, activation, s);
    const parsed = PluginActivationSpec.safeParse(activation.spec);
    if (!parsed.success) {
      const message = `The activation spec is invalid: ${formatIssues(parsed.error, 'spec')}.`;
      await write({
        ...attemptIdentity(generation, activation),
        phase: 'Failed',
        reason: NodeReason.InvalidSpec,
        message,
      });
      throw new TerminalError(NodeReason.InvalidSpec, message);
    }
    const spec = parsed.data;
    if (status.phase && TERMINAL.has(status.phase) && (await this.#alreadyDone(spec, status))) {
      // The same attempt already finished (say, only probe settings changed): acknowledge the generation,
      // and say what recovery did if this agent restarted with work to repair.
      const repaired = this.#unreportedRecovery.get(spec.plugin) ?? [];
      this.#unreportedRecovery.delete(spec.plugin);
      const recovered =
        status.phase === 'Active' && repaired.length > 0
          ? {
              reason: NodeReason.Recovered,
              message: `Recovered after an agent restart: ${repaired.join(' ')}`,
            }
          : {};
      const supervised =
        status.phase === 'Active'
          ? supervisedStatus(status, await this.#options.engine.health(spec.plugin), this.#now())
          : status;
      await write(stamped({ ...supervised, ...recovered }, generation));
      return done;
    }

    const started = performance.now();
    const reporter = new StatusReporter(write, logger);
    const cancel = new AbortController();
    this.#running.set(key, cancel);
    let final: PluginActivationStatus;
    try {
      final = await this.#options.engine.activate(spec, {
        signal: AbortSignal.any([signal, cancel.signal]),
        onStatus: (s) =>
          reporter.offer(stamped({ ...s, ...attemptIdentity(generation, activation) }, generation)),
      });
    } catch (error) {
      if (!cancel.signal.aborted || signal.aborted) throw error;
      // The queue runs the key again (the change that cancelled it enqueued it) for what it asks now.
      logger.info({ reason: String(cancel.signal.reason) }, 'attempt cancelled');
      return done;
    } finally {
      this.#running.delete(key);
    }
    const result = stamped({ ...final, ...attemptIdentity(generation, activation) }, generation);
    await reporter.finish(result);
    this.#options.onFinished?.(activation, result, performance.now() - started);
    logger.info({ phase: result.phase, reason: result.reason }, 'activation finished');
    return done;
  }

  /** Cancels the attempt running for `key`, if any: its candidate stops, the node stays as it was. */
  cancel(key: string, why: string): void {
    this.#running.get(key)?.abort(new Error(why));
  }

  /**
   * A deleted activation that waits for this node (the controller's finalizer pluginrelease.io/agent):
   * takes the plugin off the node (process, front, directory) unless another live activation of this
   * node now holds the same plugin, then says so in the status (condition Uninstalled), which tells the
   * controller to let the activation go. An attempt in flight was cancelled by the change that deleted
   * it (cancelsAttempt); the engine waits for it to unwind.
   */
  async #uninstall(key: string, activation: PluginActivation, logger: Logger): Promise<ReconcileResult> {
    const status = this.#written.current(key, activation) ?? {};
    if (
      !activation.metadata.finalizers?.includes(Finalizers.agent) ||
      findCondition(status.conditions, ConditionType.Uninstalled)?.status === 'True'
    )
      return done;
    const plugin = PluginActivationSpec.shape.plugin.safeParse(activation.spec.plugin);
    const heldElsewhere = this.#options.caches
      .activations()
      .some(
        (a) =>
          a.metadata.uid !== activation.metadata.uid &&
          !a.metadata.deletionTimestamp &&
          a.spec.nodeName === this.#options.nodeName &&
          a.spec.plugin === activation.spec.plugin,
      );
    const name = activation.spec.plugin;
    let message =
      activation.spec.runtime === 'Host'
        ? `Plugin ${name} was released from ${this.#options.nodeName}: the host keeps serving its current config and plugins, and the agent removed its snapshots of them.`
        : `Plugin ${name} was uninstalled from ${this.#options.nodeName}: its process stopped, its front closed and its files were removed.`;
    if (!plugin.success)
      message = `Nothing to uninstall: the plugin name ${JSON.stringify(name)} is invalid.`;
    else if (heldElsewhere)
      message = `Plugin ${name} was left running on ${this.#options.nodeName}: another PluginActivation of this node holds it now.`;
    else {
      await this.#options.engine.uninstall(plugin.data);
      logger.info({ plugin: plugin.data }, 'plugin uninstalled: its activation was deleted');
      this.#options.onUninstalled?.(activation);
    }
    const generation = activation.metadata.generation ?? 0;
    const conditions = setCondition(
      status.conditions ?? [],
      { type: ConditionType.Uninstalled, status: 'True', reason: NodeReason.Uninstalled, message },
      generation,
      this.#now(),
    );
    const { activeRevision: _, ...rest } = status;
    await this.#write(key, activation, {
      ...rest,
      observedGeneration: generation,
      reason: NodeReason.Uninstalled,
      message,
      conditions,
    });
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
      (await this.#options.engine.activeRevision(spec.plugin)) ===
      (spec.rollbackTo?.revision ?? spec.revision)
    );
  }

  /** Writes `status` unless it says exactly what this agent last wrote (or, failing that, the cache shows). */
  async #write(key: string, activation: PluginActivation, status: PluginActivationStatus): Promise<void> {
    await this.#written.write(key, activation, status, (s) =>
      this.#options.writer.writeStatus(activation, s),
    );
  }
}

/** The fields that tie a status to its attempt: generation, retry token, dry run, rollback target. */
function attemptIdentity(generation: number, activation: PluginActivation): PluginActivationStatus {
  const { retryAt, dryRun, rollbackTo } = activation.spec;
  return {
    observedGeneration: generation,
    dryRun: dryRun ?? false,
    ...(retryAt !== undefined ? { retryAt } : {}),
    ...(rollbackTo ? { rollbackTo: rollbackTo.revision } : {}),
  };
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
    if (this.#lastWritten !== reportedProgress(status)) await this.#write(status);
  }

  async #drain(): Promise<void> {
    while (this.#pending) {
      const next = this.#pending;
      this.#pending = undefined;
      if (this.#lastWritten === reportedProgress(next)) continue;
      try {
        await this.#write(next);
        this.#lastWritten = reportedProgress(next);
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

/** `status` with its conditions stamped with the generation it describes (the host knows none). */
function stamped(status: PluginActivationStatus, generation: number): PluginActivationStatus {
  return {
    ...status,
    observedGeneration: generation,
    ...(status.conditions
      ? { conditions: status.conditions.map((c) => ({ ...c, observedGeneration: generation })) }
      : {}),
  };
}

/**
 * What a progress report says, as a comparable string: the status without its transition time and
 * conditions, which the engine restamps on every report while phase, reason and message stay.
 */
function reportedProgress(status: PluginActivationStatus): string {
  const { lastTransitionTime: _, conditions: __, ...rest } = status;
  return canonicalJson(rest);
}
