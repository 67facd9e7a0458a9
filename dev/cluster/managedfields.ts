// Field ownership as structured-merge-diff keeps it in metadata.managedFields: which manager owns
// which fields (FieldsV1), updated on every write, and the server-side apply rules built on it —
// conflicts between managers, force, shared ownership of equal values, and removal of the fields a
// manager stopped applying.

import type { Schema } from '../../src/api/prune.ts';
import type { MergeStrategies } from './patch.ts';
import { type KubeObject, nowRfc3339 } from './resources.ts';
import { deepEqual } from './schema.ts';
import { ApiError } from './status.ts';

/** One entry of metadata.managedFields. */
export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: FieldsV1;
  subresource?: string;
}

export type FieldsV1 = { [key: string]: FieldsV1 };

/** What decides how lists merge and are owned: the schema, or the built-in's merge strategies. */
export interface OwnershipContext {
  schema: Schema;
  mergeStrategies?: MergeStrategies;
  /** Fields the endpoint resets (status on the main endpoint of a type with a status subresource). */
  statusSubresource: boolean;
}

type ListKind = { kind: 'map'; keys: string[] } | { kind: 'set' } | { kind: 'atomic' };

/** A set of field paths; a path is its FieldsV1 elements joined by newlines (`f:spec\nf:plugin`). */
type PathSet = Set<string>;

const SEP = '\n';

/** Fields no manager owns (structured-merge-diff's stripped metadata). */
const STRIPPED = new Set(
  [
    'f:apiVersion',
    'f:kind',
    'f:metadata',
    'f:metadata\nf:name',
    'f:metadata\nf:namespace',
    'f:metadata\nf:uid',
    'f:metadata\nf:resourceVersion',
    'f:metadata\nf:generation',
    'f:metadata\nf:creationTimestamp',
    'f:metadata\nf:deletionTimestamp',
    'f:metadata\nf:deletionGracePeriodSeconds',
    'f:metadata\nf:selfLink',
    'f:metadata\nf:generateName',
  ].map((p) => p),
);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(prefix: string, element: string): string {
  return prefix ? `${prefix}${SEP}${element}` : element;
}

function childSchema(schema: Schema | undefined, key: string): Schema | undefined {
  if (!schema) return undefined;
  return (
    schema.properties?.[key] ??
    (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined)
  );
}

const META_LISTS: Record<string, ListKind> = {
  'metadata.finalizers': { kind: 'set' },
  'metadata.ownerReferences': { kind: 'map', keys: ['uid'] },
};

function listKind(ctx: OwnershipContext, schema: Schema | undefined, dotted: string): ListKind {
  if (META_LISTS[dotted]) return META_LISTS[dotted]!;
  const type = schema?.['x-kubernetes-list-type'];
  if (type === 'map') return { kind: 'map', keys: schema?.['x-kubernetes-list-map-keys'] ?? [] };
  if (type === 'set') return { kind: 'set' };
  const strategy = ctx.mergeStrategies?.[dotted];
  if (strategy && 'key' in strategy) return { kind: 'map', keys: [strategy.key] };
  if (strategy && 'primitive' in strategy) return { kind: 'set' };
  return { kind: 'atomic' };
}

function isAtomicMap(schema: Schema | undefined): boolean {
  return schema?.['x-kubernetes-map-type'] === 'atomic';
}

function keyElement(item: Record<string, unknown>, keys: string[]): string {
  const key: Record<string, unknown> = {};
  for (const k of [...keys].sort()) if (item[k] !== undefined) key[k] = item[k];
  return `k:${JSON.stringify(key)}`;
}

/** The schema for metadata's own fields: labels and annotations are granular maps. */
const METADATA_SCHEMA: Schema = {
  type: 'object',
  properties: {
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
    finalizers: { type: 'array', items: { type: 'string' } },
    ownerReferences: { type: 'array', items: { type: 'object', 'x-kubernetes-map-type': 'atomic' } },
  },
};

function rootChild(ctx: OwnershipContext, key: string): Schema | undefined {
  return key === 'metadata' ? METADATA_SCHEMA : childSchema(ctx.schema, key);
}

