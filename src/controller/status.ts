// Release status aggregation: a pure function from a plan to the status it should show and the
// Events worth recording. Conditions go through src/runtime/conditions.ts.
import {
  Annotations,
  type Condition,
  ConditionType,
  EventReason,
  type FailedNode,
  type HistoryEntry,
  MAX_FAILED_NODES,
  MAX_HISTORY,
  type NodeCounts,
  NodeReason,
  type NodeRunSpec,
  type PluginActivation,
  type PluginRelease,
  type PluginReleaseStatus,
  type ReleasePhase,
  ReleaseReason,
  type RevisionOutcome,
} from '../api/index.ts';
import {
  type ConditionInput,
  clearProgress,
  findCondition,
  markReconciling,
  markStalled,
  removeCondition,
  setCondition,
} from '../runtime/conditions.ts';
import type { Plan, Verdict } from './planner.ts';

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface StatusResult {
  status: PluginReleaseStatus;
  events: PlannedEvent[];
}

/**
 * What each verdict shows: the release phase, the history outcome, and which kstatus condition
 * stands beside Ready (Reconciling while the rollout goes on by itself, Stalled when it needs a
 * person, neither once it is done). A dry run reads some of them differently.
 */
const VERDICT_STATES: Record<Verdict['kind'], VerdictState & { dryRun?: Partial<VerdictState> }> = {
  conflict: { phase: 'Stalled', outcome: 'Halted', progress: 'stalled' },
  noNodes: { phase: 'Pending', outcome: 'Progressing', progress: 'reconciling' },
  halted: { phase: 'Stalled', outcome: 'Halted', progress: 'stalled', dryRun: { outcome: 'Probed' } },
  rollingBackFleet: { phase: 'Stalled', outcome: 'RolledBack', progress: 'stalled' },
  aborted: { phase: 'Stalled', outcome: 'Aborted', progress: 'stalled' },
  complete: {
    phase: 'Ready',
    outcome: 'Complete',
    progress: 'done',
    dryRun: { phase: 'Probed', outcome: 'Probed' },
  },
  paused: { phase: 'Paused', outcome: 'Progressing', progress: 'reconciling' },
  progressing: { phase: 'Progressing', outcome: 'Progressing', progress: 'reconciling' },
};

interface VerdictState {
  phase: ReleasePhase;
  outcome: RevisionOutcome;
  progress: 'reconciling' | 'stalled' | 'done';
}

/** The verdict's state for a release that is (or is not) a dry run. */
function verdictState(verdict: Verdict['kind'], dryRun: boolean): VerdictState {
  const { dryRun: asDryRun, ...state } = VERDICT_STATES[verdict];
  return dryRun ? { ...state, ...asDryRun } : state;
}

/** What the Ready condition says about a plan: the facts its messages are made of, gathered once. */
interface Facts {
  name: string | undefined;
  spec: PluginRelease['spec'];
  plan: Plan;
  counts: NodeCounts;
  failedNodes: FailedNode[];
  /** `serving/targets`, as a DaemonSet's READY. */
  ready: string;
  /** `upToDate/targets` (probed, in a dry run). */
  upToDate: string;
  /** The first three failures, with their reasons. */
  failureSummary: string;
}

