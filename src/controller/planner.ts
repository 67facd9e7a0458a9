// The rollout planner: a pure function from what is (release, nodes, activations) to what to write.
// It reads no clock (time comes in), does no I/O and never throws for a valid release.
import { createHash } from 'node:crypto';
import {
  Annotations,
  API_VERSION,
  ConditionType,
  type FailedNode,
  Finalizers,
  Kinds,
  Labels,
  NodeReason,
  type PluginActivation,
  type PluginActivationSpec,
  type PluginRelease,
  revisionOf,
} from '../api/index.ts';
import { canonicalJson } from '../api/revision.ts';
import { findCondition } from '../runtime/conditions.ts';

export interface NodeInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
}

export interface PlanInput {
  /** The release with its spec parsed (defaults applied). */
  release: PluginRelease;
  nodes: readonly NodeInfo[];
  /** The activations this release owns. */
  activations: readonly PluginActivation[];
  /** Other releases of any namespace: the older one of the same plugin wins a node. */
  others: readonly PluginRelease[];
  now: Date;
}

/** Where one targeted node stands against the revision being rolled out. */
export type NodeState =
  /** Needs a new attempt: no activation, another revision, or a failure the user asked to retry. */
  | { kind: 'outdated'; node: string; activation?: PluginActivation }
  | { kind: 'inFlight'; node: string; activation: PluginActivation; phase: string }
  | { kind: 'done'; node: string; activation: PluginActivation }
  | { kind: 'failed'; node: string; activation: PluginActivation; failure: FailedNode };

export type Verdict =
  | { kind: 'conflict'; winner: string; nodes: string[] }
  | { kind: 'noNodes' }
  | { kind: 'halted' }
  | { kind: 'rollingBackFleet' }
  | { kind: 'aborted' }
  | { kind: 'complete' }
  | { kind: 'paused'; byCanary: boolean }
  | { kind: 'progressing' };

export interface Plan {
  revision: string;
  targets: string[];
  nodes: NodeState[];
  verdict: Verdict;
  create: PluginActivation[];
  update: PluginActivation[];
  delete: PluginActivation[];
  /** When to look again even if nothing changes: the nearest progress deadline. */
  requeueAfterMs?: number;
}

const TERMINAL_FAILURE = new Set(['RolledBack', 'Failed']);

/** What the classification of one node needs to know about the release and the moment. */
export interface NodeContext {
  revision: string;
  dryRun: boolean;
  /** The release's `retry-at` annotation: a failure recorded under another value is retried. */
  retryAt: string | undefined;
  progressDeadlineSeconds: number;
  now: Date;
}

/**
 * The situation of `node` against the revision being rolled out, from its activation alone (the
 * decision comes after, in `plan`): no attempt of this revision yet, in flight, done, or failed (by
 * its own report, or by outliving the progress deadline).
 */
export function classifyNode(
  node: string,
  activation: PluginActivation | undefined,
  ctx: NodeContext,
): NodeState {
  if (!activation || !isAttemptOf(activation, ctx.revision, ctx.dryRun))
    return { kind: 'outdated', node, ...(activation ? { activation } : {}) };
  const observed = (activation.status?.observedGeneration ?? -1) === (activation.metadata.generation ?? 0);
  const phase = observed ? (activation.status?.phase ?? 'Pending') : 'Pending';
  if (observed && TERMINAL_FAILURE.has(phase) && !activation.spec.rollbackTo) {
    if (activation.spec.retryAt !== ctx.retryAt) return { kind: 'outdated', node, activation };
    return { kind: 'failed', node, activation, failure: failureOf(activation, phase) };
  }
  if (observed && isDone(activation, phase)) return { kind: 'done', node, activation };
  if (deadlineInMs(activation, ctx) <= 0) {
    if (activation.spec.retryAt !== ctx.retryAt) return { kind: 'outdated', node, activation };
    const failure: FailedNode = {
      node,
      revision: ctx.revision,
      phase,
      reason: 'ProgressDeadlineExceeded',
      message: `The activation made no terminal progress within ${ctx.progressDeadlineSeconds}s (last phase ${phase}); is the agent running on ${node}?`,
    };
    return { kind: 'failed', node, activation, failure };
  }
  return { kind: 'inFlight', node, activation, phase };
}