/**
 * The paths a value sets. Apply style (`containers` false) owns leaves and list items; update style
 * also owns every map it created (the `.` of FieldsV1).
 */
function collect(
  ctx: OwnershipContext,
  value: unknown,
  schema: Schema | undefined,
  dotted: string,
  prefix: string,
  out: PathSet,
  containers: boolean,
) {
  if (isObject(value) && !isAtomicMap(schema)) {
    const keys = Object.keys(value);
    if (prefix && (containers || keys.length === 0)) out.add(prefix);
    for (const k of keys) {
      const s = prefix === '' ? rootChild(ctx, k) : childSchema(schema, k);
      collect(ctx, value[k], s, dotted ? `${dotted}.${k}` : k, join(prefix, `f:${k}`), out, containers);
    }
    return;
  }
  if (Array.isArray(value)) {
    const kind = listKind(ctx, schema, dotted);
    if (kind.kind === 'atomic') {
      out.add(prefix);
      return;
    }
    if (containers || value.length === 0) out.add(prefix);
    for (const item of value) {
      if (kind.kind === 'set') {
        out.add(join(prefix, `v:${JSON.stringify(item)}`));
      } else if (isObject(item)) {
        const p = join(prefix, keyElement(item, kind.keys));
        out.add(p);
        if (isAtomicMap(schema?.items)) continue;
        for (const k of Object.keys(item)) {
          collect(
            ctx,
            item[k],
            childSchema(schema?.items, k),
            `${dotted}.${k}`,
            join(p, `f:${k}`),
            out,
            containers,
          );
        }
      }
    }
    return;
  }
  if (prefix) out.add(prefix);
}

/** Paths whose value an update changed or added (removals are handled by pruning to what exists). */
function changed(
  ctx: OwnershipContext,
  before: unknown,
  after: unknown,
  schema: Schema | undefined,
  dotted: string,
  prefix: string,
  out: PathSet,
) {
  if (after === undefined || deepEqual(before, after)) return;
  if (before === undefined) {
    collect(ctx, after, schema, dotted, prefix, out, true);
    return;
  }
  if (isObject(before) && isObject(after) && !isAtomicMap(schema)) {
    for (const k of Object.keys(after)) {
      const s = prefix === '' ? rootChild(ctx, k) : childSchema(schema, k);
      changed(ctx, before[k], after[k], s, dotted ? `${dotted}.${k}` : k, join(prefix, `f:${k}`), out);
    }
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const kind = listKind(ctx, schema, dotted);
    if (kind.kind === 'set') {
      for (const item of after) {
        if (!before.some((b) => deepEqual(b, item))) out.add(join(prefix, `v:${JSON.stringify(item)}`));
      }
      return;
    }
    if (kind.kind === 'map') {
      for (const item of after) {
        if (!isObject(item)) continue;
        const element = keyElement(item, kind.keys);
        const old = before.find((b) => isObject(b) && keyElement(b, kind.keys) === element);
        const p = join(prefix, element);
        if (old === undefined) {
          collect(ctx, item, schema?.items, dotted, p, out, true);
          out.add(p);
        } else if (isAtomicMap(schema?.items)) {
          if (!deepEqual(old, item)) out.add(p);
        } else {
          for (const k of Object.keys(item)) {
            changed(
              ctx,
              (old as Record<string, unknown>)[k],
              item[k],
              childSchema(schema?.items, k),
              `${dotted}.${k}`,
              join(p, `f:${k}`),
              out,
            );
          }
        }
      }
      return;
    }
  }
  out.add(prefix);
}

function decode(fields: FieldsV1 | undefined, prefix = '', out: PathSet = new Set()): PathSet {
  for (const [key, child] of Object.entries(fields ?? {})) {
    if (key === '.') {
      if (prefix) out.add(prefix);
      continue;
    }
    const p = join(prefix, key);
    if (Object.keys(child).length === 0) out.add(p);
    else decode(child, p, out);
  }
  return out;
}

