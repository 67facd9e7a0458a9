// The generic registry: create/get/list/update/patch/delete semantics of kube-apiserver's
// genericregistry.Store and rest.BeforeCreate/BeforeUpdate/BeforeDelete, over the in-memory Store.
import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { prune, type Schema } from '../../src/api/prune.ts';
import {
  applyManagedFields,
  mergeApplied,
  type OwnershipContext,
  updateManagedFields,
} from './managedfields.ts';
import {
  applyJsonPatch,
  decodeJsonPatch,
  JsonPatchDecodeError,
  JsonPatchError,
  mergePatch,
  strategicMergePatch,
} from './patch.ts';
import {
  apiVersionOf,
  type KubeObject,
  nowRfc3339,
  type ObjectMeta,
  objectKey,
  qualifiedResource,
  type ResourceRegistry,
  type ResourceType,
} from './resources.ts';
import { applyDefaults, deepEqual, validate as validateSchema } from './schema.ts';
import {
  type FieldSelector,
  type LabelSelector,
  labelValueProblems,
  matchesFields,
  matchesLabels,
  pinnedName,
  qualifiedNameProblems,
} from './selectors.ts';
import { ApiError, errors, type FieldError, field, GoLiteral, successStatus } from './status.ts';
import { CompactedError, type Entry, type Store } from './store.ts';

export type FieldValidation = 'Ignore' | 'Warn' | 'Strict';

export interface WriteOptions {
  dryRun?: boolean;
  fieldValidation?: FieldValidation;
  /** The fieldManager query parameter: who writes, for managedFields (required for apply). */
  fieldManager?: string;
  /** The manager when no fieldManager is given: the User-Agent's program name. */
  defaultManager?: string;
  subresource?: string;
  /** Server-side apply: take over conflicting fields. */
  force?: boolean;
  /** Set by apply: the applied configuration (pruned, not defaulted), which decides ownership. */
  applied?: KubeObject;
}

export interface DeleteOptions {
  propagationPolicy?: 'Orphan' | 'Background' | 'Foreground';
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
  gracePeriodSeconds?: number;
}

export interface WriteResult {
  code: number;
  object: KubeObject | Record<string, unknown>;
  warnings: string[];
}

export interface ListOptions {
  labelSelector: LabelSelector;
  fieldSelector: FieldSelector;
  limit?: number;
  continueToken?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface ListResult {
  entries: Entry[];
  resourceVersion: string;
  continueToken?: string;
  remainingItemCount?: number;
}

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
  applyCbor: 'application/apply-patch+cbor',
} as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const GENERATE_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nameProblems(name: string, format: 'subdomain' | 'label'): string | undefined {
  if (format === 'label') {
    if (name.length > 63) return 'must be no more than 63 characters';
    if (!DNS_LABEL.test(name))
      return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    return undefined;
  }
  if (name.length > 253) return 'must be no more than 253 characters';
  if (!DNS_SUBDOMAIN.test(name))
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  return undefined;
}

/** ValidateObjectMeta: the checks every resource's metadata passes on create and update. */
export function validateObjectMeta(type: ResourceType, meta: ObjectMeta): FieldError[] {
  const errs: FieldError[] = [];
  if (!meta.name) {
    errs.push(field.required('metadata.name', 'name or generateName is required'));
  } else {
    const problem = nameProblems(meta.name, type.nameFormat);
    if (problem) errs.push(field.invalid('metadata.name', meta.name, problem));
  }
  if (type.namespaced && !meta.namespace) errs.push(field.required('metadata.namespace'));
  if (!type.namespaced && meta.namespace)
    errs.push(field.forbidden('metadata.namespace', 'not allowed on this type'));
  for (const [key, value] of Object.entries(meta.labels ?? {})) {
    for (const p of qualifiedNameProblems(key)) errs.push(field.invalid('metadata.labels', key, p));
    if (typeof value !== 'string') errs.push(field.invalid(`metadata.labels`, value, 'must be a string'));
    else for (const p of labelValueProblems(value)) errs.push(field.invalid('metadata.labels', value, p));
  }
  let annotationBytes = 0;
  for (const [key, value] of Object.entries(meta.annotations ?? {})) {
    for (const p of qualifiedNameProblems(key.toLowerCase()))
      errs.push(field.invalid('metadata.annotations', key, p));
    annotationBytes += Buffer.byteLength(key) + Buffer.byteLength(String(value));
  }
  if (annotationBytes > TOTAL_ANNOTATION_SIZE_LIMIT)
    errs.push(field.tooLong('metadata.annotations', TOTAL_ANNOTATION_SIZE_LIMIT));
  (meta.finalizers ?? []).forEach((f, i) => {
    for (const p of qualifiedNameProblems(f)) errs.push(field.invalid(`metadata.finalizers[${i}]`, f, p));
  });
  let controllers = 0;
  for (const ref of meta.ownerReferences ?? []) {
    if (!ref.apiVersion)
      errs.push(field.invalid('metadata.ownerReferences.apiVersion', '', 'version must not be empty'));
    if (!ref.kind) errs.push(field.invalid('metadata.ownerReferences.kind', '', 'kind must not be empty'));
    if (!ref.name) errs.push(field.invalid('metadata.ownerReferences.name', '', 'name must not be empty'));
    if (!ref.uid) errs.push(field.invalid('metadata.ownerReferences.uid', '', 'uid must not be empty'));
    if (ref.controller) controllers++;
  }
  if (controllers > 1)
    errs.push(
      field.invalid(
        'metadata.ownerReferences',
        meta.ownerReferences,
        'Only one reference can have Controller set to true',
      ),
    );
  return errs;
}