/** The status `plan` implies for `release`, and the Events that mark what changed since its last status. */
export function releaseStatus(release: PluginRelease, plan: Plan, now: Date): StatusResult {
  const previous = release.status ?? {};
  const generation = release.metadata.generation ?? 0;
  const spec = release.spec;
  const counts = countNodes(plan);
  const failedNodes = plan.nodes
    .flatMap((n) => (n.kind === 'failed' ? [n.failure] : []))
    .slice(0, MAX_FAILED_NODES);
  const facts: Facts = {
    name: release.metadata.name,
    spec,
    plan,
    counts,
    failedNodes,
    // What serves, as a DaemonSet's READY counts ready pods of any revision: the truth for a halted release.
    ready: `${counts.serving}/${plan.targets.length}`,
    upToDate: `${spec.dryRun ? counts.probed : counts.upToDate}/${plan.targets.length}`,
    failureSummary: failedNodes
      .slice(0, 3)
      .map((f) => `${f.node} (${f.reason}: ${firstSentence(f.message)})`)
      .join('; '),
  };
  const state = verdictState(plan.verdict.kind, spec.dryRun);
  const ready = readyCondition(facts);
  const set = (conditions: Condition[], input: ConditionInput | undefined, type: string) =>
    input ? setCondition(conditions, input, generation, now) : removeCondition(conditions, type);
  let conditions = progressConditions(previous.conditions ?? [], state.progress, ready, generation, now);
  conditions = set(conditions, ready, ConditionType.Ready);
  conditions = set(conditions, rolledBackCondition(facts), ConditionType.RolledBack);
  conditions = set(conditions, probedCondition(facts), ConditionType.Probed);

  const retryAt = release.metadata.annotations?.[Annotations.retryAt];
  const history = nextHistory(previous.history ?? [], {
    revision: plan.revision,
    outcome: state.outcome,
    message: firstSentence(ready.message, 1024),
    nodeRun: nodeRunOf(spec),
    now,
  });
  const status: PluginReleaseStatus = {
    observedGeneration: generation,
    revision: plan.revision,
    phase: state.phase,
    ready: facts.ready,
    nodes: counts,
    failedNodes,
    history,
    ...(retryAt !== undefined ? { retryAt } : {}),
    conditions,
  };
  return { status, events: eventsBetween(previous, status, plan) };
}

/** kstatus beside Ready: Reconciling or Stalled (each excluding the other) with Ready's reason, or neither. */
function progressConditions(
  conditions: Condition[],
  progress: VerdictState['progress'],
  ready: ConditionInput,
  generation: number,
  now: Date,
): Condition[] {
  if (progress === 'done') return clearProgress(conditions);
  const mark = progress === 'stalled' ? markStalled : markReconciling;
  return mark(conditions, ready.reason, ready.message, generation, now);
}

/** The Ready condition of each verdict: True once complete, else False with what to do about it. */
function readyCondition(f: Facts): ConditionInput {
  const { spec, plan, name } = f;
  const v = plan.verdict;
  const ready = (status: Condition['status'], reason: string, message: string): ConditionInput => ({
    type: ConditionType.Ready,
    status,
    reason,
    message,
  });
  const notReady = (reason: string, message: string) => ready('False', reason, message);
  const retryHint = `Fix the cause and apply a new version, or retry with \`kubectl pluginrelease retry ${name}\` (sets ${Annotations.retryAt}).`;
  // A node past its deadline has not said no: when its agent reports, the rollout goes on by itself.
  const lateHint = f.failedNodes.some((n) => n.reason === ReleaseReason.ProgressDeadlineExceeded)
    ? ' A node that exceeded the progress deadline rejoins the rollout by itself if its agent reports a result.'
    : '';
  switch (v.kind) {
    case 'conflict':
      return notReady(
        ReleaseReason.PluginConflict,
        `Plugin "${spec.plugin}" is already released on ${v.nodes.length} of the targeted nodes by the older PluginRelease ${v.winner}; narrow spec.rollout.nodeSelector or delete one of them.`,
      );
    case 'noNodes':
      return notReady(
        ReleaseReason.NoMatchingNodes,
        `No node matches spec.rollout.nodeSelector ${JSON.stringify(spec.rollout.nodeSelector)}; waiting for one to join.`,
      );
    case 'halted':
      if (spec.dryRun) {
        const rejected = f.counts.rolledBack + f.counts.failed;
        return notReady(
          ReleaseReason.DryRunFailed,
          `Dry run of revision ${plan.revision} failed on ${rejected} node(s): ${f.failureSummary}. ${retryHint}`,
        );
      }
      return notReady(
        ReleaseReason.RolloutHalted,
        `Rollout of revision ${plan.revision} halted: ${f.failedNodes.length} node(s) did not activate: ${f.failureSummary}. ${servingWhereFailed(plan)}${lateHint} ${retryHint}`,
      );
    case 'rollingBackFleet':
      return notReady(
        ReleaseReason.FleetRolledBack,
        `Revision ${plan.revision} failed on ${f.failedNodes.length} node(s): ${f.failureSummary}; failurePolicy RollbackFleet returns every node to its previous revision.${lateHint} ${retryHint}`,
      );
    case 'aborted':
      return notReady(
        ReleaseReason.RolloutAborted,
        `Rollout of revision ${plan.revision} was aborted (${Annotations.abort}): it starts on no further node, and every node it reached returns to the revision it served before (${f.ready} serving). Apply another version, undo (\`kubectl pluginrelease undo ${name}\`), or try this revision again with \`kubectl pluginrelease retry ${name}\`.`,
      );
    case 'complete':
      return spec.dryRun
        ? ready(
            'True',
            ReleaseReason.DryRunPassed,
            `Revision ${plan.revision} passed its probes on all ${plan.targets.length} node(s); nothing was swapped.`,
          )
        : ready(
            'True',
            ReleaseReason.RolloutComplete,
            `Revision ${plan.revision} (version ${spec.version}) is active on all ${plan.targets.length} node(s).`,
          );
    case 'paused':
      if (v.byCanary) {
        return notReady(
          ReleaseReason.CanaryPaused,
          `The ${spec.rollout.canary.nodes} canary node(s) run revision ${plan.revision}; promote it to continue: \`kubectl pluginrelease promote ${name}\` (sets the annotation ${Annotations.promote}=${plan.revision}; the spec is untouched).`,
        );
      }
      return notReady(
        ReleaseReason.RolloutPaused,
        `Rollout paused with ${f.upToDate} node(s) on revision ${plan.revision}; set spec.rollout.paused to false (in Git, or \`kubectl pluginrelease resume ${name}\`) to continue.`,
      );
    case 'progressing': {
      const inFlight = plan.nodes.filter((n) => n.kind === 'inFlight').length;
      return notReady(
        spec.dryRun ? ReleaseReason.DryRunProgressing : ReleaseReason.RolloutProgressing,
        `${spec.dryRun ? 'Probing' : 'Rolling out'} revision ${plan.revision}: ${f.upToDate} node(s) done, ${inFlight} in progress.`,
      );
    }
  }
}

