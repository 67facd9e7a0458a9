// Domain-free controller machinery: work queue, reconcile results, leader election, clock, conditions,
// errors, and the last status each writer wrote.
//
// Contracts in brief (details on each export):
// - WorkQueue: keys are `namespace/name`; a key is never processed by two workers at once; a thrown
//   error → per-key exponential backoff (max with an overall token bucket); TerminalError (thrown after
//   the status says why, e.g. an invalid spec) → no retry; `{ requeueAfterMs }` → processed again after
//   that long; shutdown() drains in-flight handlers.
// - WrittenStatus: read-your-own-writes for a status writer whose cache lags behind its writes.
// - LeaderElector: campaigns over a LeaseLock (src/kube KubeLeaseLock implements it); only the leader
//   runs onStartedLeading's work; a graceful stop releases the lease for a fast takeover.
// - Clock/Timers/sleep: injected time, so tests run on fake timers.
export { type Clock, sleep, systemClock, systemTimers, type TimerHandle, type Timers } from './clock.ts';
export { forEachLimited } from './concurrency.ts';
export * from './conditions.ts';
export { PluginReleaseError, TerminalError } from './errors.ts';
export {
  LeaderElector,
  type LeaderElectorOptions,
  type LeaseLock,
  type LeaseRecord,
  type LeaseSnapshot,
} from './leader.ts';
export {
  ItemExponentialBackoff,
  type ProcessOutcome,
  type ReconcileHandler,
  type RunOptions,
  type ShutdownOptions,
  TokenBucket,
  WorkQueue,
  type WorkQueueOptions,
} from './queue.ts';
export { done, type ReconcileResult, requeueAfter } from './reconcile.ts';
export { type StatusHolder, WrittenStatus } from './written-status.ts';