interface DecodeResult {
  object: KubeObject;
  warnings: string[];
}

/** The Go type name a field of a built-in would have, for decode errors. */
function goTypeName(schemaType: string | undefined): string {
  switch (schemaType) {
    case 'integer':
      return 'int64';
    case 'boolean':
      return 'bool';
    case 'array':
      return '[]interface {}';
    case 'object':
      return 'map[string]interface {}';
    default:
      return schemaType ?? 'string';
  }
}

function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'object';
  return typeof value;
}

/** The first value in `value` whose JSON type does not fit the built-in's schema (json.Unmarshal error). */
function findTypeMismatch(
  value: unknown,
  schema: Schema,
  path: string,
): { path: string; actual: string; expected: string } | undefined {
  if (value === null || value === undefined) return undefined;
  if (schema['x-kubernetes-int-or-string']) {
    return typeof value === 'string' || typeof value === 'number'
      ? undefined
      : { path, actual: jsonTypeName(value), expected: 'intstr.IntOrString' };
  }
  const t = schema.type;
  if (t) {
    const actual = jsonTypeName(value);
    const ok =
      (t === 'object' && actual === 'object') ||
      (t === 'array' && actual === 'array') ||
      (t === 'string' && actual === 'string') ||
      (t === 'boolean' && actual === 'boolean') ||
      (t === 'number' && actual === 'number') ||
      (t === 'integer' && actual === 'number' && Number.isInteger(value));
    if (!ok) return { path, actual: actual === 'number' ? 'number' : actual, expected: goTypeName(t) };
  }
  if (Array.isArray(value) && schema.items) {
    for (let i = 0; i < value.length; i++) {
      const m = findTypeMismatch(value[i], schema.items, path);
      if (m) return m;
    }
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const s =
        schema.properties?.[k] ??
        (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
      if (s) {
        const m = findTypeMismatch(v, s, path ? `${path}.${k}` : k);
        if (m) return m;
      }
    }
  }
  return undefined;
}

function metadataTypeMismatch(meta: unknown): string | undefined {
  if (meta === undefined) return undefined;
  if (!isObject(meta)) return 'metadata';
  const stringFields = [
    'name',
    'generateName',
    'namespace',
    'uid',
    'resourceVersion',
    'creationTimestamp',
    'deletionTimestamp',
  ];
  for (const f of stringFields)
    if (meta[f] !== undefined && meta[f] !== null && typeof meta[f] !== 'string') return `metadata.${f}`;
  for (const f of ['labels', 'annotations'])
    if (
      meta[f] !== undefined &&
      meta[f] !== null &&
      (!isObject(meta[f]) || Object.values(meta[f]).some((v) => typeof v !== 'string'))
    )
      return `metadata.${f}`;
  if (
    meta.finalizers !== undefined &&
    meta.finalizers !== null &&
    (!Array.isArray(meta.finalizers) || meta.finalizers.some((v) => typeof v !== 'string'))
  )
    return 'metadata.finalizers';
  if (
    meta.ownerReferences !== undefined &&
    meta.ownerReferences !== null &&
    !Array.isArray(meta.ownerReferences)
  )
    return 'metadata.ownerReferences';
  return undefined;
}

/**
 * The registry over the store. Every method runs synchronously once its request body is read, so a
 * request is atomic against every other (the single-threaded stand-in for etcd transactions).
 */
export class Api {
  readonly store: Store;
  readonly types: ResourceRegistry;
  /** Called after writes that may concern the garbage collector or the namespace controller. */
  onWrite: (entry: Entry) => void = () => {};

  constructor(store: Store, types: ResourceRegistry) {
    this.store = store;
    this.types = types;
  }

  /** Reads the stored form as the requested API version sees it. */
  external(type: ResourceType, object: KubeObject): KubeObject {
    return type.fromStorage ? type.fromStorage(object) : object;
  }

  /** A deep, mutable copy of an entry in the requested version (parsed from its cached JSON). */
  mutableCopy(type: ResourceType, entry: Entry): KubeObject {
    return JSON.parse(this.serialize(type, entry)) as KubeObject;
  }

  /** `{"kind":…,"apiVersion":…, …}` for one stored entry, reusing its cached JSON when no conversion applies. */
  serialize(type: ResourceType, entry: Entry): string {
    if (type.fromStorage) return JSON.stringify(type.fromStorage(entry.object));
    if (entry.typed) return entry.body;
    return `{"kind":${JSON.stringify(type.kind)},"apiVersion":${JSON.stringify(apiVersionOf(type))},${entry.body.slice(1)}`;
  }

  // ---- decoding ---------------------------------------------------------------------------------

