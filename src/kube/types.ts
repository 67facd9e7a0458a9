// Plain-JSON shapes shared by the kube clients: objects, references, lists, patches, and cache keys.
import type { ObjectMeta } from '../api/index.ts';

/** Any Kubernetes object as JSON: what the clients return and the informers cache. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

/** A Node as plain JSON (timestamps are RFC 3339 strings). Only the fields the domain reads are typed. */
export interface KubeNode extends KubeObject {
  spec?: {
    unschedulable?: boolean;
    taints?: { key: string; value?: string; effect: string }[];
    [field: string]: unknown;
  };
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    [field: string]: unknown;
  };
}

/** Names one object; `namespace` is omitted for cluster-scoped kinds (Node). */
export interface ObjectRef {
  namespace?: string;
  name: string;
}

/** One page of a list, with the resourceVersion to start a watch from. */
export interface ObjectList<T> {
  items: T[];
  resourceVersion: string;
  /** Set when the server has more pages (see ListOptions.limit). */
  continue?: string;
}

export type JsonPatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

/** The work-queue / cache key of an object: `namespace/name`, or `name` when cluster-scoped. */
export function objectKey(obj: { metadata: { namespace?: string; name?: string } }): string {
  const { namespace, name } = obj.metadata;
  return namespace ? `${namespace}/${name ?? ''}` : (name ?? '');
}

/** The inverse of objectKey. */
export function refFromKey(key: string): ObjectRef {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function refOf(obj: { metadata: { namespace?: string; name?: string } }): ObjectRef {
  return obj.metadata.namespace
    ? { namespace: obj.metadata.namespace, name: obj.metadata.name ?? '' }
    : { name: obj.metadata.name ?? '' };
}

export function formatRef(ref: ObjectRef): string {
  return ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
}