/** How long the attempt `activation` has left before its progress deadline (from its start annotation). */
function deadlineInMs(activation: PluginActivation, ctx: NodeContext): number {
  const startedAt = Date.parse(activation.metadata.annotations?.[Annotations.startedAt] ?? '');
  const age = Number.isNaN(startedAt) ? 0 : ctx.now.getTime() - startedAt;
  return ctx.progressDeadlineSeconds * 1000 - age;
}

/** A node with an activation: every state but a node the revision has not reached. */
type Attempt = NodeState & { activation: PluginActivation };

/** What to do to the nodes, decided from their states before anything is written. */
interface Decision {
  verdict: Verdict;
  /** Nodes that get a new attempt of the revision. */
  start?: NodeState[];
  /** Nodes sent back to the revision they served before. */
  rollBack?: Array<{ state: Attempt; to: string }>;
  /** Activations deleted because their node has nothing to go back to. */
  remove?: PluginActivation[];
}

/** What the decision reads besides the node states. */
interface Rollout {
  spec: PluginRelease['spec'];
  revision: string;
  targets: string[];
  aborted: boolean;
  promoted: boolean;
  /** Whether a node failed this revision (as classified, before a rollback's nodes roll forward). */
  failed: boolean;
  /** How many more nodes may start an attempt now (maxUnavailable less those in flight). */
  budget: number;
  inFlight: number;
}

const deleting = (a: PluginActivation) => a.metadata.deletionTimestamp !== undefined;

/** Plans the next step of `release`'s rollout. See docs/architecture.md for the rules, in order. */
export function plan(input: PlanInput): Plan {
  const { release, now } = input;
  const spec = release.spec;
  const revision = revisionOf(spec);
  const annotations = release.metadata.annotations ?? {};
  const retryAt = annotations[Annotations.retryAt];
  const targets = input.nodes
    .filter((n) => matches(n.labels, spec.rollout.nodeSelector))
    .map((n) => n.name)
    .sort(byNodeName);
  const base = { revision, targets, create: [], update: [], delete: [] as PluginActivation[] };

  // Nodes that left (or no longer match) lose their activation, whatever else happens; one being
  // deleted (its agent uninstalls the plugin) is not deleted again.
  const targetSet = new Set(targets);
  base.delete = input.activations.filter((a) => !targetSet.has(a.spec.nodeName) && !deleting(a));

  const conflict = olderConflict(input, targets);
  if (conflict) {
    const lost = new Set(conflict.nodes);
    base.delete.push(...input.activations.filter((a) => lost.has(a.spec.nodeName) && !deleting(a)));
    return { ...base, nodes: [], verdict: { kind: 'conflict', ...conflict } };
  }
  if (targets.length === 0) return { ...base, nodes: [], verdict: { kind: 'noNodes' } };

  const byNode = new Map(input.activations.map((a) => [a.spec.nodeName, a]));
  const ctx: NodeContext = {
    revision,
    dryRun: spec.dryRun,
    retryAt,
    progressDeadlineSeconds: spec.rollout.progressDeadlineSeconds,
    now,
  };
  const classified = targets.map((node) => classifyNode(node, byNode.get(node), ctx));
  // Annotations name the revision they act on, so a new revision is never aborted or promoted by accident.
  const aborted = !spec.dryRun && annotations[Annotations.abort] === revision;
  const promoted = annotations[Annotations.promote] === revision;
  const failed = classified.some((n) => n.kind === 'failed');
  const rollingBack = aborted || (failed && spec.rollout.failurePolicy === 'RollbackFleet');
  const nodes = rollingBack ? classified : classified.map(rollForward);
  const inFlight = nodes.filter((n) => n.kind === 'inFlight').length;
  const budget = Math.max(0, maxInFlight(spec.rollout.maxUnavailable, targets.length) - inFlight);
  const decision = decide(nodes, { spec, revision, targets, aborted, promoted, failed, budget, inFlight });
  const requeueAfterMs = nearestDeadlineMs(classified, ctx);
  return {
    ...base,
    nodes,
    verdict: decision.verdict,
    ...writes(
      nodes,
      decision,
      (node, nodeRetryAt, rollbackTo) =>
        desiredActivation(release, revision, node, nodeRetryAt, now, rollbackTo),
      retryAt,
    ),
    delete: [...base.delete, ...(decision.remove ?? [])],
    ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
  };
}

