// Release status aggregation: a pure function from a plan to the status it should show and the
// Events worth recording. Conditions go through src/runtime/conditions.ts.
import {
  Annotations,
  type Condition,
  ConditionType,
  EventReason,
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
  const failed = plan.nodes.flatMap((n) => (n.kind === 'failed' ? [n] : []));
  const failedNodes = failed.map((n) => n.failure).slice(0, MAX_FAILED_NODES);
  // What serves, as a DaemonSet's READY counts ready pods of any revision: the truth for a halted release.
  const ready = `${counts.serving}/${plan.targets.length}`;
  const upToDate = `${spec.dryRun ? counts.probed : counts.upToDate}/${plan.targets.length}`;
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
  const retryHint = `Fix the cause and apply a new version, or retry with \`kubectl pluginrelease retry ${release.metadata.name}\` (sets ${Annotations.retryAt}).`;
  // A node past its deadline has not said no: when its agent reports, the rollout goes on by itself.
  const lateHint = failedNodes.some((f) => f.reason === ReleaseReason.ProgressDeadlineExceeded)
    ? ' A node that exceeded the progress deadline rejoins the rollout by itself if its agent reports a result.'
    : '';
  const kept = failed.filter((n) => n.activation.status?.activeRevision !== undefined).length;
  const serving =
    kept === failed.length
      ? 'The previous version keeps serving there.'
      : kept === 0
        ? 'No earlier version was installed there, so nothing serves the plugin on those nodes.'
        : 'The previous version keeps serving where there was one; the others serve nothing.';

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
          `Rollout of revision ${plan.revision} halted: ${failedNodes.length} node(s) did not activate: ${failureSummary}. ${serving}${lateHint} ${retryHint}`,
        );
      }
      break;
    case 'rollingBackFleet':
      phase = 'Stalled';
      outcome = 'RolledBack';
      stalled(
        ReleaseReason.FleetRolledBack,
        `Revision ${plan.revision} failed on ${failedNodes.length} node(s): ${failureSummary}; failurePolicy RollbackFleet returns every node to its previous revision.${lateHint} ${retryHint}`,
      );
      break;
    case 'aborted':
      phase = 'Stalled';
      outcome = 'Aborted';
      stalled(
        ReleaseReason.RolloutAborted,
        `Rollout of revision ${plan.revision} was aborted (${Annotations.abort}): it starts on no further node, and every node it reached returns to the revision it served before (${ready} serving). Apply another version, undo (\`kubectl pluginrelease undo ${release.metadata.name}\`), or try this revision again with \`kubectl pluginrelease retry ${release.metadata.name}\`.`,
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
          ? `The ${spec.rollout.canary.nodes} canary node(s) run revision ${plan.revision}; promote it to continue: \`kubectl pluginrelease promote ${release.metadata.name}\` (sets the annotation ${Annotations.promote}=${plan.revision}; the spec is untouched).`
          : `Rollout paused with ${upToDate} node(s) on revision ${plan.revision}; set spec.rollout.paused to false (in Git, or \`kubectl pluginrelease resume ${release.metadata.name}\`) to continue.`,
      );
      break;
    case 'progressing':
      phase = 'Progressing';
      outcome = 'Progressing';
      progressing(
        spec.dryRun ? ReleaseReason.DryRunProgressing : ReleaseReason.RolloutProgressing,
        `${spec.dryRun ? 'Probing' : 'Rolling out'} revision ${plan.revision}: ${upToDate} node(s) done, ${plan.nodes.filter((n) => n.kind === 'inFlight').length} in progress.`,
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

  const retryAt = release.metadata.annotations?.[Annotations.retryAt];
  const readyCondition = findCondition(conditions, ConditionType.Ready);
  const history = nextHistory(previous.history ?? [], {
    revision: plan.revision,
    outcome,
    message: readyCondition ? firstSentence(readyCondition.message, 1024) : undefined,
    nodeRun: nodeRunOf(spec),
    now,
  });
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
  return conditions?.find((c) => c.type === ConditionType.Ready)?.reason;
}

function firstSentence(message: string, max = 200): string {
  const line = message.split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}