  /**
   * Decodes a request body into the stored form: TypeMeta checks, unknown-field pruning (reported
   * per fieldValidation), wrong JSON types (400 for built-ins, 422 later for custom resources),
   * schema defaulting, and conversion to the storage version.
   */
  decode(
    type: ResourceType,
    body: unknown,
    fieldValidation: FieldValidation = 'Warn',
    defaults = true,
  ): DecodeResult {
    if (!isObject(body))
      throw errors.badRequest(`the object provided is unrecognized (must be of type ${type.kind})`);
    // The caller hands over `body` (freshly parsed or built): decoding prunes and defaults it in place.
    const object = body as KubeObject;
    const expected = apiVersionOf(type);
    if (type.custom) {
      if (!object.kind) throw errors.badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
      if (!object.apiVersion)
        throw errors.badRequest(`Object 'apiVersion' is missing in '${JSON.stringify(body)}'`);
    }
    if (object.apiVersion !== undefined && object.apiVersion !== expected) {
      throw errors.badRequest(
        `the API version in the data (${object.apiVersion}) does not match the expected API version (${expected})`,
      );
    }
    if (object.kind !== undefined && object.kind !== type.kind) {
      throw errors.badRequest(
        `${object.kind} in version "${type.version}" cannot be handled as a ${type.kind}: the object provided is unrecognized (must be of type ${type.kind})`,
      );
    }
    object.apiVersion = expected;
    object.kind = type.kind;
    const badMeta = metadataTypeMismatch(object.metadata);
    if (badMeta)
      throw errors.badRequest(
        `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: json: cannot unmarshal into Go struct field ObjectMeta.${badMeta}`,
      );
    if (object.metadata === undefined || object.metadata === null) object.metadata = {};
    if (!type.custom) {
      const mismatch = findTypeMismatch(object, type.schema, '');
      if (mismatch)
        throw errors.badRequest(
          `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: json: cannot unmarshal ${mismatch.actual} into Go struct field ${type.kind}.${mismatch.path} of type ${mismatch.expected}`,
        );
    }
    const unknown = prune(object as never, type.schema);
    const warnings: string[] = [];
    if (unknown.length && fieldValidation === 'Strict') {
      const list = unknown.map((u) => `unknown field "${u}"`).join(', ');
      throw errors.badRequest(
        `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: strict decoding error: ${list}`,
      );
    }
    if (fieldValidation === 'Warn') for (const u of unknown) warnings.push(`unknown field "${u}"`);
    if (type.custom && defaults) applyDefaults(object as never, type.schema);
    const stored = type.toStorage ? type.toStorage(object) : object;
    return { object: stored, warnings };
  }

  // ---- reads ------------------------------------------------------------------------------------

  get(type: ResourceType, namespace: string | undefined, name: string): Entry {
    const entry = this.store.get(type.storage, objectKey(type.namespaced ? namespace : undefined, name));
    if (!entry) throw errors.notFound(qualifiedResource(type), name);
    return entry;
  }

  /** Selectable fields of a stored object for field selectors. */
  fieldValue(type: ResourceType, object: KubeObject, name: string): string | undefined {
    if (name === 'metadata.name') return object.metadata.name;
    if (name === 'metadata.namespace') return object.metadata.namespace ?? '';
    return type.fieldLabels[name]?.(object);
  }

  matcher(type: ResourceType, namespace: string | undefined, label: LabelSelector, fieldSel: FieldSelector) {
    return (object: KubeObject): boolean => {
      if (namespace && object.metadata.namespace !== namespace) return false;
      if (label.length && !matchesLabels(label, object.metadata.labels)) return false;
      if (fieldSel.length && !matchesFields(fieldSel, (f) => this.fieldValue(type, object, f))) return false;
      return true;
    };
  }

  /**
   * Lists with the real server's resourceVersion semantics (""/"0" = latest, N + Exact = snapshot at
   * N, N + NotOlderThan = latest unless N is in the future) and limit/continue paging over a
   * consistent snapshot, in key order.
   */
  list(type: ResourceType, namespace: string | undefined, options: ListOptions): ListResult {
    const current = this.store.resourceVersion;
    const point = readPoint(options, current);
    const table = this.#snapshotAt(type, point, options.continueToken !== undefined);
    const scope = type.namespaced ? namespace : undefined;
    const match = this.matcher(type, scope, options.labelSelector, options.fieldSelector);
    const candidates = candidatesIn(table, type, namespace, options.fieldSelector);
    const limit = options.limit && options.limit > 0 ? options.limit : undefined;
    const { entries, next, more } = page(candidates, point.startAfter, match, limit);
    const result: ListResult = { entries, resourceVersion: String(point.consistent ? point.atRv : current) };
    if (more) {
      const last = entries.at(-1)!;
      result.continueToken = encodeContinue(point.consistent ? point.atRv : -1, `${last.key}\u0000`);
      const filtering = options.labelSelector.length > 0 || options.fieldSelector.length > 0;
      if (!filtering && point.consistent) result.remainingItemCount = candidates.length - next;
    }
    return result;
  }

