import { describe, expect, it } from 'vitest';
import {
  type Failure,
  type Observation,
  type Policy,
  type State,
  type Step,
  transition,
} from '../../../src/agent/engine/transition.ts';

const R = 'rev2';
const fail: Failure = { reason: 'ProbeFailed', message: 'grpc probe failed 3 times.' };
const failed: Observation = { type: 'Failed', ...fail };
const tryActivate: Policy = { strategy: 'TryActivate', dryRun: false, verifySeconds: 5, hasActive: true };
const recreate: Policy = { ...tryActivate, strategy: 'Recreate' };
const firstInstall: Policy = { ...tryActivate, hasActive: false };
const dryRun: Policy = { ...tryActivate, dryRun: true };

const pending: State = { phase: 'Pending', revision: R };
const staged: State = { phase: 'Staged', revision: R, unloaded: false };
const stagedUnloaded: State = { phase: 'Staged', revision: R, unloaded: true };
const probing: State = { phase: 'Probing', revision: R, step: 'candidate', unloaded: false };
const probingUnloaded: State = { ...probing, unloaded: true };
const swapping: State = { ...probing, step: 'swap' };
const verifying: State = { ...probing, step: 'verify' };
const restoring: State = { phase: 'Restoring', revision: R, failure: fail };
const rolledBack = (restored: boolean): State => ({
  phase: 'RolledBack',
  revision: R,
  failure: fail,
  restored,
});