/** The activation the release wants on `node` (desiredActivation of this release, revision and moment). */
type Desired = (node: string, retryAt: string | undefined, rollbackTo?: string) => PluginActivation;

/** When the nearest progress deadline of an attempt in flight falls due (at most a whole deadline away). */
function nearestDeadlineMs(nodes: readonly NodeState[], ctx: NodeContext): number | undefined {
  const deadlineMs = ctx.progressDeadlineSeconds * 1000;
  const due = nodes.flatMap((n) => (n.kind === 'inFlight' ? [deadlineInMs(n.activation, ctx)] : []));
  return due.length > 0 ? Math.min(deadlineMs, ...due) : undefined;
}

/**
 * The creates and updates: a refresh of every attempt of this revision first, then the decision's
 * moves; a started node takes the release's `retryAt`, a node sent back keeps its own.
 */
function writes(
  nodes: readonly NodeState[],
  decision: Decision,
  desired: Desired,
  retryAt: string | undefined,
): { create: PluginActivation[]; update: PluginActivation[] } {
  const create: PluginActivation[] = [];
  const update = nodes.flatMap((n) => (n.kind === 'outdated' ? [] : refreshed(n, desired)));
  for (const n of decision.start ?? []) {
    // The old activation must be gone (its agent uninstalling) before the name can be used again.
    if (n.activation && deleting(n.activation)) continue;
    if (n.activation) update.push(withIdentity(desired(n.node, retryAt), n.activation));
    else create.push(desired(n.node, retryAt));
  }
  for (const { state, to } of decision.rollBack ?? [])
    update.push(withIdentity(desired(state.node, state.activation.spec.retryAt, to), state.activation));
  return { create, update: dedupe(update) };
}

/**
 * A fleet rollback (or an abort) lasts only while its cause does: after a retry (or a new revision)
 * the nodes it sent back roll forward again.
 */
function rollForward(n: NodeState): NodeState {
  return n.activation?.spec.rollbackTo && n.kind !== 'outdated'
    ? { kind: 'outdated', node: n.node, activation: n.activation }
    : n;
}

/**
 * The update that keeps an attempt's activation in line with the release (an edited spec, a missing
 * finalizer), keeping its start time, its retry and its rollback target; none when it already is.
 */
function refreshed(state: Attempt, desired: Desired): PluginActivation[] {
  if (deleting(state.activation)) return []; // its agent is uninstalling; nothing more to say to it
  const { spec, metadata } = state.activation;
  const want = desired(state.node, spec.retryAt, spec.rollbackTo?.revision);
  // Activations made before the finalizer existed get it with their next write.
  const unheld = !(metadata.finalizers ?? []).includes(Finalizers.agent);
  if (!unheld && canonicalJson(want.spec) === canonicalJson(spec)) return [];
  return [withIdentity(want, state.activation, metadata.annotations?.[Annotations.startedAt])];
}

/** The rollout's verdict and the moves it makes, in rule order: dry run, abort, failures, waves. */
function decide(nodes: readonly NodeState[], r: Rollout): Decision {
  const outdated = nodes.filter((n) => n.kind === 'outdated');
  if (r.spec.dryRun) {
    // Probing is non-disruptive: every node tries at once, and the verdict waits for all of them.
    if (outdated.length > 0 || r.inFlight > 0) return { verdict: { kind: 'progressing' }, start: outdated };
    return { verdict: { kind: r.failed ? 'halted' : 'complete' } };
  }
  if (r.aborted) return decideAbort(nodes, r.revision);
  if (r.failed) {
    if (r.spec.rollout.failurePolicy !== 'RollbackFleet') return { verdict: { kind: 'halted' } };
    // Send nodes that already run the new revision back to the one they ran before.
    const rollBack = nodes
      .flatMap((n) => {
        const to = n.activation?.status?.previousRevision;
        const eligible = n.kind === 'done' && !n.activation.spec.rollbackTo && !deleting(n.activation);
        return eligible && to && to !== r.revision ? [{ state: n, to }] : [];
      })
      .slice(0, r.budget);
    return { verdict: { kind: 'rollingBackFleet' }, rollBack };
  }
  if (nodes.every((n) => n.kind === 'done')) return { verdict: { kind: 'complete' } };

  const { canary, paused } = r.spec.rollout;
  const canaries = new Set(r.targets.slice(0, Math.min(canary.nodes, r.targets.length)));
  const canaryPending = nodes.filter((n) => canaries.has(n.node) && n.kind !== 'done');
  if (canaryPending.length > 0) {
    if (paused) return { verdict: { kind: 'paused', byCanary: false } };
    // Canaries go one at a time, before anyone else.
    const next = r.inFlight === 0 ? canaryPending.find((n) => n.kind === 'outdated') : undefined;
    return { verdict: { kind: 'progressing' }, start: next ? [next] : [] };
  }
  if (paused) return { verdict: { kind: 'paused', byCanary: false } };
  if (canaries.size > 0 && canary.pauseAfter && !r.promoted)
    return { verdict: { kind: 'paused', byCanary: true } };
  return { verdict: { kind: 'progressing' }, start: outdated.slice(0, r.budget) };
}