  /**
   * The type's table at the read point; 410 Expired once compaction has passed it. A continued list
   * gets a token with it that goes on from the same key, inconsistently, on the latest state.
   */
  #snapshotAt(type: ResourceType, point: ReadPoint, continuing: boolean): Map<string, Entry> {
    try {
      return this.store.snapshot(type.storage, point.atRv);
    } catch (error) {
      if (!(error instanceof CompactedError)) throw error;
      if (continuing) {
        throw withContinue(
          errors.expired(
            'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
          ),
          encodeContinue(-1, point.startAfter),
        );
      }
      throw errors.expired(`too old resource version: ${error.requested} (${error.oldest})`);
    }
  }

  // ---- writes -----------------------------------------------------------------------------------

  #checkWritable(type: ResourceType, verb: string) {
    if (type.readOnly) throw errors.methodNotSupported(qualifiedResource(type), verb);
  }

  #namespaceAdmission(type: ResourceType, namespace: string | undefined, name: string) {
    if (!type.namespaced || !namespace) return;
    const ns = this.store.get('/namespaces', namespace);
    if (!ns) throw errors.notFound({ group: '', resource: 'namespaces' }, namespace);
    if (ns.object.metadata.deletionTimestamp) {
      throw errors.forbidden(
        qualifiedResource(type),
        name,
        `unable to create new content in namespace ${namespace} because it is being terminated`,
        [
          {
            reason: 'NamespaceTerminating',
            message: `namespace ${namespace} is being terminated`,
            field: 'metadata.namespace',
          },
        ],
      );
    }
  }

  #invalid(type: ResourceType, name: string, errs: FieldError[]): ApiError {
    return errors.invalid({ group: type.group, kind: type.kind }, name, errs);
  }

  /**
   * Sets metadata.managedFields for a write: apply ownership (with conflicts and removals) when the
   * write is an apply, update ownership otherwise. `before` is the stored object (none on create).
   */
  #manage(type: ResourceType, before: KubeObject | undefined, object: KubeObject, options: WriteOptions) {
    const provided = object.metadata.managedFields;
    // A client may send managedFields to replace them; `[{}]` clears them. Otherwise they carry over.
    let base = before;
    if (Array.isArray(provided) && provided.length > 0) {
      const valid = provided.filter(
        (e) => isObject(e) && typeof e.manager === 'string' && isObject(e.fieldsV1),
      );
      base = { ...(before ?? object), metadata: { ...(before ?? object).metadata, managedFields: valid } };
    }
    object.metadata.managedFields = base?.metadata.managedFields;
    const manager = options.fieldManager || options.defaultManager || 'unknown';
    const ctx = ownershipOf(type);
    const entries = options.applied
      ? applyManagedFields(
          ctx,
          base,
          options.applied,
          object,
          manager,
          apiVersionOf(type),
          options.subresource,
          options.force === true,
          {
            group: type.group,
            resource: type.plural,
            name: object.metadata.name ?? '',
          },
        )
      : updateManagedFields(ctx, base, object, manager, apiVersionOf(type), options.subresource);
    if (entries.length) object.metadata.managedFields = entries;
    else delete object.metadata.managedFields;
  }

  /** Schema validation (custom resources) plus the type's own rules, on the external form. */
  #validateObject(type: ResourceType, object: KubeObject, old?: KubeObject): FieldError[] {
    const errs = validateObjectMeta(type, object.metadata);
    if (type.custom) {
      // Metadata is validated above; the schema covers the rest of the object.
      const { metadata: _, ...rest } = this.external(type, object);
      errs.push(...validateSchema({ ...rest, metadata: {} }, type.schema));
    }
    if (type.validate) errs.push(...type.validate(object, old));
    return errs;
  }

  /** POST: creates a new object (201), or answers 409 AlreadyExists / 422 Invalid / 404 namespace. */
  create(
    type: ResourceType,
    namespace: string | undefined,
    body: unknown,
    options: WriteOptions = {},
  ): WriteResult {
    this.#checkWritable(type, 'create');
    const { object, warnings } = this.decode(type, body, options.fieldValidation);
    return this.createDecoded(type, namespace, object, warnings, options);
  }

  createDecoded(
    type: ResourceType,
    namespace: string | undefined,
    object: KubeObject,
    warnings: string[],
    options: WriteOptions,
  ): WriteResult {
    const meta = object.metadata;
    if (meta.resourceVersion)
      throw errors.badRequest('resourceVersion should not be set on objects to be created');
    if (type.namespaced) {
      if (meta.namespace && namespace && meta.namespace !== namespace)
        throw errors.badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      if (!meta.namespace) meta.namespace = namespace;
    } else {
      delete meta.namespace;
    }
    if (!meta.name && meta.generateName) {
      let suffix = '';
      for (let i = 0; i < 5; i++) suffix += GENERATE_CHARS[Math.floor(Math.random() * GENERATE_CHARS.length)];
      meta.name = `${meta.generateName}${suffix}`;
    }
    meta.uid = randomUUID();
    meta.creationTimestamp = nowRfc3339();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.selfLink;
    if (type.tracksGeneration) meta.generation = 1;
    else delete meta.generation;
    if (type.custom && type.statusSubresource) delete object.status;
    type.prepareForCreate?.(object);
    this.#manage(type, undefined, object, options);
    const name = meta.name ?? '';
    const errs = this.#validateObject(type, object);
    if (errs.length) throw this.#invalid(type, name, errs);
    this.#namespaceAdmission(type, meta.namespace, name);
    const key = objectKey(meta.namespace, name);
    if (this.store.get(type.storage, key)) throw errors.alreadyExists(qualifiedResource(type), name);
    if (options.dryRun) return { code: 201, object: this.external(type, object), warnings };
    const entry = this.store.put(type.storage, key, object);
    this.onWrite(entry);
    return { code: 201, object: this.external(type, entry.object), warnings };
  }

  /** PUT on the object or its status subresource. */
  update(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    options: WriteOptions = {},
  ): WriteResult {
    this.#checkWritable(type, 'update');
    const { object, warnings } = this.decode(type, body, options.fieldValidation);
    const meta = object.metadata;
    if (meta.name !== name) throw nameMismatch(meta.name ?? '', name);
    if (type.namespaced && meta.namespace && meta.namespace !== namespace)
      throw errors.badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    const existing = this.store.get(type.storage, objectKey(type.namespaced ? namespace : undefined, name));
    if (!existing) {
      if (type.allowCreateOnUpdate && !options.subresource) {
        delete meta.resourceVersion;
        return this.createDecoded(type, namespace, object, warnings, options);
      }
      throw errors.notFound(qualifiedResource(type), name);
    }
    if (!meta.resourceVersion) {
      // The registry names the resource here (not the Kind) and prints the uint64 0 with %#v.
      if (!type.allowUnconditionalUpdate)
        throw errors.invalid({ group: type.group, kind: type.plural }, name, [
          field.invalid('metadata.resourceVersion', new GoLiteral('0x0'), 'must be specified for an update'),
        ]);
    } else if (meta.resourceVersion !== existing.object.metadata.resourceVersion) {
      throw modifiedConflict(type, name);
    }
    return this.commitUpdate(type, existing, object, warnings, options);
  }

  /**
   * The shared tail of update and patch (rest.BeforeUpdate + the strategy): subresource rules,
   * immutable metadata, generation, validation, no-op detection, and deletion once the last
   * finalizer of a deleting object is gone.
   */
  commitUpdate(
    type: ResourceType,
    existing: Entry,
    candidate: KubeObject,
    warnings: string[],
    options: WriteOptions,
  ): WriteResult {
    const old = existing.object;
    const object = updatedObject(type, old, candidate, options.subresource);
    const meta = object.metadata;
    const errs = keepImmutableMetadata(meta, old.metadata);
    // Ownership first: an apply may remove fields its manager no longer applies.
    this.#manage(type, old, object, options);
    dropEmptyMetadata(meta);
    if (type.tracksGeneration && !deepEqual(specOf(type, object), specOf(type, old))) {
      meta.generation = (old.metadata.generation ?? 0) + 1;
    }
    errs.push(...this.#validateObject(type, object, old));
    if (errs.length) throw this.#invalid(type, old.metadata.name ?? '', errs);
    meta.resourceVersion = old.metadata.resourceVersion;
    // An update that changes nothing is not written: no new resourceVersion, no watch event (and
    // no managedFields timestamp change either).
    if (deepEqual(withoutManagedFields(object), withoutManagedFields(old)))
      return { code: 200, object: this.external(type, old), warnings };
    if (options.dryRun) return { code: 200, object: this.external(type, object), warnings };
    if (meta.deletionTimestamp && !meta.finalizers?.length && !pendingNamespaceFinalizers(type, object)) {
      const removed = this.store.remove(existing.storage, existing.key)!;
      this.onWrite(removed);
      return { code: 200, object: this.external(type, removed.object), warnings };
    }
    const entry = this.store.put(existing.storage, existing.key, object);
    this.onWrite(entry);
    return { code: 200, object: this.external(type, entry.object), warnings };
  }

  /** PATCH with any of the four patch types; apply patches create the object when it is missing. */
  patch(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    contentType: string,
    rawBody: string,
    options: WriteOptions = {},
  ): WriteResult {
    this.#checkWritable(type, 'patch');
    const key = objectKey(type.namespaced ? namespace : undefined, name);
    const existing = this.store.get(type.storage, key);
    if (contentType === PATCH_TYPES.apply) {
      return this.#apply(type, namespace, name, existing, rawBody, options);
    }
    if (!existing) throw errors.notFound(qualifiedResource(type), name);
    const patched = patchedObject(type, contentType, rawBody, this.mutableCopy(type, existing));
    const patchedMeta = (isObject(patched.metadata) ? patched.metadata : {}) as ObjectMeta;
    if (patchedMeta.name !== undefined && patchedMeta.name !== name)
      throw nameMismatch(patchedMeta.name, name);
    if (
      patchedMeta.resourceVersion !== undefined &&
      patchedMeta.resourceVersion !== '' &&
      patchedMeta.resourceVersion !== existing.object.metadata.resourceVersion
    ) {
      throw modifiedConflict(type, name);
    }
    const { object, warnings } = this.decode(type, patched, options.fieldValidation);
    return this.commitUpdate(type, existing, object, warnings, options);
  }

  /**
   * Server-side apply, simplified: the applied configuration is merged into the live object
   * (maps recursively, x-kubernetes-list-type=map lists by their keys, other lists replaced).
   * Field ownership (managedFields), conflicts between managers, and removal of fields a manager
   * stopped applying are not tracked; see docs/devcluster.md.
   */
  #apply(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    existing: Entry | undefined,
    rawBody: string,
    options: WriteOptions,
  ): WriteResult {
    // ValidatePatchOptions, before the body is read.
    const fieldManagerErrors = !options.fieldManager
      ? [field.required('fieldManager', 'is required for apply patch')]
      : options.fieldManager.length > 128
        ? [field.tooLong('fieldManager', 128)]
        : [];
    if (fieldManagerErrors.length)
      throw errors.invalid({ group: 'meta.k8s.io', kind: 'PatchOptions' }, '', fieldManagerErrors);
    let applied: unknown;
    try {
      applied = parseYaml(rawBody);
    } catch (error) {
      throw errors.badRequest(`error decoding YAML: ${(error as Error).message}`);
    }
    if (!isObject(applied)) throw errors.badRequest('apply patches must be a JSON or YAML object');
    const appliedMeta = (isObject(applied.metadata) ? applied.metadata : {}) as ObjectMeta;
    if (appliedMeta.name !== undefined && appliedMeta.name !== name)
      throw nameMismatch(appliedMeta.name, name);
    if (!applied.apiVersion || !applied.kind) throw errors.badRequest('invalid object type: /, Kind=');
    const fieldValidation = options.fieldValidation ?? 'Strict';
    // What the manager owns is what it applied: unknown fields pruned, server defaults not included.
    const appliedObject = { ...applied, metadata: { ...appliedMeta, name } } as KubeObject;
    const owned = this.decode(type, structuredClone(appliedObject), 'Ignore', false).object;
    if (!existing) {
      if (options.subresource) throw errors.notFound(qualifiedResource(type), name);
      const { object, warnings } = this.decode(type, appliedObject, fieldValidation);
      return this.createDecoded(type, namespace, object, warnings, { ...options, applied: owned });
    }
    if (
      appliedMeta.resourceVersion !== undefined &&
      appliedMeta.resourceVersion !== existing.object.metadata.resourceVersion
    ) {
      throw modifiedConflict(type, name);
    }
    const current = this.mutableCopy(type, existing);
    const merged = mergeApplied(ownershipOf(type), current, appliedObject) as KubeObject;
    const { object, warnings } = this.decode(type, merged, fieldValidation);
    return this.commitUpdate(type, existing, object, warnings, { ...options, applied: owned });
  }

  /**
   * DELETE: immediate removal, or — with finalizers, a Foreground/Orphan policy, or a namespace —
   * graceful deletion that sets deletionTimestamp and leaves the rest to the finalizers' owners.
   */
  delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
  ): WriteResult {
    this.#checkWritable(type, 'delete');
    const existing = this.get(type, namespace, name);
    const old = existing.object;
    checkPreconditions(type, name, old, options.preconditions);
    const finalizers = finalizersOnDelete(old, options);
    const graceful = finalizers.size > 0 || pendingNamespaceFinalizers(type, old);
    if (graceful) {
      const object: KubeObject = { ...old, metadata: { ...old.metadata } };
      const meta = object.metadata;
      if (finalizers.size) meta.finalizers = [...finalizers];
      else delete meta.finalizers;
      if (!meta.deletionTimestamp) {
        meta.deletionTimestamp = nowRfc3339();
        meta.deletionGracePeriodSeconds = 0;
        if (meta.generation !== undefined) meta.generation += 1;
      }
      if (type.plural === 'namespaces' && !type.group) {
        object.status = { ...(object.status as object), phase: 'Terminating' };
      }
      if (deepEqual(object, old) || options.dryRun)
        return { code: 200, object: this.external(type, object), warnings: [] };
      const entry = this.store.put(existing.storage, existing.key, object);
      this.onWrite(entry);
      const code = options.orphanDependents === false ? 202 : 200;
      return { code, object: this.external(type, entry.object), warnings: [] };
    }
    if (options.dryRun) return { code: 200, object: this.#deletedResponse(type, old), warnings: [] };
    const removed = this.store.remove(existing.storage, existing.key)!;
    this.onWrite(removed);
    return { code: 200, object: this.#deletedResponse(type, removed.object), warnings: [] };
  }

  #deletedResponse(type: ResourceType, object: KubeObject): Record<string, unknown> {
    if (type.returnDeletedObject) return this.external(type, object);
    return successStatus({
      name: object.metadata.name,
      group: type.group,
      kind: type.plural,
      uid: object.metadata.uid,
    });
  }

  /** DELETE on a collection: deletes every matching object; answers the list of what it deleted. */
  deleteCollection(
    type: ResourceType,
    namespace: string | undefined,
    listOptions: ListOptions,
    options: DeleteOptions,
  ): Record<string, unknown> {
    this.#checkWritable(type, 'deletecollection');
    const { entries } = this.list(type, namespace, {
      ...listOptions,
      limit: undefined,
      continueToken: undefined,
    });
    const items: unknown[] = [];
    for (const entry of entries) {
      try {
        const result = this.delete(
          type,
          entry.object.metadata.namespace,
          entry.object.metadata.name!,
          options,
        );
        items.push(isStatus(result.object) ? this.external(type, entry.object) : result.object);
      } catch (error) {
        if (!(error instanceof ApiError && error.code === 404)) throw error;
      }
    }
    return {
      kind: type.listKind,
      apiVersion: apiVersionOf(type),
      metadata: { resourceVersion: String(this.store.resourceVersion) },
      items,
    };
  }
}

