// What the controller's caches keep of each object, as client-go's SetTransform does: the fields its
// planner, status aggregation and reconciler read, with repeated strings and identical sub-objects
// shared between objects. Measured in docs/benchmarks.md (bytes per cached activation).
import type { PluginActivation } from '../api/index.ts';
import type { KubeNode } from './types.ts';

/** Entries each pool holds before it starts afresh: a bound, not a working-set size. */
const POOL_LIMIT = 65_536;

/**
 * Hands out one shared instance per distinct value: strings (V8 keeps a copy per JSON.parse) and
 * JSON sub-objects (deep-frozen, so a consumer that mutates a cached object fails loudly instead
 * of changing every activation that shares it).
 */
export class Sharing {
  readonly #strings = new Map<string, string>();
  readonly #objects = new Map<string, unknown>();

  string<S extends string | undefined>(value: S): S {
    if (value === undefined) return value;
    const known = this.#strings.get(value);
    if (known !== undefined) return known as S;
    if (this.#strings.size >= POOL_LIMIT) this.#strings.clear();
    this.#strings.set(value, value);
    return value;
  }

  /** One frozen instance per distinct JSON value (objects and arrays; anything else as it is). */
  value<V>(value: V): V {
    if (typeof value === 'string') return this.string(value);
    if (typeof value !== 'object' || value === null) return value;
    const key = JSON.stringify(value);
    const known = this.#objects.get(key);
    if (known !== undefined) return known as V;
    if (this.#objects.size >= POOL_LIMIT) this.#objects.clear();
    const shared = deepFreeze(structuredClone(value));
    this.#objects.set(key, shared);
    return shared;
  }

  /** `record` with its values shared (labels, annotations). */
  record(record: Record<string, string> | undefined): Record<string, string> | undefined {
    if (!record) return record;
    return this.value(record);
  }
}

/**
 * The activation as the controller caches it. Kept: all of `metadata` but managedFields (a replace
 * sends it back, so labels, annotations, owner references and finalizers must survive), all of `spec`
 * (the planner compares it with the desired spec), and of `status` what the planner and status
 * aggregation read: phase, observedGeneration, active and previous revision, reason, message,
 * lastTransitionTime, and each condition's type, status and reason. Dropped: the handshake, the last
 * probe, attempts, restarts, lastExit and the conditions' messages, which only the agent and people read.
 */
export function leanActivation(sharing: Sharing): (activation: PluginActivation) => PluginActivation {
  return (a) => {
    const { managedFields: _, ...metadata } = a.metadata as PluginActivation['metadata'] & {
      managedFields?: unknown;
    };
    const status = a.status;
    return {
      apiVersion: a.apiVersion,
      kind: a.kind,
      metadata: withoutUndefined({
        ...metadata,
        namespace: sharing.string(metadata.namespace),
        labels: sharing.record(metadata.labels),
        annotations: sharing.record(metadata.annotations),
        ownerReferences: sharing.value(metadata.ownerReferences),
        finalizers: sharing.value(metadata.finalizers),
      }),
      spec: Object.fromEntries(
        Object.entries(a.spec).map(([key, value]) => [sharing.string(key), sharing.value(value)]),
      ) as PluginActivation['spec'],
      ...(status
        ? {
            status: withoutUndefined({
              observedGeneration: status.observedGeneration,
              phase: sharing.string(status.phase),
              reason: sharing.string(status.reason),
              message: status.message,
              activeRevision: sharing.string(status.activeRevision),
              previousRevision: sharing.string(status.previousRevision),
              lastTransitionTime: status.lastTransitionTime,
              conditions: status.conditions?.map((c) =>
                sharing.value({ type: c.type, status: c.status, reason: c.reason }),
              ) as NonNullable<PluginActivation['status']>['conditions'],
            }),
          }
        : {}),
    };
  };
}

/** A Node as the controller caches it: its identity and labels (targets are chosen by label). */
export function leanNode(sharing: Sharing): (node: KubeNode) => KubeNode {
  return (n) => ({
    apiVersion: n.apiVersion,
    kind: n.kind,
    metadata: withoutUndefined({
      name: sharing.string(n.metadata.name),
      uid: n.metadata.uid,
      resourceVersion: n.metadata.resourceVersion,
      deletionTimestamp: n.metadata.deletionTimestamp,
      labels: sharing.record(n.metadata.labels),
    }),
  });
}

/** `object` without its undefined fields (built anew: `delete` would make V8 store it as a dictionary). */
function withoutUndefined<T extends object>(object: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) if (value !== undefined) out[key] = value;
  return out as T;
}

function deepFreeze<V>(value: V): V {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