/**
 * An emergency stop: every node the revision reached goes back at once, a candidate mid-probe
 * included (its agent cancels the attempt); a node it reached first has nothing to go back to, so
 * its activation is deleted and its agent uninstalls the plugin.
 */
function decideAbort(nodes: readonly NodeState[], revision: string): Decision {
  const rollBack: Array<{ state: Attempt; to: string }> = [];
  const remove: PluginActivation[] = [];
  for (const n of nodes) {
    if (n.kind !== 'done' && n.kind !== 'inFlight') continue;
    if (n.activation.spec.rollbackTo || deleting(n.activation)) continue;
    const stable = stableRevisionOf(n.activation, revision);
    if (stable === undefined) remove.push(n.activation);
    else rollBack.push({ state: n, to: stable });
  }
  return { verdict: { kind: 'aborted' }, rollBack, remove };
}

/** `maxUnavailable` as a node count: a percentage of `total` rounds up, and at least one node moves. */
function maxInFlight(maxUnavailable: number | string, total: number): number {
  if (typeof maxUnavailable === 'number') return Math.max(1, maxUnavailable);
  return Math.max(1, Math.ceil((Number.parseInt(maxUnavailable, 10) * total) / 100));
}

/** A node matches when it carries every label of the selector (an empty selector matches all). */
function matches(
  labels: Readonly<Record<string, string>>,
  selector: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * The activation's name: `<release>-<node>`, or a hashed form when that would not be a valid
 * object name, so that one (release, node) pair always maps to one name.
 */
function activationName(release: string, node: string): string {
  const plain = `${release}-${node}`;
  if (plain.length <= 253) return plain;
  const hash = createHash('sha256').update(plain).digest('hex').slice(0, 10);
  return `${plain.slice(0, 242)}-${hash}`;
}

/** Node order: natural, so node-2 goes before node-10, and the same on every reconcile. */
const naturalOrder = new Intl.Collator('en', { numeric: true });
function byNodeName(a: string, b: string): number {
  return naturalOrder.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

function isAttemptOf(activation: PluginActivation, revision: string, dryRun: boolean): boolean {
  return activation.spec.revision === revision && activation.spec.dryRun === dryRun;
}

function isDone(activation: PluginActivation, phase: string): boolean {
  const target = activation.spec.rollbackTo?.revision ?? activation.spec.revision;
  if (activation.spec.dryRun) return phase === 'Probed';
  if (activation.spec.rollbackTo)
    return TERMINAL_FAILURE.has(phase) || activation.status?.activeRevision === target;
  return phase === 'Active' && activation.status?.activeRevision === target;
}

/**
 * The revision a node served before `revision` reached it: what it still serves while the candidate is
 * probed, else the `previous` it reported after the swap. Undefined on a first install.
 */
function stableRevisionOf(activation: PluginActivation, revision: string): string | undefined {
  const { activeRevision, previousRevision } = activation.status ?? {};
  if (activeRevision !== undefined && activeRevision !== revision) return activeRevision;
  if (previousRevision !== undefined && previousRevision !== revision) return previousRevision;
  return undefined;
}

/**
 * Deleted activations the controller may let go (it removes finalizer pluginrelease.io/agent): their
 * agent reported the plugin uninstalled (condition Uninstalled), or their Node object is gone, so a
 * vanished node never blocks a deletion.
 */
export function releasableActivations(
  activations: readonly PluginActivation[],
  nodes: readonly NodeInfo[],
): PluginActivation[] {
  const live = new Set(nodes.map((n) => n.name));
  return activations.filter(
    (a) =>
      a.metadata.deletionTimestamp !== undefined &&
      (a.metadata.finalizers ?? []).includes(Finalizers.agent) &&
      (!live.has(a.spec.nodeName) ||
        findCondition(a.status?.conditions, ConditionType.Uninstalled)?.status === 'True'),
  );
}

function failureOf(activation: PluginActivation, phase: string): FailedNode {
  return {
    node: activation.spec.nodeName,
    revision: activation.spec.revision,
    phase,
    reason:
      activation.status?.reason ?? (phase === 'Failed' ? NodeReason.RollbackFailed : NodeReason.ProbeFailed),
    message: (activation.status?.message ?? '').slice(0, 4096),
  };
}

/** The older release of the same plugin that already holds some of `targets`, if any. */
function olderConflict(input: PlanInput, targets: string[]): { winner: string; nodes: string[] } | undefined {
  const self = input.release;
  for (const other of [...input.others].sort(byAge)) {
    if (other.spec.plugin !== self.spec.plugin || byAge(other, self) >= 0) continue;
    const theirs = new Set(
      input.nodes.filter((n) => matches(n.labels, other.spec.rollout.nodeSelector)).map((n) => n.name),
    );
    const shared = targets.filter((t) => theirs.has(t));
    if (shared.length > 0)
      return { winner: `${other.metadata.namespace}/${other.metadata.name}`, nodes: shared };
  }
  return undefined;
}

function byAge(a: PluginRelease, b: PluginRelease): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The activation `release` wants on `node`: labels, owner reference, resolved spec, start time. */
export function desiredActivation(
  release: PluginRelease,
  revision: string,
  node: string,
  retryAt: string | undefined,
  now: Date,
  rollbackTo?: string,
): PluginActivation {
  const s = release.spec;
  const spec: PluginActivationSpec = {
    release: {
      name: release.metadata.name ?? '',
      ...(release.metadata.uid ? { uid: release.metadata.uid } : {}),
    },
    nodeName: node,
    plugin: s.plugin,
    version: s.version,
    revision,
    runtime: s.runtime,
    ...(s.host ? { host: s.host } : {}),
    ...(s.artifact ? { artifact: s.artifact } : {}),
    ...(s.config ? { config: s.config } : {}),
    handshake: s.handshake,
    health: s.health,
    serve: s.serve,
    process: s.process,
    activation: s.activation,
    retention: s.retention,
    dryRun: s.dryRun,
    ...(rollbackTo ? { rollbackTo: { revision: rollbackTo } } : {}),
    ...(retryAt !== undefined ? { retryAt } : {}),
  };
  const name = release.metadata.name ?? '';
  return {
    apiVersion: API_VERSION,
    kind: Kinds.PluginActivation.kind,
    metadata: {
      name: activationName(name, node),
      namespace: release.metadata.namespace,
      labels: { [Labels.node]: node, [Labels.release]: name, [Labels.plugin]: s.plugin },
      annotations: { [Annotations.startedAt]: now.toISOString() },
      // The node's agent uninstalls the plugin before the activation goes (releasableActivations).
      finalizers: [Finalizers.agent],
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: Kinds.PluginRelease.kind,
          name,
          uid: release.metadata.uid ?? '',
          controller: true,
        },
      ],
    },
    spec,
  };
}

/** `desired` as an update of `existing`: same identity and resourceVersion, fresh start time unless kept. */
function withIdentity(
  desired: PluginActivation,
  existing: PluginActivation,
  startedAt?: string,
): PluginActivation {
  const annotations = { ...existing.metadata.annotations, ...desired.metadata.annotations };
  if (startedAt) annotations[Annotations.startedAt] = startedAt;
  return {
    ...desired,
    metadata: {
      ...existing.metadata,
      labels: { ...existing.metadata.labels, ...desired.metadata.labels },
      annotations,
      finalizers: [...new Set([...(existing.metadata.finalizers ?? []), Finalizers.agent])],
    },
    ...(existing.status ? { status: existing.status } : {}),
  };
}

/** A node both refreshed and restarted in one plan keeps the restart (the later write). */
function dedupe(updates: PluginActivation[]): PluginActivation[] {
  const byName = new Map<string, PluginActivation>();
  for (const u of updates) byName.set(u.metadata.name ?? '', u);
  return [...byName.values()];
}