function withoutManagedFields(object: KubeObject): KubeObject {
  const { managedFields: _, ...metadata } = object.metadata;
  return { ...object, metadata };
}

/** What decides list merging and field ownership for a type. */
function ownershipOf(type: ResourceType): OwnershipContext {
  return {
    schema: type.schema,
    mergeStrategies: type.mergeStrategies,
    statusSubresource: type.statusSubresource,
  };
}

function isStatus(o: unknown): boolean {
  return isObject(o) && o.kind === 'Status';
}

/** A namespace keeps existing, Terminating, until the namespace controller clears spec.finalizers. */
function pendingNamespaceFinalizers(type: ResourceType, object: KubeObject): boolean {
  if (type.storage !== '/namespaces') return false;
  return ((object.spec as { finalizers?: string[] } | undefined)?.finalizers ?? []).length > 0;
}

/** The part of an object whose change bumps metadata.generation. */
function specOf(type: ResourceType, object: KubeObject): Record<string, unknown> {
  const { metadata: _m, apiVersion: _a, kind: _k, ...rest } = object;
  if (type.statusSubresource) delete rest.status;
  return rest;
}

function unsupportedPatch(contentType: string, type: ResourceType): ApiError {
  const accepted: string[] = [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.apply, PATCH_TYPES.applyCbor];
  if (type.mergeStrategies) accepted.splice(2, 0, PATCH_TYPES.strategic);
  return errors.unsupportedMediaType(contentType, accepted);
}

