// What the server knows about each resource it serves: names, scope, verbs, schema, strategy knobs
// (the generic registry's Store options), table columns and selectable fields.

import type { Schema } from '../../src/api/prune.ts';
import type { MergeStrategies } from './patch.ts';
import type { FieldError } from './status.ts';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: unknown[];
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** One column of a meta.k8s.io/v1 Table, with how to compute its cell from an object. */
export interface TableColumn {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
  cell(object: KubeObject, now: number): unknown;
}

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  namespaced: boolean;
  /** Verbs listed in discovery and accepted by the server. */
  verbs: string[];
  /** Whether `<plural>/status` is served (and the main endpoint ignores status changes). */
  statusSubresource: boolean;
  /** Storage shared by all API versions of one resource (core/v1 and events.k8s.io/v1 Events). */
  storage: string;
  /** A resource defined by a CustomResourceDefinition. */
  custom: boolean;
  /**
   * Structural schema. For custom resources it prunes, defaults and validates (422). For built-ins it
   * stands in for the Go types: it prunes unknown fields and rejects wrong JSON types (400).
   */
  schema: Schema;
  columns: TableColumn[];
  /** Field selector labels beyond metadata.name/metadata.namespace, with how to read each. */
  fieldLabels: Record<string, (object: KubeObject) => string | undefined>;
  /** Strategic merge patch list semantics; undefined means SMP is not accepted (custom resources). */
  mergeStrategies?: MergeStrategies;
  /** metadata.generation is kept and bumped on changes outside metadata and status. */
  tracksGeneration: boolean;
  allowCreateOnUpdate: boolean;
  /** A PUT without metadata.resourceVersion is accepted (most built-ins; not custom resources). */
  allowUnconditionalUpdate: boolean;
  /** DELETE answers the deleted object instead of a Success Status. */
  returnDeletedObject: boolean;
  /** DNS-1123 subdomain (most types) or label (namespaces) names. */
  nameFormat: 'subdomain' | 'label';
  /** Converts between this API version's shape and the stored shape (identity when absent). */
  toStorage?(object: KubeObject): KubeObject;
  fromStorage?(object: KubeObject): KubeObject;
  /** Strategy hooks: defaults and system fields on create/update (after schema defaulting). */
  prepareForCreate?(object: KubeObject): void;
  prepareForUpdate?(object: KubeObject, old: KubeObject): void;
  /** Type-specific validation beyond metadata (and beyond the schema for custom resources). */
  validate?(object: KubeObject, old?: KubeObject): FieldError[];
  /** The create/update/delete verbs answer 405 (CRDs are served read-only). */
  readOnly?: boolean;
}

export function apiVersionOf(type: Pick<ResourceType, 'group' | 'version'>): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

/** The qualified resource for messages (`pluginreleases.pluginrelease.io`, `namespaces`). */
export function qualifiedResource(type: ResourceType): { group: string; resource: string } {
  return { group: type.group, resource: type.plural };
}

/** The storage key of an object: `namespace/name`, or `name` for cluster-scoped ones. */
/** Now as metav1.Time serializes it: RFC 3339 in UTC, whole seconds. */
export function nowRfc3339(): string {
  return `${new Date().toISOString().slice(0, 19)}Z`;
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** All resource types served, indexed for routing, short names and owner lookups. */
export class ResourceRegistry {
  readonly #byPath = new Map<string, ResourceType>();
  readonly #byKind = new Map<string, ResourceType>();
  readonly all: ResourceType[] = [];

  add(type: ResourceType): void {
    const key = `${type.group}/${type.version}/${type.plural}`;
    if (this.#byPath.has(key)) throw new Error(`resource ${key} registered twice`);
    this.#byPath.set(key, type);
    this.#byKind.set(`${apiVersionOf(type)}/${type.kind}`, type);
    this.all.push(type);
  }

  lookup(group: string, version: string, plural: string): ResourceType | undefined {
    return this.#byPath.get(`${group}/${version}/${plural}`);
  }

  /** The resource an ownerReference or object's apiVersion+kind names. */
  forKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.#byKind.get(`${apiVersion}/${kind}`);
  }

  /** Group → versions, in registration order (the first version is preferred). */
  groups(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const t of this.all) {
      const versions = out.get(t.group) ?? [];
      if (!versions.includes(t.version)) versions.push(t.version);
      out.set(t.group, versions);
    }
    return out;
  }

  inGroupVersion(group: string, version: string): ResourceType[] {
    return this.all.filter((t) => t.group === group && t.version === version);
  }
}
