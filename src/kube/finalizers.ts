// Adding and removing a finalizer with a JSON patch guarded by `test` ops, so a concurrent writer's
// change to the list is never overwritten (kube-runtime's finalizer pattern).
import { KubeApiError, statusCodeOf } from './errors.ts';
import type { ResourceStore } from './resource.ts';
import { type JsonPatchOp, type KubeObject, refOf } from './types.ts';

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

/** The patch that appends `finalizer`, valid only while the object is as `obj` shows it. */
export function addFinalizerPatch(obj: KubeObject, finalizer: string): JsonPatchOp[] {
  const current = obj.metadata.finalizers;
  if (current && current.length > 0) {
    return [
      { op: 'test', path: '/metadata/finalizers', value: current },
      { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
    ];
  }
  // No list yet: guard on the resourceVersion, because `test` against a missing path is not portable.
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion },
    { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
  ];
}

/** The patch that removes `finalizer` at the index `obj` shows, failing if that entry moved. */
export function removeFinalizerPatch(obj: KubeObject, finalizer: string): JsonPatchOp[] {
  const index = obj.metadata.finalizers?.indexOf(finalizer) ?? -1;
  if (index < 0) return [];
  return [
    { op: 'test', path: `/metadata/finalizers/${index}`, value: finalizer },
    { op: 'remove', path: `/metadata/finalizers/${index}` },
  ];
}

/**
 * Adds `finalizer` to `obj` (as last seen, e.g. from the informer cache) unless present. Rejects with
 * a Conflict-classified KubeApiError when the object changed since `obj` was read (the API server
 * answers a failed `test` with a bare 422): requeue and try again from the fresh cache.
 */
export async function addFinalizer<T extends KubeObject>(
  store: ResourceStore<T>,
  obj: T,
  finalizer: string,
  signal?: AbortSignal,
): Promise<T> {
  if (hasFinalizer(obj, finalizer)) return obj;
  return guarded(() => store.jsonPatch(refOf(obj), addFinalizerPatch(obj, finalizer), { signal }));
}

/** Removes `finalizer` from `obj` if present; same Conflict contract as addFinalizer. */
export async function removeFinalizer<T extends KubeObject>(
  store: ResourceStore<T>,
  obj: T,
  finalizer: string,
  signal?: AbortSignal,
): Promise<T> {
  if (!hasFinalizer(obj, finalizer)) return obj;
  return guarded(() => store.jsonPatch(refOf(obj), removeFinalizerPatch(obj, finalizer), { signal }));
}

async function guarded<T>(patch: () => Promise<T>): Promise<T> {
  try {
    return await patch();
  } catch (error) {
    // The API server answers a failed `test` op with a generic 422 ("the server rejected our request
    // due to an error in our request") whose causes, if any, name no field. A 422 with field causes
    // (an invalid finalizer name) is a real Invalid and stays one.
    const causes = (error instanceof KubeApiError ? error.status?.details?.causes : undefined) ?? [];
    const namesAField = causes.some((cause) => typeof (cause as { field?: unknown }).field === 'string');
    if (statusCodeOf(error) === 422 && !namesAField) {
      throw new KubeApiError(
        'Conflict',
        `finalizer patch rejected; the object changed: ${(error as Error).message}`,
        {
          statusCode: 422,
          reason: 'Conflict',
          cause: error,
        },
      );
    }
    throw error;
  }
}