export function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (error) {
    throw errors.badRequest(`error decoding patch: ${(error as Error).message}`);
  }
}

/** rest.BeforeDelete's preconditions: 409 naming the Kind (not the resource) when uid or resourceVersion differ. */
function checkPreconditions(
  type: ResourceType,
  name: string,
  old: KubeObject,
  pre: DeleteOptions['preconditions'],
): void {
  const byKind = { group: type.group, resource: type.kind };
  if (pre?.uid && pre.uid !== old.metadata.uid)
    throw errors.conflict(
      byKind,
      name,
      `the UID in the precondition (${pre.uid}) does not match the UID in record (${old.metadata.uid}). The object might have been deleted and then recreated`,
    );
  if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
    throw errors.conflict(
      byKind,
      name,
      `the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion in record (${old.metadata.resourceVersion}). The object might have been modified`,
    );
}

/**
 * The finalizers a deletion leaves on the object: the propagation policy (or the legacy
 * orphanDependents) adds `orphan` or `foregroundDeletion` and removes the other; Background removes both.
 */
function finalizersOnDelete(old: KubeObject, options: DeleteOptions): Set<string> {
  const policy =
    options.propagationPolicy ??
    (options.orphanDependents === true
      ? 'Orphan'
      : options.orphanDependents === false
        ? 'Background'
        : undefined);
  const finalizers = new Set(old.metadata.finalizers ?? []);
  if (policy === 'Orphan') {
    finalizers.add('orphan');
    finalizers.delete('foregroundDeletion');
  } else if (policy === 'Foreground') {
    finalizers.add('foregroundDeletion');
    finalizers.delete('orphan');
  } else if (policy === 'Background') {
    finalizers.delete('orphan');
    finalizers.delete('foregroundDeletion');
  }
  return finalizers;
}