/** What still serves on the failed nodes: the previous version where there was one. */
function servingWhereFailed(plan: Plan): string {
  const failed = plan.nodes.filter((n) => n.kind === 'failed');
  const kept = failed.filter((n) => n.activation.status?.activeRevision !== undefined).length;
  if (kept === failed.length) return 'The previous version keeps serving there.';
  if (kept === 0)
    return 'No earlier version was installed there, so nothing serves the plugin on those nodes.';
  return 'The previous version keeps serving where there was one; the others serve nothing.';
}

/** RolledBack=True while a node rejected or reverted the revision (not in a dry run, which swaps nothing). */
function rolledBackCondition(f: Facts): ConditionInput | undefined {
  const fleet = f.plan.verdict.kind === 'rollingBackFleet';
  if (f.spec.dryRun || (f.counts.rolledBack + f.counts.failed === 0 && !fleet)) return undefined;
  return {
    type: ConditionType.RolledBack,
    status: 'True',
    reason: fleet
      ? ReleaseReason.FleetRolledBack
      : f.counts.failed > 0
        ? ReleaseReason.NodeFailed
        : ReleaseReason.NodeRolledBack,
    message: `Revision ${f.plan.revision} was rejected or reverted on ${f.failedNodes.length} node(s): ${f.failureSummary}.`,
  };
}

/** A dry run's own verdict: Probed True once every node passed, False once one failed, else Unknown. */
function probedCondition(f: Facts): ConditionInput | undefined {
  if (!f.spec.dryRun) return undefined;
  const kind = f.plan.verdict.kind;
  const [status, reason] =
    kind === 'complete'
      ? (['True', ReleaseReason.DryRunPassed] as const)
      : kind === 'halted'
        ? (['False', ReleaseReason.DryRunFailed] as const)
        : (['Unknown', ReleaseReason.DryRunProgressing] as const);
  return {
    type: ConditionType.Probed,
    status,
    reason,
    message: `${f.counts.probed}/${f.plan.targets.length} node(s) passed the probes of revision ${f.plan.revision}.`,
  };
}

