// Release status aggregation: a pure function from a plan to the status it should show and the
// Events worth recording. Conditions go through src/runtime/conditions.ts.
import {
  type Condition,
  ConditionType,
  EventReason,
  type HistoryEntry,
  MAX_FAILED_NODES,
  MAX_HISTORY,
  type NodeCounts,
  NodeReason,
  type PluginRelease,
  type PluginReleaseStatus,
  type ReleasePhase,
  ReleaseReason,
  type RevisionOutcome,
} from '../api/index.ts';
import {
  clearProgress,
  findCondition,
  markReconciling,
  markStalled,
  removeCondition,
  setCondition,
} from '../runtime/conditions.ts';
import type { Plan } from './planner.ts';

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface StatusResult {
  status: PluginReleaseStatus;
  events: PlannedEvent[];
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
  const done = spec.dryRun ? counts.probed : counts.active - counts.unavailable;
  const ready = `${done}/${plan.targets.length}`;
  const v = plan.verdict;

  let conditions: Condition[] = previous.conditions ?? [];
  let phase: ReleasePhase;
  let outcome: RevisionOutcome;
  const set = (type: string, status: Condition['status'], reason: string, message: string) => {
    conditions = setCondition(conditions, { type, status, reason, message }, generation, now);
  };
  const progressing = (reason: string, message: string) => {
    conditions = markReconciling(conditions, reason, message, generation, now);
    set(ConditionType.Ready, 'False', reason, message);
  };
  const stalled = (reason: string, message: string) => {
    conditions = markStalled(conditions, reason, message, generation, now);
    set(ConditionType.Ready, 'False', reason, message);
  };
  const failureSummary = failedNodes
    .slice(0, 3)
    .map((f) => `${f.node} (${f.reason}: ${firstSentence(f.message)})`)
    .join('; ');
  const retryHint = `Fix the cause and apply a new version, or retry with \`kubectl annotate plr ${release.metadata.name} ${'pluginrelease.io/retry-at'}=$(date +%s) --overwrite\`.`;

  switch (v.kind) {
    case 'conflict':
      phase = 'Stalled';
      outcome = 'Halted';
      stalled(
        ReleaseReason.PluginConflict,
        `Plugin "${spec.plugin}" is already released on ${v.nodes.length} of the targeted nodes by the older PluginRelease ${v.winner}; narrow spec.rollout.nodeSelector or delete one of them.`,
      );
      break;
    case 'noNodes':
      phase = 'Pending';
      outcome = 'Progressing';
      progressing(
        ReleaseReason.NoMatchingNodes,
        `No node matches spec.rollout.nodeSelector ${JSON.stringify(spec.rollout.nodeSelector)}; waiting for one to join.`,
      );
      break;
    case 'halted':
      phase = 'Stalled';
      outcome = spec.dryRun ? 'Probed' : 'Halted';
      if (spec.dryRun) {
        stalled(
          ReleaseReason.DryRunFailed,
          `Dry run of revision ${plan.revision} failed on ${counts.rolledBack + counts.failed} node(s): ${failureSummary}. ${retryHint}`,
        );
      } else {
        stalled(
          ReleaseReason.RolloutHalted,
          `Rollout of revision ${plan.revision} halted: ${failedNodes.length} node(s) did not activate: ${failureSummary}. The previous version keeps serving there. ${retryHint}`,
        );
      }
      break;
    case 'rollingBackFleet':
      phase = 'Stalled';
      outcome = 'RolledBack';
      stalled(
        ReleaseReason.FleetRolledBack,
        `Revision ${plan.revision} failed on ${failedNodes.length} node(s): ${failureSummary}; failurePolicy RollbackFleet returns every node to its previous revision. ${retryHint}`,
      );
      break;
    case 'complete':
      phase = spec.dryRun ? 'Probed' : 'Ready';
      outcome = spec.dryRun ? 'Probed' : 'Complete';
      conditions = clearProgress(conditions);
      set(
        ConditionType.Ready,
        'True',
        spec.dryRun ? ReleaseReason.DryRunPassed : ReleaseReason.RolloutComplete,
        spec.dryRun
          ? `Revision ${plan.revision} passed its probes on all ${plan.targets.length} node(s); nothing was swapped.`
          : `Revision ${plan.revision} (version ${spec.version}) is active on all ${plan.targets.length} node(s).`,
      );
      break;
    case 'paused':
      phase = 'Paused';
      outcome = 'Progressing';
      progressing(
        v.byCanary ? ReleaseReason.CanaryPaused : ReleaseReason.RolloutPaused,
        v.byCanary
          ? `The ${spec.rollout.canary.nodes} canary node(s) run revision ${plan.revision}; set spec.rollout.canary.pauseAfter to false (kubectl pluginrelease resume) to continue.`
          : `Rollout paused at ${ready} nodes; set spec.rollout.paused to false (kubectl pluginrelease resume) to continue.`,
      );
      break;
    case 'progressing':
      phase = 'Progressing';
      outcome = 'Progressing';
      progressing(
        spec.dryRun ? ReleaseReason.DryRunProgressing : ReleaseReason.RolloutProgressing,
        `${spec.dryRun ? 'Probing' : 'Rolling out'} revision ${plan.revision}: ${ready} node(s) done, ${counts.pending + counts.staged + counts.probing} in progress.`,
      );
      break;
  }

  const rolledBack = counts.rolledBack + counts.failed > 0 || v.kind === 'rollingBackFleet';
  if (rolledBack && !spec.dryRun) {
    set(
      ConditionType.RolledBack,
      'True',
      v.kind === 'rollingBackFleet'
        ? ReleaseReason.FleetRolledBack
        : counts.failed > 0
          ? ReleaseReason.NodeFailed
          : ReleaseReason.NodeRolledBack,
      `Revision ${plan.revision} was rejected or reverted on ${failedNodes.length} node(s): ${failureSummary}.`,
    );
  } else {
    conditions = removeCondition(conditions, ConditionType.RolledBack);
  }
  if (spec.dryRun) {
    const verdict = v.kind === 'complete' ? 'True' : v.kind === 'halted' ? 'False' : 'Unknown';
    set(
      ConditionType.Probed,
      verdict,
      verdict === 'True'
        ? ReleaseReason.DryRunPassed
        : verdict === 'False'
          ? ReleaseReason.DryRunFailed
          : ReleaseReason.DryRunProgressing,
      `${counts.probed}/${plan.targets.length} node(s) passed the probes of revision ${plan.revision}.`,
    );
  } else {
    conditions = removeCondition(conditions, ConditionType.Probed);
  }

  const history = nextHistory(previous.history ?? [], plan.revision, spec.version, outcome, now);
  const retryAt = release.metadata.annotations?.['pluginrelease.io/retry-at'];
  const status: PluginReleaseStatus = {
    observedGeneration: generation,
    revision: plan.revision,
    phase,
    ready,
    nodes: counts,
    failedNodes,
    history,
    ...(retryAt !== undefined ? { retryAt } : {}),
    conditions,
  };
  return { status, events: eventsBetween(previous, status, plan) };
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
  };
  for (const n of plan.nodes) {
    if (n.kind === 'outdated') counts.pending++;
    else if (n.kind === 'failed') {
      if (n.failure.phase === 'RolledBack') counts.rolledBack++;
      else counts.failed++;
    } else if (n.kind === 'done') {
      if (n.activation.spec.dryRun) counts.probed++;
      else if (n.activation.spec.rollbackTo) counts.rolledBack++;
      else {
        counts.active++;
        // The agent supervises the active process: while it is down the node serves nothing.
        if (
          findCondition(n.activation.status?.conditions, ConditionType.Ready)?.reason ===
          NodeReason.PluginDown
        )
          counts.unavailable++;
      }
    } else if (n.phase === 'Staged') counts.staged++;
    else if (n.phase === 'Probing') counts.probing++;
    else counts.pending++;
  }
  return counts;
}

