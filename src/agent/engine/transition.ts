// The per-node try-activate state machine, pure: (state, observation, policy) → (next state, effect).
// No I/O and no clock: the plugin host performs each effect and feeds back what it observed.
//
//   Pending ─Staged→ Staged ─Launched→ Probing(candidate) ─Healthy→ Probing(swap) ─Swapped→ Probing(verify)
//      │               │                     │                          │                      │ Verified
//      └─failed─┐      └─failed─┐            └─failed (stop candidate)  └─failed (restore)     ▼
//               ▼               ▼                                                            Active
//          RolledBack      RolledBack                   dry run: Probing(candidate) ─Healthy→ Probed
//
// Recreate (legacy unload → load) stops the active version before it launches the candidate, so every
// failure after that point has to start the previous version again (restore) before it is RolledBack.
import { NodeReason } from '../../api/conditions.ts';
import type { ActivationStrategy } from '../../api/index.ts';

export interface Failure {
  reason: NodeReason;
  message: string;
}

export type State =
  | { phase: 'Pending'; revision: string }
  | { phase: 'Staged'; revision: string; unloaded: boolean }
  | { phase: 'Probing'; revision: string; step: 'candidate' | 'swap' | 'verify'; unloaded: boolean }
  | { phase: 'Restoring'; revision: string; failure: Failure }
  | { phase: 'Active'; revision: string }
  | { phase: 'Probed'; revision: string }
  | { phase: 'RolledBack'; revision: string; failure: Failure; restored: boolean }
  | { phase: 'Failed'; revision: string; failure: Failure };

export type Observation =
  | { type: 'Start' }
  | { type: 'Staged' }
  | { type: 'ActiveStopped' }
  | { type: 'Launched' }
  | { type: 'Healthy' }
  | { type: 'Swapped' }
  | { type: 'Verified' }
  | { type: 'Retired' }
  | { type: 'Restored' }
  | { type: 'CandidateStopped' }
  | ({ type: 'Failed' } & Failure);

/**
 * What the host must do next:
 * Stage: copy and verify the candidate. StopActive: Recreate's unload. Launch: spawn, handshake, contract.
 * Probe: health probes and soak. Swap: journal intent, flip `current`/`previous`, switch the front.
 * Verify: the post-swap window. Retire: drain and stop the old process, settle the journal, sweep.
 * StopCandidate: kill the candidate. Restore: bring the previous version back (links, front, process).
 */
export type Effect =
  | 'Stage'
  | 'StopActive'
  | 'Launch'
  | 'Probe'
  | 'Swap'
  | 'Verify'
  | 'Retire'
  | 'StopCandidate'
  | 'Restore';

export interface Policy {
  strategy: ActivationStrategy;
  dryRun: boolean;
  verifySeconds: number;
  /** Whether a version is active on the node now (a first install has nothing to keep or restore). */
  hasActive: boolean;
}

export interface Step {
  next: State;
  effect?: Effect;
}

export const isTerminal = (s: State) =>
  s.phase === 'Active' || s.phase === 'Probed' || s.phase === 'RolledBack' || s.phase === 'Failed';

/** A failure before anything changed for clients: reject the candidate, the active version keeps serving. */
function reject(revision: string, failure: Failure, candidateRunning: boolean): Step {
  const next: State = { phase: 'RolledBack', revision, failure, restored: false };
  return candidateRunning
    ? { next: { phase: 'Restoring', revision, failure }, effect: 'StopCandidate' }
    : { next };
}

/** A failure after the active version was touched (swapped or unloaded): restore the previous one. */
function restore(revision: string, failure: Failure, policy: Policy): Step {
  if (!policy.hasActive) return reject(revision, failure, true);
  return { next: { phase: 'Restoring', revision, failure }, effect: 'Restore' };
}

type Phase = State['phase'];
type In<P extends Phase> = Extract<State, { phase: P }>;
/** The next step from one phase; undefined for an observation that makes no sense there. */
type From<P extends Phase> = (state: In<P>, observation: Observation, policy: Policy) => Step | undefined;