function countNodes(plan: Plan): NodeCounts {
  const counts: NodeCounts = {
    total: plan.targets.length,
    pending: 0,
    staged: 0,
    probing: 0,
    active: 0,
    rolledBack: 0,
    failed: 0,
    probed: 0,
    unavailable: 0,
    serving: 0,
    upToDate: 0,
  };
  for (const n of plan.nodes) {
    // What serves comes from the node's own report, whatever attempt it is on.
    const serving = servingRevision(n.activation);
    if (serving !== undefined) counts.serving++;
    if (serving === plan.revision) counts.upToDate++;
    if (n.kind === 'outdated') {
      // Not yet (or no longer) on this revision: counted by what its activation last reported.
      const observed = n.activation?.status?.observedGeneration === (n.activation?.metadata.generation ?? 0);
      if (observed && n.activation?.status?.phase === 'Active') counts.active++;
      else counts.pending++;
    } else if (n.kind === 'failed') {
      if (n.failure.phase === 'RolledBack') counts.rolledBack++;
      else counts.failed++;
    } else if (n.kind === 'done') {
      if (n.activation.spec.dryRun) counts.probed++;
      else if (n.activation.spec.rollbackTo) counts.rolledBack++;
      else {
        counts.active++;
        if (isDown(n.activation)) counts.unavailable++;
      }
    } else if (n.phase === 'Staged') counts.staged++;
    else if (n.phase === 'Probing') counts.probing++;
    else counts.pending++;
  }
  return counts;
}

/** The agent supervises the active process: while it is down (PluginDown) the node serves nothing. */
function isDown(activation: PluginActivation): boolean {
  return findCondition(activation.status?.conditions, ConditionType.Ready)?.reason === NodeReason.PluginDown;
}

/** The revision the node reports serving, if its process is up. */
function servingRevision(activation: PluginActivation | undefined): string | undefined {
  const active = activation?.status?.activeRevision;
  return active !== undefined && !isDown(activation!) ? active : undefined;
}

/** What the nodes run for this spec: the fields `undo` writes back. */
function nodeRunOf(spec: PluginRelease['spec']): NodeRunSpec {
  const { version, runtime, host, artifact, config, handshake, health, serve, process, activation } = spec;
  return {
    version,
    runtime,
    ...(host ? { host } : {}),
    ...(artifact ? { artifact } : {}),
    ...(config ? { config } : {}),
    handshake,
    health,
    serve,
    process,
    activation,
  };
}

interface HistoryUpdate {
  revision: string;
  outcome: RevisionOutcome;
  message: string | undefined;
  nodeRun: NodeRunSpec;
  now: Date;
}

const FINAL: ReadonlySet<RevisionOutcome> = new Set([
  'Complete',
  'Halted',
  'RolledBack',
  'Probed',
  'Aborted',
]);

/**
 * Newest first, one entry per revision (as a DaemonSet keeps one ControllerRevision per template): a new
 * revision supersedes the open entry and goes on top with the next number; a revision applied again
 * moves to the top with a new number. The top entry tracks the outcome; `finishedAt` is when it last
 * reached a final outcome, and stays through a retry.
 */
export function nextHistory(history: readonly HistoryEntry[], u: HistoryUpdate): HistoryEntry[] {
  const at = u.now.toISOString();
  const [top, ...rest] = history;
  const message = u.message !== undefined ? { message: u.message } : {};
  if (top?.revision === u.revision && top.version === u.nodeRun.version) {
    const finished = FINAL.has(u.outcome) && top.outcome !== u.outcome ? { finishedAt: at } : {};
    return [{ ...top, outcome: u.outcome, ...message, ...finished, nodeRun: u.nodeRun }, ...rest];
  }
  const number = Math.max(0, ...history.map((h) => h.number ?? 0)) + 1;
  const older = (top ? [supersede(top, u), ...rest] : []).filter((h) => h.revision !== u.revision);
  const entry: HistoryEntry = {
    number,
    revision: u.revision,
    version: u.nodeRun.version,
    outcome: u.outcome,
    startedAt: at,
    ...(FINAL.has(u.outcome) ? { finishedAt: at } : {}),
    ...message,
    nodeRun: u.nodeRun,
  };
  return [entry, ...older].slice(0, MAX_HISTORY);
}