function encode(paths: PathSet): FieldsV1 {
  const root: FieldsV1 = {};
  const members = new Set<FieldsV1>();
  for (const path of [...paths].sort()) {
    let node = root;
    for (const element of path.split(SEP)) {
      node[element] ??= {};
      node = node[element]!;
    }
    members.add(node);
  }
  const mark = (node: FieldsV1) => {
    for (const child of Object.values(node)) {
      if (members.has(child) && Object.keys(child).length > 0) child['.'] = {};
      mark(child);
    }
  };
  mark(root);
  return sortTree(root);
}

function sortTree(node: FieldsV1): FieldsV1 {
  const out: FieldsV1 = {};
  for (const key of Object.keys(node).sort()) out[key] = sortTree(node[key]!);
  return out;
}

/** Keeps only the paths an endpoint may own (no stripped metadata; status or not, per subresource). */
function ownable(ctx: OwnershipContext, paths: PathSet, subresource: string | undefined): PathSet {
  const out: PathSet = new Set();
  for (const p of paths) {
    if (STRIPPED.has(p) || p.startsWith(`f:metadata${SEP}f:managedFields`)) continue;
    const inStatus = p === 'f:status' || p.startsWith(`f:status${SEP}`);
    if (subresource === 'status' ? !inStatus : ctx.statusSubresource && inStatus) continue;
    out.add(p);
  }
  return out;
}

/** The value at a path, or undefined when it does not exist. */
function valueAt(object: unknown, path: string): unknown {
  let current: unknown = object;
  for (const element of path.split(SEP)) {
    if (current === undefined) return undefined;
    if (element.startsWith('f:')) {
      current = isObject(current) ? current[element.slice(2)] : undefined;
    } else if (element.startsWith('k:')) {
      const key = JSON.parse(element.slice(2)) as Record<string, unknown>;
      current = Array.isArray(current)
        ? current.find((i) => isObject(i) && Object.entries(key).every(([k, v]) => deepEqual(i[k], v)))
        : undefined;
    } else if (element.startsWith('v:')) {
      const value = JSON.parse(element.slice(2));
      current = Array.isArray(current) && current.some((i) => deepEqual(i, value)) ? value : undefined;
    } else {
      return undefined;
    }
  }
  return current;
}

/** Removes the field at a path from the object (a map key, a list item or a set value). */
function removeAt(object: unknown, path: string) {
  const elements = path.split(SEP);
  const last = elements.pop()!;
  const parent = elements.length ? valueAt(object, elements.join(SEP)) : object;
  if (last.startsWith('f:') && isObject(parent)) {
    delete parent[last.slice(2)];
  } else if (Array.isArray(parent)) {
    const index = last.startsWith('k:')
      ? parent.findIndex((i) => {
          const key = JSON.parse(last.slice(2)) as Record<string, unknown>;
          return isObject(i) && Object.entries(key).every(([k, v]) => deepEqual(i[k], v));
        })
      : parent.findIndex((i) => deepEqual(i, JSON.parse(last.slice(2))));
    if (index >= 0) parent.splice(index, 1);
  }
}

/** `.spec.conditions[type="Ready"].status`: how conflict messages name a path. */
function describePath(path: string): string {
  let out = '';
  for (const element of path.split(SEP)) {
    if (element.startsWith('f:')) out += `.${element.slice(2)}`;
    else if (element.startsWith('k:')) {
      const key = JSON.parse(element.slice(2)) as Record<string, unknown>;
      out += `[${Object.entries(key)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',')}]`;
    } else if (element.startsWith('v:')) out += `[=${element.slice(2)}]`;
  }
  return out;
}

/** The object's managedFields entries with their field sets decoded. */
function ownershipsOf(object: KubeObject | undefined): Ownership[] {
  const entries = object?.metadata.managedFields;
  if (!Array.isArray(entries)) return [];
  return (entries as ManagedFieldsEntry[]).map((entry) => ({ entry, paths: decode(entry.fieldsV1) }));
}

function sameEntry(
  e: ManagedFieldsEntry,
  manager: string,
  operation: string,
  subresource: string | undefined,
) {
  return e.manager === manager && e.operation === operation && (e.subresource ?? '') === (subresource ?? '');
}

/** One manager's entry with the field paths it owns, decoded. */
interface Ownership {
  entry: ManagedFieldsEntry;
  paths: PathSet;
}

