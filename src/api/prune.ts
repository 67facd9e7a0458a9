// Structural-schema pruning: the fields a custom resource's openAPIV3Schema does not declare, dropped
// as the API server drops them. try-activate uses it for strict field checks, the dev cluster to serve CRs.

/** A node of a structural openAPIV3Schema, as CustomResourceDefinitions carry it. */
export interface Schema {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
  not?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The fields of metav1.ObjectMeta; anything else under a resource's metadata is unknown and pruned. */
const OBJECT_META_FIELDS = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

export function childPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/**
 * Drops fields the schema does not declare (x-kubernetes-preserve-unknown-fields keeps them), as the
 * API server prunes custom resources, and returns the dropped paths for fieldValidation (Warn/Strict).
 * At the root (and in embedded resources) apiVersion, kind and metadata are kept; unknown metadata
 * fields are dropped too.
 */
export function prune(value: JsonObject, schema: Schema): string[] {
  const unknown: string[] = [];
  pruneObject(value, schema, '', true, unknown);
  return unknown;
}

function pruneObject(value: JsonObject, schema: Schema, path: string, isRoot: boolean, unknown: string[]) {
  for (const key of Object.keys(value)) {
    const child = value[key]!;
    const p = childPath(path, key);
    if (isRoot && (key === 'apiVersion' || key === 'kind')) continue;
    if (isRoot && key === 'metadata') {
      if (isObject(child)) {
        for (const mk of Object.keys(child)) {
          if (!OBJECT_META_FIELDS.has(mk)) {
            unknown.push(childPath(p, mk));
            delete child[mk];
          }
        }
      }
      continue;
    }
    const propSchema = schema.properties?.[key];
    if (propSchema) {
      pruneValue(child, propSchema, p, unknown);
    } else if (typeof schema.additionalProperties === 'object') {
      pruneValue(child, schema.additionalProperties, p, unknown);
    } else if (schema['x-kubernetes-preserve-unknown-fields'] || schema.additionalProperties === true) {
      // kept as is
    } else {
      unknown.push(p);
      delete value[key];
    }
  }
}

function pruneValue(value: Json, schema: Schema, path: string, unknown: string[]) {
  if (isObject(value)) {
    if (schema.properties || typeof schema.additionalProperties === 'object') {
      pruneObject(value, schema, path, schema['x-kubernetes-embedded-resource'] === true, unknown);
    } else if (schema['x-kubernetes-embedded-resource']) {
      pruneObject(value, schema, path, true, unknown);
    } else if (!schema['x-kubernetes-preserve-unknown-fields'] && schema.type === 'object') {
      pruneObject(value, schema, path, false, unknown);
    }
  } else if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => {
      pruneValue(item, schema.items!, `${path}[${i}]`, unknown);
    });
  }
}