const failure = (o: Failure): Failure => ({ reason: o.reason, message: o.message });

const fromPending: From<'Pending'> = (state, observation, policy) => {
  const { revision } = state;
  if (observation.type === 'Start') return { next: state, effect: 'Stage' };
  if (observation.type === 'Staged') {
    const unload = policy.strategy === 'Recreate' && policy.hasActive && !policy.dryRun;
    return { next: { phase: 'Staged', revision, unloaded: false }, effect: unload ? 'StopActive' : 'Launch' };
  }
  if (observation.type === 'Failed') return reject(revision, failure(observation), false);
  return undefined;
};

const fromStaged: From<'Staged'> = (state, observation, policy) => {
  const { revision } = state;
  if (observation.type === 'ActiveStopped') return { next: { ...state, unloaded: true }, effect: 'Launch' };
  if (observation.type === 'Launched') {
    return {
      next: { phase: 'Probing', revision, step: 'candidate', unloaded: state.unloaded },
      effect: 'Probe',
    };
  }
  if (observation.type === 'Failed') {
    // launchPlugin already killed the candidate; an unloaded active version must come back.
    return state.unloaded
      ? restore(revision, failure(observation), policy)
      : reject(revision, failure(observation), false);
  }
  return undefined;
};

const fromProbing: From<'Probing'> = (state, observation, policy) => {
  const { revision } = state;
  if (observation.type === 'Healthy' && state.step === 'candidate') {
    if (policy.dryRun) return { next: { phase: 'Probed', revision }, effect: 'StopCandidate' };
    return { next: { ...state, step: 'swap' }, effect: 'Swap' };
  }
  if (observation.type === 'Swapped' && state.step === 'swap') {
    if (policy.verifySeconds > 0 && policy.hasActive)
      return { next: { ...state, step: 'verify' }, effect: 'Verify' };
    return { next: { phase: 'Active', revision }, effect: 'Retire' };
  }
  if (observation.type === 'Verified' && state.step === 'verify') {
    return { next: { phase: 'Active', revision }, effect: 'Retire' };
  }
  if (observation.type === 'Failed') {
    if (state.step === 'candidate' && !state.unloaded) return reject(revision, failure(observation), true);
    return restore(revision, failure(observation), policy);
  }
  return undefined;
};

const fromRestoring: From<'Restoring'> = (state, observation) => {
  const { revision } = state;
  if (observation.type === 'Restored' || observation.type === 'CandidateStopped') {
    const restored = observation.type === 'Restored';
    return { next: { phase: 'RolledBack', revision, failure: state.failure, restored } };
  }
  if (observation.type === 'Failed') {
    const message = `${state.failure.message} Restoring the previous version failed too: ${observation.message}`;
    return { next: { phase: 'Failed', revision, failure: { reason: NodeReason.RollbackFailed, message } } };
  }
  return undefined;
};

/** What each phase does with an observation; the terminal phases take none. */
const FROM: { [P in Phase]: From<P> } = {
  Pending: fromPending,
  Staged: fromStaged,
  Probing: fromProbing,
  Restoring: fromRestoring,
  Active: (state, observation) => (observation.type === 'Retired' ? { next: state } : undefined),
  Probed: (state, observation) => (observation.type === 'CandidateStopped' ? { next: state } : undefined),
  RolledBack: () => undefined,
  Failed: () => undefined,
};

/**
 * The transition function. An observation that makes no sense in a state (a bug in the host) is
 * answered with Failed/InternalError, never ignored, so it is loud and not mistaken for a plugin's fault.
 */
export function transition(state: State, observation: Observation, policy: Policy): Step {
  const step = (FROM[state.phase] as From<Phase>)(state, observation, policy);
  if (step) return step;
  const message = `The agent saw ${observation.type} while ${state.phase}; this is a bug, please report it.`;
  return {
    next: {
      phase: 'Failed',
      revision: state.revision,
      failure: { reason: NodeReason.InternalError, message },
    },
  };
}
