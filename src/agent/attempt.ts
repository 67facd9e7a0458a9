// One activation attempt, driven through the pure state machine (engine/transition.ts): the loop, the
// effect dispatch and the status's phase, reason and conditions, shared by both runtimes (the Process
// runtime's plugin-host.ts and the Host runtime's host/host-runtime.ts), which bring their own handlers.
import type { Logger } from 'pino';
import {
  type Condition,
  NodeReason,
  type PluginActivationSpec,
  type PluginActivationStatus,
} from '../api/index.ts';
import { setCondition } from '../runtime/conditions.ts';
import { type Effect, type Observation, type Policy, type State, transition } from './engine/transition.ts';
import { ActivationError } from './errors.ts';
import type { ActivateOptions } from './plugin-host.ts';

/** What every runtime's attempt carries; each adds what its handlers learn. */
export interface AttemptBase {
  readonly spec: PluginActivationSpec;
  readonly revision: string;
  readonly logger: Logger;
  readonly options: ActivateOptions;
  readonly attempts: number;
  state: State;
  conditions: Condition[];
}

export type Handlers<A> = Record<Effect, (a: A) => Promise<Observation>>;

/**
 * A plugin's activations one after another, and how often each revision was tried: the bookkeeping
 * both runtimes share.
 */
export class Attempts {
  #queue: Promise<unknown> = Promise.resolve();
  readonly #tries = new Map<string, number>();

  /** Runs `job` after everything queued before it; a job that fails does not stop the ones after it. */
  enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(job);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Resolves once everything queued so far has run. */
  async idle(): Promise<void> {
    await this.#queue.catch(() => {});
  }

  /** A new attempt at `spec`: its revision (a rollback's target), counted, with a logger that names it. */
  begin(
    spec: PluginActivationSpec,
    options: ActivateOptions,
    logger: Logger,
    bindings: Record<string, string> = {},
  ): AttemptBase {
    const revision = spec.rollbackTo?.revision ?? spec.revision;
    const attempts = (this.#tries.get(revision) ?? 0) + 1;
    this.#tries.set(revision, attempts);
    return {
      spec,
      revision,
      logger: logger.child({ plugin: spec.plugin, revision, ...bindings }),
      options,
      attempts,
      state: { phase: 'Pending', revision },
      conditions: [],
    };
  }
}

const PROGRESS_REASON: Record<string, string> = {
  Pending: NodeReason.Pending,
  Staged: NodeReason.Staged,
  Probing: NodeReason.Probing,
  Restoring: NodeReason.Probing,
  Active: NodeReason.Activated,
  Probed: NodeReason.ProbeSucceeded,
};

/**
 * Runs `attempt` to a terminal phase: the transition function picks the next effect from the state and
 * the last observation, `perform` carries it out. Reports every phase change through `onStatus` and
 * every effect through `onEffect`. When the attempt's signal aborts (its activation was deleted or sent
 * elsewhere), `cancel` undoes what the attempt did so far and the abort's reason is thrown.
 */
export async function driveAttempt<A extends AttemptBase>(
  attempt: A,
  policy: () => Policy,
  perform: (effect: Effect, a: A) => Promise<Observation>,
  status: (a: A) => Promise<PluginActivationStatus>,
  cancel: (a: A) => Promise<void>,
): Promise<void> {
  const { options } = attempt;
  let observation: Observation = { type: 'Start' };
  for (;;) {
    const step = transition(attempt.state, observation, policy());
    const changed = step.next.phase !== attempt.state.phase;
    attempt.state = step.next;
    if (changed) options.onStatus?.(await status(attempt));
    if (!step.effect) return;
    if (options.signal?.aborted) {
      await cancel(attempt);
      throw options.signal.reason;
    }
    const startedAt = performance.now();
    try {
      observation = await perform(step.effect, attempt);
    } catch (error) {
      if (options.signal?.aborted) await cancel(attempt);
      throw error;
    }
    options.onEffect?.({
      effect: step.effect,
      startedAt,
      endedAt: performance.now(),
      observation: observation.type,
    });
  }
}

/**
 * Performs one effect with its handler. Every failure becomes a Failed observation: an ActivationError
 * with its own reason, anything else (an I/O failure, not a misbehaving plugin or host) with the effect's
 * `unexpected` reason, logged. Rethrows only when the attempt was aborted.
 */
export async function performEffect<A extends AttemptBase>(
  handlers: Handlers<A>,
  unexpected: Record<Effect, NodeReason>,
  effect: Effect,
  attempt: A,
): Promise<Observation> {
  try {
    return await handlers[effect](attempt);
  } catch (error) {
    if (attempt.options.signal?.aborted) throw error;
    if (error instanceof ActivationError)
      return { type: 'Failed', reason: error.reason, message: error.message };
    attempt.logger.error({ err: error }, `${effect} failed unexpectedly`);
    return {
      type: 'Failed',
      reason: unexpected[effect],
      message: `${effect} failed: ${(error as Error).message}.`,
    };
  }
}

/** The status fields every runtime reports the same way, for the attempt's state now. */
export interface Outcome {
  phase: NonNullable<PluginActivationStatus['phase']>;
  reason: string;
  message: string;
}

/**
 * The attempt's phase, reason and message (`messages` says Active and Probed in the runtime's words),
 * and its conditions updated with them: Ready, and RolledBack after a failure.
 */
export function outcomeOf(a: AttemptBase, messages: { active: string; probed: string }, now: Date): Outcome {
  const { state } = a;
  const phase = state.phase === 'Restoring' ? 'Probing' : state.phase;
  const failure = state.phase === 'RolledBack' || state.phase === 'Failed' ? state.failure : undefined;
  const verifying = state.phase === 'Probing' && state.step !== 'candidate';
  const restoredSnapshot = phase === 'Active' && a.spec.rollbackTo !== undefined;
  const reason =
    failure?.reason ??
    (verifying
      ? NodeReason.Verifying
      : restoredSnapshot
        ? NodeReason.RolledBackToSnapshot
        : PROGRESS_REASON[state.phase]!);
  const message = failure
    ? failure.message
    : restoredSnapshot
      ? `Rolled back to the kept snapshot of revision ${a.revision}, which is active and serving.`
      : phase === 'Active'
        ? messages.active
        : phase === 'Probed'
          ? messages.probed
          : `Revision ${a.revision}: ${reason}.`;
  const ready = phase === 'Active' || phase === 'Probed';
  a.conditions = setCondition(
    a.conditions,
    { type: 'Ready', status: ready ? 'True' : 'False', reason, message },
    0,
    now,
  );
  if (failure) {
    a.conditions = setCondition(
      a.conditions,
      { type: 'RolledBack', status: 'True', reason: failure.reason, message: failure.message },
      0,
      now,
    );
  }
  return { phase, reason, message };
}
