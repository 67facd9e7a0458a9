// Typed CRUD, patch and watch clients for one resource kind, as plain JSON over the REST layer.
import { errorFromStatus, type KubeStatus, toKubeError } from './errors.ts';
import type { KubeRest } from './rest.ts';
import { type RetryOptions, withRetry } from './retry.ts';
import { formatRef, type JsonPatchOp, type KubeObject, type ObjectList, type ObjectRef } from './types.ts';

export interface CallOptions {
  signal?: AbortSignal;
}

export interface ListOptions extends CallOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; the result's `continue` fetches the next page. */
  limit?: number;
  continue?: string;
}

export interface DeleteOptions extends CallOptions {
  /** Delete only this incarnation / version of the object (409 Conflict otherwise). */
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
}

/**
 * The storage interface domain code depends on (and fakes in tests). Every method is one API request,
 * retried only on Transient failures (see withRetry); failures reject with KubeApiError (classify()
 * it). Objects are plain JSON as the server returns them, not validated: parse with the zod schema
 * where it matters (an invalid spec must still be seen so it can be reported).
 */
export interface ResourceStore<T extends KubeObject> {
  /** The object; rejects NotFound when it does not exist. */
  get(ref: ObjectRef, options?: CallOptions): Promise<T>;
  /** Lists one namespace, or all namespaces (and cluster-scoped kinds) when `namespace` is undefined. */
  list(namespace: string | undefined, options?: ListOptions): Promise<ObjectList<T>>;
  /** Creates `obj` in `obj.metadata.namespace`; rejects AlreadyExists when the name is taken. */
  create(obj: T, options?: CallOptions): Promise<T>;
  /** PUT: replaces the whole object; `metadata.resourceVersion`, when set, must match (else Conflict). */
  replace(obj: T, options?: CallOptions): Promise<T>;
  /** Deletes; rejects NotFound when already gone (wrap in ignoreNotFound if that is fine). */
  delete(ref: ObjectRef, options?: DeleteOptions): Promise<void>;
  /** RFC 7386 merge patch of the main resource (status changes are ignored by the server here). */
  mergePatch(ref: ObjectRef, patch: unknown, options?: CallOptions): Promise<T>;
  /** RFC 6902 JSON patch; a failed `test` op rejects (Invalid on a real server: 422). */
  jsonPatch(ref: ObjectRef, ops: JsonPatchOp[], options?: CallOptions): Promise<T>;
  /** Merge patch of the status subresource: only `.status` changes; spec and metadata are ignored. */
  patchStatus(ref: ObjectRef, patch: unknown, options?: CallOptions): Promise<T>;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchRequest {
  resourceVersion?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Ask the server to end the watch after this long (real API servers cap it anyway). */
  timeoutSeconds?: number;
  allowWatchBookmarks?: boolean;
}

export interface WatchHandle {
  /** Ends the stream; `done` is then called (with an AbortError or nothing). */
  stop(): void;
}

/** What an Informer needs from a resource: one list page, and a watch stream. No retries inside. */
export interface WatchSource<T extends KubeObject> {
  /** e.g. "pluginreleases.pluginrelease.io", for logs. */
  readonly resource: string;
  listPage(namespace: string | undefined, options: ListOptions): Promise<ObjectList<T>>;
  watch(
    namespace: string | undefined,
    request: WatchRequest,
    onEvent: (type: WatchEventType, object: T | KubeStatus) => void,
    onDone: (error?: unknown) => void,
  ): Promise<WatchHandle>;
}

export interface ResourceDescriptor {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export interface ResourceClientOptions {
  /** Sent as fieldManager on writes, so managedFields name the writer. */
  fieldManager?: string;
  /** Retry policy for Transient failures of each call; false disables retries. */
  retry?: Omit<RetryOptions, 'signal'> | false;
}

const MERGE_PATCH = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';

/** A ResourceStore and WatchSource for one kind. Build through createKubeClients(). */
export class KubeResource<T extends KubeObject> implements ResourceStore<T>, WatchSource<T> {
  readonly resource: string;
  readonly descriptor: ResourceDescriptor;
  readonly #rest: KubeRest;
  readonly #options: ResourceClientOptions;
  readonly #apiVersion: string;