/** Newest first: a new revision opens an entry and supersedes the open one; the top entry tracks the outcome. */
function nextHistory(
  history: readonly HistoryEntry[],
  revision: string,
  version: string,
  outcome: RevisionOutcome,
  now: Date,
): HistoryEntry[] {
  const at = now.toISOString();
  const [top, ...rest] = history;
  if (top?.revision === revision && top.version === version) {
    if (top.outcome === outcome) return [...history];
    const { finishedAt: _, ...open } = top;
    const entry: HistoryEntry = outcome === 'Progressing' ? open : { ...open, outcome, finishedAt: at };
    return [entry, ...rest];
  }
  const older = top
    ? [
        top.outcome === 'Progressing' ? { ...top, outcome: 'Superseded' as const, finishedAt: at } : top,
        ...rest,
      ]
    : [];
  const entry: HistoryEntry =
    outcome === 'Progressing'
      ? { revision, version, outcome, startedAt: at }
      : { revision, version, outcome, startedAt: at, finishedAt: at };
  return [entry, ...older].slice(0, MAX_HISTORY);
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
    const ready = after.conditions?.find((c) => c.type === ConditionType.Ready);
    if (reasonAfter === ReleaseReason.RolloutComplete || reasonAfter === ReleaseReason.DryRunPassed) {
      events.push({
        type: 'Normal',
        reason:
          reasonAfter === ReleaseReason.DryRunPassed
            ? EventReason.DryRunComplete
            : EventReason.RolloutComplete,
        message: ready?.message ?? '',
      });
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
  return events;
}

function readyReason(conditions: readonly Condition[] | undefined): string | undefined {
  return conditions?.find((c) => c.type === ConditionType.Ready)?.reason;
}

function firstSentence(message: string): string {
  const line = message.split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