function supersede(entry: HistoryEntry, by: HistoryUpdate): HistoryEntry {
  if (entry.outcome !== 'Progressing') return entry;
  return {
    ...entry,
    outcome: 'Superseded',
    finishedAt: by.now.toISOString(),
    message: `Superseded by revision ${by.revision} (version ${by.nodeRun.version}) before it completed.`,
  };
}

function eventsBetween(before: PluginReleaseStatus, after: PluginReleaseStatus, plan: Plan): PlannedEvent[] {
  const events: PlannedEvent[] = [];
  if (before.history?.[0]?.revision !== after.revision && plan.verdict.kind !== 'conflict') {
    events.push({
      type: 'Normal',
      reason: EventReason.RolloutStarted,
      message: `Rolling out revision ${after.revision} to ${plan.targets.length} node(s).`,
    });
  }
  const activatedBefore = before.revision === after.revision ? (before.nodes?.active ?? 0) : 0;
  const activatedNow = after.nodes?.active ?? 0;
  if (activatedNow > activatedBefore) {
    const newest = plan.nodes
      .flatMap((n) => (n.kind === 'done' && !n.activation.spec.dryRun ? [n] : []))
      .sort((a, b) =>
        (b.activation.status?.lastTransitionTime ?? '').localeCompare(
          a.activation.status?.lastTransitionTime ?? '',
        ),
      )
      .slice(0, activatedNow - activatedBefore)
      .map((n) => n.node)
      .sort();
    events.push({
      type: 'Normal',
      reason: EventReason.NodeActivated,
      message: `Revision ${after.revision} is active on ${newest.join(', ')} (${after.ready}).`,
    });
  }
  const knownFailures = new Set(
    before.revision === after.revision ? (before.failedNodes ?? []).map((f) => f.node) : [],
  );
  for (const f of after.failedNodes ?? []) {
    if (knownFailures.has(f.node)) continue;
    events.push({
      type: 'Warning',
      reason: f.phase === 'Failed' ? EventReason.NodeFailed : EventReason.NodeRolledBack,
      message: `${f.node}: ${f.reason}: ${firstSentence(f.message)}`,
    });
  }
  const reasonBefore = readyReason(before.conditions);
  const reasonAfter = readyReason(after.conditions);
  if (reasonAfter !== reasonBefore || before.revision !== after.revision) {
    const ready = findCondition(after.conditions, ConditionType.Ready);
    if (reasonAfter === ReleaseReason.RolloutComplete || reasonAfter === ReleaseReason.DryRunPassed) {
      events.push({
        type: 'Normal',
        reason:
          reasonAfter === ReleaseReason.DryRunPassed
            ? EventReason.DryRunComplete
            : EventReason.RolloutComplete,
        message: ready?.message ?? '',
      });
    } else if (reasonAfter === ReleaseReason.RolloutAborted) {
      events.push({ type: 'Warning', reason: EventReason.RolloutAborted, message: ready?.message ?? '' });
    } else if (reasonAfter === ReleaseReason.FleetRolledBack) {
      events.push({
        type: 'Warning',
        reason: EventReason.FleetRollbackStarted,
        message: ready?.message ?? '',
      });
    } else if (
      reasonAfter === ReleaseReason.RolloutHalted ||
      reasonAfter === ReleaseReason.DryRunFailed ||
      reasonAfter === ReleaseReason.PluginConflict
    ) {
      events.push({ type: 'Warning', reason: EventReason.RolloutHalted, message: ready?.message ?? '' });
    }
  }
  const stalledBefore = findCondition(before.conditions, ConditionType.Stalled)?.status === 'True';
  const stalledAfter = findCondition(after.conditions, ConditionType.Stalled)?.status === 'True';
  if (stalledBefore && !stalledAfter && before.revision === after.revision) {
    events.push({
      type: 'Normal',
      reason: EventReason.RolloutResumed,
      message: `Revision ${after.revision} is no longer stalled: ${findCondition(after.conditions, ConditionType.Ready)?.message ?? ''}`,
    });
  }
  return events;
}

function readyReason(conditions: readonly Condition[] | undefined): string | undefined {
  return findCondition(conditions, ConditionType.Ready)?.reason;
}

function firstSentence(message: string, max = 200): string {
  const line = message.split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}