const cases: { name: string; given: State; observe: Observation; policy: Policy; want: Step }[] = [
  {
    name: 'a new activation stages first',
    given: pending,
    observe: { type: 'Start' },
    policy: tryActivate,
    want: { next: pending, effect: 'Stage' },
  },
  {
    name: 'TryActivate launches the candidate beside the active version',
    given: pending,
    observe: { type: 'Staged' },
    policy: tryActivate,
    want: { next: staged, effect: 'Launch' },
  },
  {
    name: 'Recreate unloads the active version before launching',
    given: pending,
    observe: { type: 'Staged' },
    policy: recreate,
    want: { next: staged, effect: 'StopActive' },
  },
  {
    name: 'Recreate on a first install has nothing to unload',
    given: pending,
    observe: { type: 'Staged' },
    policy: { ...recreate, hasActive: false },
    want: { next: staged, effect: 'Launch' },
  },
  {
    name: 'a dry run never unloads, even under Recreate',
    given: pending,
    observe: { type: 'Staged' },
    policy: { ...recreate, dryRun: true },
    want: { next: staged, effect: 'Launch' },
  },
  {
    name: 'a staging failure rejects the candidate with nothing to undo',
    given: pending,
    observe: failed,
    policy: tryActivate,
    want: { next: rolledBack(false) },
  },
  {
    name: 'Recreate launches once the old version stopped',
    given: staged,
    observe: { type: 'ActiveStopped' },
    policy: recreate,
    want: { next: stagedUnloaded, effect: 'Launch' },
  },
  {
    name: 'a launched candidate is probed',
    given: staged,
    observe: { type: 'Launched' },
    policy: tryActivate,
    want: { next: probing, effect: 'Probe' },
  },
  {
    name: 'a failed launch is rejected (the runtime already killed it)',
    given: staged,
    observe: failed,
    policy: tryActivate,
    want: { next: rolledBack(false) },
  },
  {
    name: 'a failed launch under Recreate restores the unloaded version',
    given: stagedUnloaded,
    observe: failed,
    policy: recreate,
    want: { next: restoring, effect: 'Restore' },
  },
  {
    name: 'a healthy candidate is swapped in',
    given: probing,
    observe: { type: 'Healthy' },
    policy: tryActivate,
    want: { next: swapping, effect: 'Swap' },
  },
  {
    name: 'a healthy candidate in a dry run is stopped and reported Probed',
    given: probing,
    observe: { type: 'Healthy' },
    policy: dryRun,
    want: { next: { phase: 'Probed', revision: R }, effect: 'StopCandidate' },
  },
  {
    name: 'an unhealthy candidate is stopped while the active version keeps serving',
    given: probing,
    observe: failed,
    policy: tryActivate,
    want: { next: restoring, effect: 'StopCandidate' },
  },
  {
    name: 'an unhealthy candidate under Recreate restores the unloaded version',
    given: probingUnloaded,
    observe: failed,
    policy: recreate,
    want: { next: restoring, effect: 'Restore' },
  },
  {
    name: 'after the swap the verification window runs',
    given: swapping,
    observe: { type: 'Swapped' },
    policy: tryActivate,
    want: { next: verifying, effect: 'Verify' },
  },
  {
    name: 'with no verification window the swap makes it Active',
    given: swapping,
    observe: { type: 'Swapped' },
    policy: { ...tryActivate, verifySeconds: 0 },
    want: { next: { phase: 'Active', revision: R }, effect: 'Retire' },
  },
  {
    name: 'a first install has nothing to fall back to, so it skips verification',
    given: swapping,
    observe: { type: 'Swapped' },
    policy: firstInstall,
    want: { next: { phase: 'Active', revision: R }, effect: 'Retire' },
  },
  {
    name: 'a failed swap restores the previous version',
    given: swapping,
    observe: failed,
    policy: tryActivate,
    want: { next: restoring, effect: 'Restore' },
  },
  {
    name: 'a verified candidate becomes Active and the old one retires',
    given: verifying,
    observe: { type: 'Verified' },
    policy: tryActivate,
    want: { next: { phase: 'Active', revision: R }, effect: 'Retire' },
  },
  {
    name: 'a failed verification restores the previous version',
    given: verifying,
    observe: failed,
    policy: tryActivate,
    want: { next: restoring, effect: 'Restore' },
  },
  {
    name: 'a failed verification on a first install stops the candidate',
    given: verifying,
    observe: failed,
    policy: firstInstall,
    want: { next: restoring, effect: 'StopCandidate' },
  },
  {
    name: 'a completed restore is RolledBack with the previous version restored',
    given: restoring,
    observe: { type: 'Restored' },
    policy: tryActivate,
    want: { next: rolledBack(true) },
  },
  {
    name: 'a stopped candidate is RolledBack with nothing to restore',
    given: restoring,
    observe: { type: 'CandidateStopped' },
    policy: tryActivate,
    want: { next: rolledBack(false) },
  },
  {
    name: 'a retired old version leaves the node Active',
    given: { phase: 'Active', revision: R },
    observe: { type: 'Retired' },
    policy: tryActivate,
    want: { next: { phase: 'Active', revision: R } },
  },
  {
    name: 'a stopped dry-run candidate leaves the node Probed',
    given: { phase: 'Probed', revision: R },
    observe: { type: 'CandidateStopped' },
    policy: dryRun,
    want: { next: { phase: 'Probed', revision: R } },
  },
];

describe('transition', () => {
  it.each(cases)('$name', ({ given, observe, policy, want }) => {
    expect(transition(given, observe, policy)).toEqual(want);
  });

  it('ends in Failed with RollbackFailed when even the restore fails, keeping both messages', () => {
    const step = transition(
      restoring,
      { type: 'Failed', reason: 'SpawnFailed', message: 'old binary gone.' },
      tryActivate,
    );
    expect(step.effect).toBeUndefined();
    expect(step.next).toMatchObject({ phase: 'Failed', failure: { reason: 'RollbackFailed' } });
    expect((step.next as { failure: Failure }).failure.message).toContain('grpc probe failed');
    expect((step.next as { failure: Failure }).failure.message).toContain('old binary gone');
  });

  const nonsense: { name: string; given: State; observe: Observation }[] = [
    { name: 'Swapped while only staged', given: staged, observe: { type: 'Swapped' } },
    { name: 'Healthy after verification started', given: verifying, observe: { type: 'Healthy' } },
    { name: 'anything once RolledBack', given: rolledBack(false), observe: { type: 'Start' } },
  ];
  it.each(nonsense)(
    'answers an impossible observation ($name) with a loud Failed/InternalError, not silence',
    ({ given, observe }) => {
      expect(transition(given, observe, tryActivate).next).toMatchObject({
        phase: 'Failed',
        failure: { reason: 'InternalError' },
      });
    },
  );
});