/** The object a JSON, merge or strategic merge patch makes of `current` (a mutable copy). */
function patchedObject(
  type: ResourceType,
  contentType: string,
  rawBody: string,
  current: KubeObject,
): Record<string, unknown> {
  let patched: unknown;
  switch (contentType) {
    case PATCH_TYPES.json: {
      const body = parseJson(rawBody);
      try {
        patched = applyJsonPatch(current, decodeJsonPatch(body));
      } catch (error) {
        if (error instanceof JsonPatchDecodeError) throw errors.badRequest(error.message);
        if (error instanceof JsonPatchError) throw errors.patchRejected();
        throw error;
      }
      break;
    }
    case PATCH_TYPES.merge: {
      const body = parseJson(rawBody);
      if (!isObject(body)) throw errors.badRequest('Invalid JSON Patch');
      patched = mergePatch(current, body);
      break;
    }
    case PATCH_TYPES.strategic: {
      if (!type.mergeStrategies) throw unsupportedPatch(contentType, type);
      const body = parseJson(rawBody);
      if (!isObject(body)) throw errors.badRequest('Invalid JSON Patch');
      patched = strategicMergePatch(current, body, type.mergeStrategies);
      break;
    }
    default:
      throw unsupportedPatch(contentType, type);
  }
  if (!isObject(patched)) throw errors.badRequest('the patched object is not a JSON object');
  return patched;
}

/** 400 for a body that names another object than the URL. */
function nameMismatch(bodyName: string, name: string): ApiError {
  return errors.badRequest(
    `the name of the object (${bodyName}) does not match the name on the URL (${name})`,
  );
}

/** 409 for a write based on a resourceVersion that is no longer the stored one. */
function modifiedConflict(type: ResourceType, name: string): ApiError {
  return errors.conflict(
    qualifiedResource(type),
    name,
    'the object has been modified; please apply your changes to the latest version and try again',
  );
}

/**
 * What an update writes, by subresource: status takes only the candidate's status, namespaces/finalize
 * only its spec.finalizers; the main resource takes the candidate but keeps the stored status where
 * the type has a status subresource. Stored objects are immutable: shallow copies suffice, as only
 * metadata and top-level fields change.
 */
function updatedObject(
  type: ResourceType,
  old: KubeObject,
  candidate: KubeObject,
  subresource: string | undefined,
): KubeObject {
  if (subresource === 'status') {
    const object: KubeObject = { ...old, metadata: { ...old.metadata } };
    if (candidate.status === undefined) delete object.status;
    else object.status = candidate.status;
    return object;
  }
  if (subresource === 'finalize') {
    const finalizers = (candidate.spec as { finalizers?: string[] } | undefined)?.finalizers ?? [];
    return { ...old, metadata: { ...old.metadata }, spec: { ...(old.spec as object), finalizers } };
  }
  if (type.statusSubresource) {
    if (old.status === undefined) delete candidate.status;
    else candidate.status = old.status;
  }
  type.prepareForUpdate?.(candidate, old);
  return candidate;
}

/**
 * rest.BeforeUpdate's metadata rules: uid, name, namespace, creationTimestamp, generation and a
 * deletion in progress stay as stored; returns the errors for a changed uid or for finalizers added
 * to an object being deleted.
 */
function keepImmutableMetadata(meta: ObjectMeta, oldMeta: ObjectMeta): FieldError[] {
  const errs: FieldError[] = [];
  if (meta.uid && meta.uid !== oldMeta.uid)
    errs.push(field.invalid('metadata.uid', meta.uid, 'field is immutable'));
  meta.uid = oldMeta.uid;
  meta.name = oldMeta.name;
  if (oldMeta.namespace) meta.namespace = oldMeta.namespace;
  else delete meta.namespace;
  meta.creationTimestamp = oldMeta.creationTimestamp;
  if (oldMeta.generation !== undefined) meta.generation = oldMeta.generation;
  else delete meta.generation;
  if (oldMeta.deletionTimestamp) {
    meta.deletionTimestamp = oldMeta.deletionTimestamp;
    meta.deletionGracePeriodSeconds = oldMeta.deletionGracePeriodSeconds;
    const added = (meta.finalizers ?? []).filter((f) => !(oldMeta.finalizers ?? []).includes(f));
    if (added.length)
      errs.push(
        field.forbidden(
          'metadata.finalizers',
          `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`,
        ),
      );
  } else {
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
  }
  delete meta.selfLink;
  return errs;
}