  constructor(rest: KubeRest, descriptor: ResourceDescriptor, options: ResourceClientOptions = {}) {
    this.#rest = rest;
    this.descriptor = descriptor;
    this.resource = descriptor.group ? `${descriptor.plural}.${descriptor.group}` : descriptor.plural;
    this.#options = options;
    this.#apiVersion = descriptor.group ? `${descriptor.group}/${descriptor.version}` : descriptor.version;
  }

  async get(ref: ObjectRef, options: CallOptions = {}): Promise<T> {
    return this.#call('get', ref, options, { method: 'GET', path: this.#itemPath(ref) });
  }

  async list(namespace: string | undefined, options: ListOptions = {}): Promise<ObjectList<T>> {
    return this.#retried({ name: '', namespace }, 'list', options, () =>
      this.listPage(namespace, options, false),
    );
  }

  /** One list request without retries (the informer owns its backoff). */
  async listPage(namespace: string | undefined, options: ListOptions, wrap = true): Promise<ObjectList<T>> {
    try {
      const raw = await this.#rest.request<{
        items?: T[];
        metadata?: { resourceVersion?: string; continue?: string };
      }>({
        method: 'GET',
        path: this.#collectionPath(namespace),
        query: {
          labelSelector: options.labelSelector,
          fieldSelector: options.fieldSelector,
          limit: options.limit,
          continue: options.continue,
        },
        signal: options.signal,
      });
      const next = raw.metadata?.continue;
      return {
        items: (raw.items ?? []).map((item) => this.#normalize(item)),
        resourceVersion: raw.metadata?.resourceVersion ?? '',
        ...(next ? { continue: next } : {}),
      };
    } catch (error) {
      if (!wrap) throw error;
      throw toKubeError(error, `list ${this.resource}${namespace ? ` in ${namespace}` : ''}`);
    }
  }

  async create(obj: T, options: CallOptions = {}): Promise<T> {
    const ref: ObjectRef = {
      namespace: obj.metadata.namespace,
      name: String(obj.metadata.name ?? obj.metadata.generateName ?? ''),
    };
    return this.#call('create', ref, options, {
      method: 'POST',
      path: this.#collectionPath(obj.metadata.namespace),
      query: this.#writeQuery(),
      body: { apiVersion: this.#apiVersion, kind: this.descriptor.kind, ...obj },
    });
  }