/** A new, empty entry for `manager`'s writes of this operation (and subresource). */
function newOwnership(
  manager: string,
  operation: 'Apply' | 'Update',
  apiVersion: string,
  subresource: string | undefined,
): Ownership {
  return {
    entry: {
      manager,
      operation,
      apiVersion,
      time: nowRfc3339(),
      fieldsType: 'FieldsV1',
      fieldsV1: {},
      ...(subresource ? { subresource } : {}),
    },
    paths: new Set(),
  };
}

/** Rebuilds the entries: every set pruned to fields that exist, empty ones dropped. */
function finish(object: KubeObject, sets: Ownership[]): ManagedFieldsEntry[] {
  const out: ManagedFieldsEntry[] = [];
  for (const { entry, paths } of sets) {
    const alive = new Set([...paths].filter((p) => valueAt(object, p) !== undefined));
    if (alive.size === 0) continue;
    const { fieldsV1: _, ...rest } = entry;
    out.push({ ...rest, fieldsType: 'FieldsV1', fieldsV1: encode(alive) });
  }
  return out;
}

/**
 * The managedFields after a non-apply write (create, update, patch) by `manager`: it now owns what
 * it changed, and nobody else does.
 */
export function updateManagedFields(
  ctx: OwnershipContext,
  before: KubeObject | undefined,
  after: KubeObject,
  manager: string,
  apiVersion: string,
  subresource: string | undefined,
): ManagedFieldsEntry[] {
  const touched: PathSet = new Set();
  changed(ctx, before ?? {}, after, ctx.schema, '', '', touched);
  const mine = ownable(ctx, touched, subresource);
  const sets = ownershipsOf(before);
  for (const s of sets)
    if (!sameEntry(s.entry, manager, 'Update', subresource)) for (const p of mine) s.paths.delete(p);
  let own = sets.find((s) => sameEntry(s.entry, manager, 'Update', subresource));
  if (mine.size > 0) {
    if (!own) {
      own = newOwnership(manager, 'Update', apiVersion, subresource);
      sets.push(own);
    }
    own.entry = { ...own.entry, apiVersion, time: nowRfc3339() };
    for (const p of mine) own.paths.add(p);
  }
  return finish(after, sets);
}

/**
 * Server-side apply ownership for `manager` applying `applied` onto `merged` (the live object with
 * the applied configuration merged in): conflicts with other managers' differing values answer 409
 * unless `force`; fields this manager applied before and no longer applies, and nobody else owns,
 * are removed from `merged`. Returns the new managedFields.
 */
export function applyManagedFields(
  ctx: OwnershipContext,
  live: KubeObject | undefined,
  applied: KubeObject,
  merged: KubeObject,
  manager: string,
  apiVersion: string,
  subresource: string | undefined,
  force: boolean,
  qualified: { group: string; resource: string; name: string },
): ManagedFieldsEntry[] {
  const appliedPaths: PathSet = new Set();
  collect(ctx, applied, ctx.schema, '', '', appliedPaths, false);
  const mine = ownable(ctx, appliedPaths, subresource);
  const sets = ownershipsOf(live);
  const conflicts: Array<{ manager: string; apiVersion: string; path: string }> = [];
  // Only leaf fields (scalars, atomic lists and maps) conflict; a map or list item is a container.
  const containers = new Set<string>();
  for (const p of mine) {
    const elements = p.split(SEP);
    for (let i = 1; i < elements.length; i++) containers.add(elements.slice(0, i).join(SEP));
  }
  for (const s of sets) {
    if (sameEntry(s.entry, manager, 'Apply', subresource)) continue;
    for (const p of mine) {
      if (!s.paths.has(p) || containers.has(p)) continue;
      const liveValue = valueAt(live, p);
      const appliedValue = valueAt(applied, p);
      // Equal values are shared; differing ones conflict (or are taken over with force).
      if (liveValue === undefined || deepEqual(liveValue, appliedValue)) continue;
      if (force) s.paths.delete(p);
      else conflicts.push({ manager: s.entry.manager, apiVersion: s.entry.apiVersion, path: p });
    }
  }
  if (conflicts.length) throw conflictError(conflicts, qualified);
  let own = sets.find((s) => sameEntry(s.entry, manager, 'Apply', subresource));
  const previous = own?.paths ?? new Set<string>();
  const ownedByOthers = new Set<string>();
  for (const s of sets) if (s !== own) for (const p of s.paths) ownedByOthers.add(p);
  // Longest paths first, so list items go before the lists holding them.
  const dropped = [...previous]
    .filter((p) => !mine.has(p) && !ownedByOthers.has(p))
    .sort((a, b) => b.length - a.length);
  for (const p of dropped) removeAt(merged, p);
  if (!own) {
    own = newOwnership(manager, 'Apply', apiVersion, subresource);
    sets.unshift(own);
  }
  own.entry = { ...own.entry, apiVersion, time: nowRfc3339() };
  own.paths = mine;
  return finish(merged, sets);
}