/** Empty labels, annotations, finalizers and ownerReferences are stored as absent, as the real server does. */
function dropEmptyMetadata(meta: ObjectMeta): void {
  if (meta.labels && Object.keys(meta.labels).length === 0) delete meta.labels;
  if (meta.annotations && Object.keys(meta.annotations).length === 0) delete meta.annotations;
  if (meta.finalizers && meta.finalizers.length === 0) delete meta.finalizers;
  if (meta.ownerReferences && meta.ownerReferences.length === 0) delete meta.ownerReferences;
}

/** Where a list reads: the snapshot's resourceVersion, the key it resumes after, and whether its pages share one snapshot. */
interface ReadPoint {
  atRv: number;
  startAfter: string;
  consistent: boolean;
}

/**
 * A list's read point: a continue token resumes its own snapshot (or, after a compaction, the
 * latest state inconsistently); resourceVersion N with Exact (or a limit) reads the snapshot at N,
 * and N in the future answers 504; ""/"0" and NotOlderThan read the latest.
 */
function readPoint(options: ListOptions, current: number): ReadPoint {
  if (options.continueToken) {
    const token = decodeContinue(options.continueToken);
    if (options.resourceVersion && options.resourceVersion !== '0')
      throw errors.badRequest('specifying resource version is not allowed when using continue');
    if (token.rv === -1) return { atRv: current, startAfter: token.start, consistent: false };
    return { atRv: token.rv, startAfter: token.start, consistent: true };
  }
  if (options.resourceVersion && options.resourceVersion !== '0') {
    const rv = parseRv(options.resourceVersion);
    const match = options.resourceVersionMatch;
    const exact = match === 'Exact' || (!match && options.limit !== undefined && options.limit > 0);
    if (rv > current) {
      throw errors.timeout(`Too large resource version: ${rv}, current: ${current}`, 1, [
        { reason: 'ResourceVersionTooLarge', message: 'Too large resource version' },
      ]);
    }
    return { atRv: exact ? rv : current, startAfter: '', consistent: true };
  }
  if (options.resourceVersionMatch === 'Exact')
    throw errors.badRequest('resourceVersionMatch "Exact" is forbidden for resourceVersion "0"');
  return { atRv: current, startAfter: '', consistent: true };
}

/**
 * The entries a list walks, in key order: the one a `metadata.name=` selector pins (where its key is
 * known), else those in the namespace (or all).
 */
function candidatesIn(
  table: Map<string, Entry>,
  type: ResourceType,
  namespace: string | undefined,
  fieldSelector: FieldSelector,
): Entry[] {
  const pinned = pinnedName(fieldSelector);
  if (pinned !== undefined && (!type.namespaced || namespace)) {
    const one = table.get(objectKey(type.namespaced ? namespace : undefined, pinned));
    return one ? [one] : [];
  }
  const prefix = type.namespaced && namespace ? `${namespace}/` : '';
  const candidates: Entry[] = [];
  for (const entry of table.values()) if (!prefix || entry.key.startsWith(prefix)) candidates.push(entry);
  return candidates.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * One page of the matching candidates after `startAfter`: the entries, the index the walk stopped
 * at, and whether anything after the page still matches (then a continue token is due).
 */
function page(
  candidates: Entry[],
  startAfter: string,
  match: (object: KubeObject) => boolean,
  limit: number | undefined,
): { entries: Entry[]; next: number; more: boolean } {
  // Keys are unique and sorted, so the first key greater than the token's start resumes the walk.
  let index = 0;
  if (startAfter) {
    let hi = candidates.length;
    while (index < hi) {
      const mid = (index + hi) >> 1;
      if (candidates[mid]!.key < startAfter) index = mid + 1;
      else hi = mid;
    }
  }
  const entries: Entry[] = [];
  for (; index < candidates.length; index++) {
    const entry = candidates[index]!;
    if (!match(entry.object)) continue;
    if (limit !== undefined && entries.length === limit) break;
    entries.push(entry);
  }
  let more = false;
  if (limit !== undefined)
    for (let i = index; i < candidates.length && !more; i++) more = match(candidates[i]!.object);
  return { entries, next: index, more };
}

export function parseRv(value: string): number {
  if (!/^\d+$/.test(value)) throw errors.badRequest(`invalid resource version: ${JSON.stringify(value)}`);
  return Number(value);
}

interface ContinueToken {
  rv: number;
  start: string;
}

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64');
}

function decodeContinue(token: string): ContinueToken {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as {
      v?: string;
      rv?: number;
      start?: string;
    };
    if (parsed.v !== 'meta.k8s.io/v1' || typeof parsed.rv !== 'number' || typeof parsed.start !== 'string')
      throw new Error('bad token');
    return { rv: parsed.rv, start: parsed.start };
  } catch {
    throw errors.badRequest(
      'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
    );
  }
}

function withContinue(error: ApiError, token: string): ApiError {
  (error.status as unknown as { metadata: Record<string, unknown> }).metadata = { continue: token };
  return error;
}
