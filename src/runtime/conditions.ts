// The one conditions helper: every status condition in the project is written through it.
import type { Condition } from '../api/primitives.ts';

export type ConditionStatus = Condition['status'];

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * Returns a copy of `conditions` with `input` set, stamped with `observedGeneration`.
 * `lastTransitionTime` moves to `now` only when status, reason or message changed, so an
 * unchanged status patch is byte-for-byte identical and can be skipped.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  observedGeneration: number,
  now: Date,
): Condition[] {
  const existing = findCondition(conditions, input.type);
  const unchanged =
    existing !== undefined &&
    existing.status === input.status &&
    existing.reason === input.reason &&
    existing.message === input.message;
  const next: Condition = {
    type: input.type,
    status: input.status,
    observedGeneration,
    lastTransitionTime: unchanged ? existing.lastTransitionTime : now.toISOString(),
    reason: input.reason,
    message: input.message,
  };
  const current = conditions ?? [];
  return existing ? current.map((c) => (c === existing ? next : c)) : [...current, next];
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** Sets one kstatus progress condition True with `reason` and `message`, stamped as setCondition does. */
type MarkProgress = (
  conditions: readonly Condition[] | undefined,
  reason: string,
  message: string,
  observedGeneration: number,
  now: Date,
) => Condition[];

/** `type=True` with `excluded` removed: kstatus never shows Reconciling and Stalled together. */
function exclusive(type: 'Reconciling' | 'Stalled', excluded: 'Reconciling' | 'Stalled'): MarkProgress {
  return (conditions, reason, message, observedGeneration, now) =>
    setCondition(
      removeCondition(conditions, excluded),
      { type, status: 'True', reason, message },
      observedGeneration,
      now,
    );
}

/** kstatus: `Reconciling=True`, and `Stalled` removed. */
export const markReconciling: MarkProgress = exclusive('Reconciling', 'Stalled');

/** kstatus: `Stalled=True`, and `Reconciling` removed (it is present only while True). */
export const markStalled: MarkProgress = exclusive('Stalled', 'Reconciling');

/** kstatus: the steady state, with neither `Reconciling` nor `Stalled` present. */
export function clearProgress(conditions: readonly Condition[] | undefined): Condition[] {
  return removeCondition(removeCondition(conditions, 'Reconciling'), 'Stalled');
}