  async replace(obj: T, options: CallOptions = {}): Promise<T> {
    const ref: ObjectRef = { namespace: obj.metadata.namespace, name: obj.metadata.name ?? '' };
    return this.#call('replace', ref, options, {
      method: 'PUT',
      path: this.#itemPath(ref),
      query: this.#writeQuery(),
      body: { apiVersion: this.#apiVersion, kind: this.descriptor.kind, ...obj },
    });
  }

  async delete(ref: ObjectRef, options: DeleteOptions = {}): Promise<void> {
    await this.#retried(ref, 'delete', options, () =>
      this.#rest.request({
        method: 'DELETE',
        path: this.#itemPath(ref),
        query: { propagationPolicy: options.propagationPolicy },
        ...(options.preconditions
          ? { body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: options.preconditions } }
          : {}),
        signal: options.signal,
      }),
    );
  }

  async mergePatch(ref: ObjectRef, patch: unknown, options: CallOptions = {}): Promise<T> {
    return this.#patch('patch', this.#itemPath(ref), ref, patch, MERGE_PATCH, options);
  }

  async jsonPatch(ref: ObjectRef, ops: JsonPatchOp[], options: CallOptions = {}): Promise<T> {
    return this.#patch('patch', this.#itemPath(ref), ref, ops, JSON_PATCH, options);
  }

  async patchStatus(ref: ObjectRef, patch: unknown, options: CallOptions = {}): Promise<T> {
    return this.#patch('patch status of', `${this.#itemPath(ref)}/status`, ref, patch, MERGE_PATCH, options);
  }

  async watch(
    namespace: string | undefined,
    request: WatchRequest,
    onEvent: (type: WatchEventType, object: T | KubeStatus) => void,
    onDone: (error?: unknown) => void,
  ): Promise<WatchHandle> {
    const what = `watch ${this.resource}${namespace ? ` in ${namespace}` : ''}`;
    let finished = false;
    const finish = (error?: unknown) => {
      if (finished) return;
      finished = true;
      onDone(error ? toKubeError(error, what) : undefined);
    };
    return this.#rest.stream(
      {
        path: this.#collectionPath(namespace),
        query: {
          watch: true,
          resourceVersion: request.resourceVersion,
          labelSelector: request.labelSelector,
          fieldSelector: request.fieldSelector,
          timeoutSeconds: request.timeoutSeconds,
          allowWatchBookmarks: request.allowWatchBookmarks,
        },
      },
      (line) => {
        if (finished) return;
        let event: { type: string; object: unknown };
        try {
          event = JSON.parse(line) as { type: string; object: unknown };
        } catch (error) {
          finish(new Error(`unparseable watch event: ${(error as Error).message}`));
          return;
        }
        if (event.type === 'ERROR') onEvent('ERROR', event.object as KubeStatus);
        else onEvent(event.type as WatchEventType, this.#normalize(event.object as T));
      },
      finish,
    );
  }

  /** A KubeApiError built from a watch ERROR event. */
  watchError(status: KubeStatus, namespace?: string): Error {
    return errorFromStatus(status, `watch ${this.resource}${namespace ? ` in ${namespace}` : ''}`);
  }

  #patch(
    verb: string,
    path: string,
    ref: ObjectRef,
    body: unknown,
    contentType: string,
    options: CallOptions,
  ): Promise<T> {
    return this.#call(verb, ref, options, {
      method: 'PATCH',
      path,
      query: this.#writeQuery(),
      body,
      contentType,
    });
  }

  /** One request answering an object, normalised, retried on Transient failures. */
  async #call(
    verb: string,
    ref: ObjectRef,
    options: CallOptions,
    request: Parameters<KubeRest['request']>[0],
  ): Promise<T> {
    const raw = await this.#retried(ref, verb, options, () =>
      this.#rest.request<T>({ ...request, signal: options.signal }),
    );
    return this.#normalize(raw);
  }

  async #retried<R>(
    ref: ObjectRef,
    verb: string,
    options: CallOptions,
    request: () => Promise<R>,
  ): Promise<R> {
    const what = `${verb} ${this.resource} ${formatRef(ref)}`.trimEnd();
    const once = async () => {
      try {
        return await request();
      } catch (error) {
        throw toKubeError(error, what);
      }
    };
    if (this.#options.retry === false) return once();
    return withRetry(once, { ...this.#options.retry, signal: options.signal });
  }

  #writeQuery(): { fieldManager: string | undefined } {
    return { fieldManager: this.#options.fieldManager };
  }

  #collectionPath(namespace: string | undefined): string {
    const { group, version, plural, namespaced } = this.descriptor;
    const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
    if (!namespaced) return `${base}/${plural}`;
    return namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${plural}` : `${base}/${plural}`;
  }

  #itemPath(ref: ObjectRef): string {
    if (this.descriptor.namespaced && !ref.namespace) {
      throw new Error(`${this.descriptor.plural} is namespaced: a namespace is required`);
    }
    return `${this.#collectionPath(ref.namespace)}/${encodeURIComponent(ref.name)}`;
  }

  /** The object with apiVersion and kind set: list items of built-in kinds come without them. */
  #normalize(obj: T): T {
    obj.apiVersion ??= this.#apiVersion;
    obj.kind ??= this.descriptor.kind;
    return obj;
  }
}
