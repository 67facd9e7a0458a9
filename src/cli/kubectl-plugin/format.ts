// What `kubectl pluginrelease status` and `history` print: pure renderers of a release and its
// activations into kubectl-style text (aligned columns, human ages), with `now` passed in.
import type { Condition, PluginActivation, PluginRelease } from '../../api/index.ts';
import { humanDuration } from '../../runtime/duration.ts';

/** Longest MESSAGE cell in a table; the full text stays on the object (`kubectl get -o yaml`). */
export const MESSAGE_WIDTH = 60;

const NONE = '<none>';

/** The age of an RFC 3339 timestamp at `now`; "<unknown>" when absent or unparsable, as kubectl. */
export function age(timestamp: string | undefined, now: number): string {
  const at = timestamp ? Date.parse(timestamp) : Number.NaN;
  return Number.isNaN(at) ? '<unknown>' : humanDuration(now - at);
}

/** One line of at most `width` characters: whitespace runs collapse, the cut is marked with "...". */
export function truncate(text: string, width = MESSAGE_WIDTH): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 3))}...`;
}

/**
 * Aligns `rows` under `header` as kubectl does: columns separated by 3 spaces, no trailing blanks,
 * every line prefixed with `indent`.
 */
export function table(header: string[], rows: string[][], indent = ''): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows]
    .map(
      (cells) =>
        indent +
        cells
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('   ')
          .trimEnd(),
    )
    .join('\n');
}

/** Node names in natural order, so node-2 comes before node-10. */
export function byNodeName(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** The condition rows, Ready/Reconciling/Stalled first (kstatus), then the domain ones by type. */
function conditionRows(conditions: Condition[], now: number): string[][] {
  const order = ['Ready', 'Reconciling', 'Stalled'];
  const rank = (t: string) => (order.includes(t) ? order.indexOf(t) : order.length);
  return (
    [...conditions]
      .sort((a, b) => rank(a.type) - rank(b.type) || a.type.localeCompare(b.type))
      // The message is the last column, so it stays whole: a condition's message says what to do.
      .map((c) => [c.type, c.status, c.reason, age(c.lastTransitionTime, now), truncate(c.message, Infinity)])
  );
}

/** What a release is doing, in kstatus terms: the word `status` and `wait` go by. */
export type ReleaseState = 'Ready' | 'Stalled' | 'Paused' | 'Progressing';

export interface StateSummary {
  state: ReleaseState;
  reason: string;
  message: string;
}

const conditionOf = (release: PluginRelease, type: string) =>
  release.status?.conditions?.find((c) => c.type === type);

/**
 * The release's state as kstatus reads it: a status that describes an older generation than the spec
 * is Progressing whatever it says; then Stalled=True, Ready=True (a passed dry run too), a pause, and
 * otherwise Progressing.
 */
export function releaseState(release: PluginRelease): StateSummary {
  const generation = release.metadata.generation ?? 0;
  const observed = release.status?.observedGeneration;
  if (observed === undefined || observed < generation) {
    return {
      state: 'Progressing',
      reason: 'NotObserved',
      message:
        observed === undefined
          ? 'The controller has not reported on this release yet.'
          : `The status describes generation ${observed}; the controller has not observed generation ${generation} yet.`,
    };
  }
  const stalled = conditionOf(release, 'Stalled');
  if (stalled?.status === 'True')
    return { state: 'Stalled', reason: stalled.reason, message: stalled.message };
  const ready = conditionOf(release, 'Ready');
  if (ready?.status === 'True') return { state: 'Ready', reason: ready.reason, message: ready.message };
  const progress = conditionOf(release, 'Reconciling') ?? ready;
  return {
    state: release.status?.phase === 'Paused' ? 'Paused' : 'Progressing',
    reason: progress?.reason ?? 'RolloutProgressing',
    message: progress?.message ?? '',
  };
}

function rolloutLine(release: PluginRelease): string {
  const rollout = release.spec.rollout;
  const { state, reason } = releaseState(release);
  const resume = `resume with: kubectl pluginrelease resume ${release.metadata.name ?? ''}`;
  const parts: string[] = [];
  if (state === 'Stalled') parts.push(`Stalled (${reason})`);
  else if (rollout?.paused) parts.push(`paused (${resume})`);
  else if (state === 'Paused') parts.push(`paused after the canary nodes (${resume})`);
  else parts.push(state === 'Ready' ? 'Ready' : `Progressing (${reason})`);
  const canary = rollout?.canary;
  if (canary?.nodes) {
    parts.push(
      `${canary.nodes} canary node${canary.nodes === 1 ? '' : 's'} first` +
        (canary.pauseAfter ? ', then pause' : ''),
    );
  }
  parts.push(`failure policy ${rollout?.failurePolicy ?? 'Halt'}`);
  if (release.spec.dryRun) parts.push('dry run: probe only, never swap');
  return parts.join('; ');
}

/** The node of an activation: its label, else its spec (objects written by hand may lack the label). */
function nodeOf(activation: PluginActivation): string {
  return activation.metadata.labels?.['pluginrelease.io/node'] ?? activation.spec?.nodeName ?? NONE;
}

/** One row per activation. AGE is the time in the current phase (since creation before any report). */
export function nodeRows(activations: PluginActivation[], now: number): string[][] {
  return byNode(activations).map((a) => {
    const s = a.status;
    return [
      nodeOf(a),
      s?.phase ?? 'Pending',
      s?.revision ?? a.spec?.revision ?? NONE,
      s?.activeRevision ?? NONE,
      s?.reason ?? '',
      age(s?.lastTransitionTime ?? a.metadata.creationTimestamp, now),
      truncate(s?.message ?? ''),
    ];
  });
}

const byNode = (activations: PluginActivation[]) =>
  [...activations].sort((a, b) => byNodeName(nodeOf(a), nodeOf(b)));

/**
 * `kubectl pluginrelease status`: the release's identity, phase, READY n/m and revision, its
 * conditions, then one row per node from its activations.
 */
export function renderStatus(release: PluginRelease, activations: PluginActivation[], now: number): string {
  const { metadata, spec } = release;
  const status = release.status ?? {};
  const generation = metadata.generation ?? 0;
  const observed = status.observedGeneration;
  const stale =
    observed === undefined
      ? ' (the controller has not reported on this release yet)'
      : observed < generation
        ? ` (status describes generation ${observed}; the spec is at ${generation})`
        : '';
  const lines = [
    `Name:        ${metadata.name ?? ''}`,
    `Namespace:   ${metadata.namespace ?? ''}`,
    `Plugin:      ${spec.plugin} ${spec.version}`,
    `Phase:       ${status.phase ?? 'Pending'}${stale}`,
    `Ready:       ${status.ready ?? `0/${status.nodes?.total ?? 0}`}`,
    `Revision:    ${status.revision ?? NONE}`,
    `Rollout:     ${rolloutLine(release)}`,
  ];
  const retryAt = metadata.annotations?.['pluginrelease.io/retry-at'];
  if (retryAt) lines.push(`Retry at:    ${retryAt}`);

  const conditions = status.conditions ?? [];
  lines.push('', 'Conditions:');
  lines.push(
    conditions.length === 0
      ? `  ${NONE}`
      : table(['TYPE', 'STATUS', 'REASON', 'AGE', 'MESSAGE'], conditionRows(conditions, now), '  '),
  );

  lines.push('', 'Nodes:');
  lines.push(
    activations.length === 0
      ? `  ${NONE} (no PluginActivation carries pluginrelease.io/release=${metadata.name ?? ''} yet)`
      : table(
          ['NODE', 'PHASE', 'REVISION', 'ACTIVE', 'REASON', 'AGE', 'MESSAGE'],
          nodeRows(activations, now),
          '  ',
        ),
  );
  return lines.join('\n');
}

/** `kubectl pluginrelease history`: status.history, newest first, the current revision marked. */
export function renderHistory(release: PluginRelease, now: number): string {
  const history = release.status?.history ?? [];
  const name = release.metadata.name ?? '';
  if (history.length === 0) {
    return `No history for pluginrelease "${name}" in namespace "${release.metadata.namespace ?? ''}" yet.`;
  }
  const current = release.status?.revision;
  // Only the newest entry of the current revision is what the release is on (older statuses may repeat it).
  const on = history.findIndex((h) => h.revision === current);
  const rows = history.map((h, i) => [
    h.number !== undefined ? String(h.number) : NONE,
    i === on ? `${h.revision}*` : h.revision,
    h.version,
    h.outcome,
    h.startedAt && !Number.isNaN(Date.parse(h.startedAt)) ? `${age(h.startedAt, now)} ago` : '<unknown>',
    h.finishedAt && h.outcome !== 'Progressing'
      ? humanDuration(Date.parse(h.finishedAt) - Date.parse(h.startedAt))
      : NONE,
    truncate(h.message ?? ''),
  ]);
  const text = table(['NUMBER', 'REVISION', 'VERSION', 'OUTCOME', 'STARTED', 'DURATION', 'MESSAGE'], rows);
  return current ? `${text}\n\n* the revision the release is on now` : text;
}

/**
 * `status -o json|yaml`: what the text shows, whole: the state, the counts, every condition and one
 * entry per node (full messages), for scripts and `jq`.
 */
export function statusDocument(release: PluginRelease, activations: PluginActivation[]) {
  const { metadata, spec } = release;
  const status = release.status ?? {};
  return {
    name: metadata.name ?? '',
    namespace: metadata.namespace ?? '',
    plugin: spec.plugin,
    version: spec.version,
    ...releaseState(release),
    phase: status.phase ?? 'Pending',
    ready: status.ready ?? `0/${status.nodes?.total ?? 0}`,
    revision: status.revision ?? null,
    generation: metadata.generation ?? 0,
    observedGeneration: status.observedGeneration ?? null,
    conditions: status.conditions ?? [],
    counts: status.nodes ?? null,
    failedNodes: status.failedNodes ?? [],
    nodes: byNode(activations).map((a) => ({
      node: nodeOf(a),
      activation: a.metadata.name ?? '',
      phase: a.status?.phase ?? 'Pending',
      revision: a.status?.revision ?? a.spec?.revision ?? null,
      activeRevision: a.status?.activeRevision ?? null,
      reason: a.status?.reason ?? null,
      message: a.status?.message ?? null,
      since: a.status?.lastTransitionTime ?? a.metadata.creationTimestamp ?? null,
    })),
  };
}

/** `history -o json|yaml`: status.history as stored, newest first, and which revision is current. */
export function historyDocument(release: PluginRelease) {
  return {
    name: release.metadata.name ?? '',
    namespace: release.metadata.namespace ?? '',
    current: release.status?.revision ?? null,
    history: release.status?.history ?? [],
  };
}