/**
 * Merges an applied configuration into the live object as server-side apply does: maps recursively
 * (atomic maps replaced), map lists by their keys, set lists as a union, other lists replaced.
 */
export function mergeApplied(ctx: OwnershipContext, live: unknown, applied: unknown): unknown {
  return merge(ctx, live, applied, ctx.schema, '', true);
}

function merge(
  ctx: OwnershipContext,
  live: unknown,
  applied: unknown,
  schema: Schema | undefined,
  dotted: string,
  root: boolean,
): unknown {
  if (isObject(applied) && isObject(live) && !isAtomicMap(schema)) {
    const out: Record<string, unknown> = { ...live };
    for (const [k, v] of Object.entries(applied)) {
      const s = root ? rootChild(ctx, k) : childSchema(schema, k);
      out[k] = merge(ctx, live[k], v, s, dotted ? `${dotted}.${k}` : k, false);
    }
    return out;
  }
  if (Array.isArray(applied) && Array.isArray(live)) {
    const kind = listKind(ctx, schema, dotted);
    if (kind.kind === 'set') return [...live, ...applied.filter((a) => !live.some((l) => deepEqual(l, a)))];
    if (kind.kind === 'map') {
      const out = [...live];
      for (const item of applied) {
        if (!isObject(item)) continue;
        const element = keyElement(item, kind.keys);
        const index = out.findIndex((l) => isObject(l) && keyElement(l, kind.keys) === element);
        if (index >= 0)
          out[index] = isAtomicMap(schema?.items)
            ? item
            : merge(ctx, out[index], item, schema?.items, dotted, false);
        else out.push(item);
      }
      return out;
    }
  }
  return structuredClone(applied);
}

function conflictError(
  conflicts: Array<{ manager: string; apiVersion: string; path: string }>,
  qualified: { group: string; resource: string; name: string },
): ApiError {
  const by = new Map<string, string[]>();
  for (const c of conflicts) {
    const key = `conflict with ${JSON.stringify(c.manager)} using ${c.apiVersion}`;
    by.set(key, [...(by.get(key) ?? []), describePath(c.path)]);
  }
  const parts = [...by].map(([who, paths]) =>
    paths.length === 1
      ? `${who}: ${paths[0]}`
      : `${who.replace('conflict with', 'conflicts with')}:\n${paths.map((p) => `- ${p}`).join('\n')}`,
  );
  const n = conflicts.length;
  const message = `Apply failed with ${n} conflict${n === 1 ? '' : 's'}: ${parts.join('\n')}`;
  return new ApiError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: 'Conflict',
    details: {
      name: qualified.name,
      ...(qualified.group ? { group: qualified.group } : {}),
      kind: qualified.resource,
      causes: conflicts.map((c) => ({
        reason: 'FieldManagerConflict',
        message: `conflict with ${JSON.stringify(c.manager)} using ${c.apiVersion}`,
        field: describePath(c.path),
      })),
    },
    code: 409,
  });
}

/** The default field manager: the user agent's program name, as the API server derives it. */
export function managerFromUserAgent(userAgent: string | undefined): string {
  const name = (userAgent ?? '').split('/')[0]!.trim();
  return name || 'unknown';
}
