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

/** Plans the next step of `release`'s rollout. See docs/architecture.md for the rules, in order. */
export function plan(input: PlanInput): Plan {
  const { release, now } = input;
  const spec = release.spec;
  const revision = revisionOf(spec);
  const annotations = release.metadata.annotations ?? {};
  const retryAt = annotations[Annotations.retryAt];
  // Annotations name the revision they act on, so a new revision is never aborted or promoted by accident.
  const aborted = !spec.dryRun && annotations[Annotations.abort] === revision;
  const promoted = annotations[Annotations.promote] === revision;
  const targets = input.nodes
    .filter((n) => matches(n.labels, spec.rollout.nodeSelector))
    .map((n) => n.name)
    .sort(byNodeName);
  const byNode = new Map(input.activations.map((a) => [a.spec.nodeName, a]));
  const base = { revision, targets, create: [], update: [], delete: [] as PluginActivation[] };

  // Nodes that left (or no longer match) lose their activation, whatever else happens; one being
  // deleted (its agent uninstalls the plugin) is not deleted again.
  const targetSet = new Set(targets);
  const deleting = (a: PluginActivation) => a.metadata.deletionTimestamp !== undefined;
  base.delete = input.activations.filter((a) => !targetSet.has(a.spec.nodeName) && !deleting(a));

  const conflict = olderConflict(input, targets);
  if (conflict) {
    const lost = new Set(conflict.nodes);
    base.delete.push(...input.activations.filter((a) => lost.has(a.spec.nodeName) && !deleting(a)));
    return { ...base, nodes: [], verdict: { kind: 'conflict', ...conflict } };
  }
  if (targets.length === 0) return { ...base, nodes: [], verdict: { kind: 'noNodes' } };

  const deadlineMs = spec.rollout.progressDeadlineSeconds * 1000;
  let requeueAfterMs: number | undefined;
  let nodes = targets.map((node): NodeState => {
    const activation = byNode.get(node);
    if (!activation || !isAttemptOf(activation, revision, spec.dryRun))
      return { kind: 'outdated', node, ...(activation ? { activation } : {}) };
    const observed = (activation.status?.observedGeneration ?? -1) === (activation.metadata.generation ?? 0);
    const phase = observed ? (activation.status?.phase ?? 'Pending') : 'Pending';
    if (observed && TERMINAL_FAILURE.has(phase) && !activation.spec.rollbackTo) {
      if (activation.spec.retryAt !== retryAt) return { kind: 'outdated', node, activation };
      return { kind: 'failed', node, activation, failure: failureOf(activation, phase) };
    }
    if (observed && isDone(activation, phase)) return { kind: 'done', node, activation };
    const startedAt = Date.parse(activation.metadata.annotations?.[Annotations.startedAt] ?? '');
    const age = Number.isNaN(startedAt) ? 0 : now.getTime() - startedAt;
    if (age >= deadlineMs) {
      if (activation.spec.retryAt !== retryAt) return { kind: 'outdated', node, activation };
      const failure: FailedNode = {
        node,
        revision,
        phase,
        reason: 'ProgressDeadlineExceeded',
        message: `The activation made no terminal progress within ${spec.rollout.progressDeadlineSeconds}s (last phase ${phase}); is the agent running on ${node}?`,
      };
      return { kind: 'failed', node, activation, failure };
    }
    requeueAfterMs = Math.min(requeueAfterMs ?? deadlineMs, deadlineMs - age);
    return { kind: 'inFlight', node, activation, phase };
  });

  const failed = nodes.filter((n) => n.kind === 'failed');
  const rollingBack = aborted || (failed.length > 0 && spec.rollout.failurePolicy === 'RollbackFleet');
  if (!rollingBack) {
    // A fleet rollback (or an abort) lasts only while its cause does: after a retry (or a new
    // revision) those nodes roll forward again.
    nodes = nodes.map((n) =>
      n.activation?.spec.rollbackTo && n.kind !== 'outdated'
        ? { kind: 'outdated', node: n.node, activation: n.activation }
        : n,
    );
  }
  const inFlight = nodes.filter((n) => n.kind === 'inFlight').length;
  const create: PluginActivation[] = [];
  const update: PluginActivation[] = [];
  const start = (state: NodeState, rollbackTo?: string) => {
    // The old activation must be gone (its agent uninstalling) before the name can be used again.
    if (state.activation && deleting(state.activation)) return;
    const desired = desiredActivation(release, revision, state.node, retryAt, now, rollbackTo);
    if (state.activation) update.push(withIdentity(desired, state.activation));
    else create.push(desired);
  };
  const refresh = (state: NodeState & { activation: PluginActivation }) => {
    if (deleting(state.activation)) return; // its agent is uninstalling; nothing more to say to it
    const desired = desiredActivation(
      release,
      revision,
      state.node,
      state.activation.spec.retryAt,
      now,
      state.activation.spec.rollbackTo?.revision,
    );
    // Activations made before the finalizer existed get it with their next write.
    const unheld = !(state.activation.metadata.finalizers ?? []).includes(Finalizers.agent);
    if (unheld || canonicalJson(desired.spec) !== canonicalJson(state.activation.spec)) {
      const startedAt = state.activation.metadata.annotations?.[Annotations.startedAt];
      update.push(withIdentity(desired, state.activation, startedAt));
    }
  };
  for (const n of nodes) if (n.kind !== 'outdated') refresh(n);

  const budget = Math.max(0, maxInFlight(spec.rollout.maxUnavailable, targets.length) - inFlight);
  const result = (verdict: Verdict): Plan => ({
    ...base,
    nodes,
    verdict,
    create,
    update: dedupe(update),
    ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
  });

  const outdated = nodes.filter((n) => n.kind === 'outdated');
  if (spec.dryRun) {
    // Probing is non-disruptive: every node tries at once, and the verdict waits for all of them.
    for (const n of outdated) start(n);
    if (outdated.length > 0 || inFlight > 0) return result({ kind: 'progressing' });
    return result({ kind: failed.length > 0 ? 'halted' : 'complete' });
  }
  if (aborted) {
    // An emergency stop: every node the revision reached goes back at once, a candidate mid-probe
    // included (its agent cancels the attempt); a node it reached first has nothing to go back to,
    // so its activation is deleted and its agent uninstalls the plugin.
    for (const n of nodes) {
      if (n.kind !== 'done' && n.kind !== 'inFlight') continue;
      if (n.activation.spec.rollbackTo || deleting(n.activation)) continue;
      const stable = stableRevisionOf(n.activation, revision);
      if (stable === undefined) base.delete.push(n.activation);
      else
        update.push(
          withIdentity(
            desiredActivation(release, revision, n.node, n.activation.spec.retryAt, now, stable),
            n.activation,
          ),
        );
    }
    return result({ kind: 'aborted' });
  }
  if (failed.length > 0) {
    if (spec.rollout.failurePolicy === 'RollbackFleet') {
      // Send nodes that already run the new revision back to the one they ran before.
      let left = budget;
      for (const n of nodes) {
        if (left === 0) break;
        const previous = n.activation?.status?.previousRevision;
        if (
          n.kind === 'done' &&
          !n.activation.spec.rollbackTo &&
          !deleting(n.activation) &&
          previous &&
          previous !== revision
        ) {
          update.push(
            withIdentity(
              desiredActivation(release, revision, n.node, n.activation.spec.retryAt, now, previous),
              n.activation,
            ),
          );
          left--;
        }
      }
      return result({ kind: 'rollingBackFleet' });
    }
    return result({ kind: 'halted' });
  }
  if (nodes.every((n) => n.kind === 'done')) return result({ kind: 'complete' });

  const canaries = new Set(targets.slice(0, Math.min(spec.rollout.canary.nodes, targets.length)));
  const canaryPending = nodes.filter((n) => canaries.has(n.node) && n.kind !== 'done');
  if (canaryPending.length > 0) {
    // Canaries go one at a time, before anyone else.
    if (!spec.rollout.paused && inFlight === 0) {
      const next = canaryPending.find((n) => n.kind === 'outdated');
      if (next) start(next);
    }
    return result(spec.rollout.paused ? { kind: 'paused', byCanary: false } : { kind: 'progressing' });
  }
  if (spec.rollout.paused) return result({ kind: 'paused', byCanary: false });
  if (canaries.size > 0 && spec.rollout.canary.pauseAfter && !promoted)
    return result({ kind: 'paused', byCanary: true });
  for (const n of outdated.slice(0, budget)) start(n);
  return result({ kind: 'progressing' });
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
        a.status?.conditions?.some((c) => c.type === ConditionType.Uninstalled && c.status === 'True')),
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
