// Typed CRUD, patch and watch clients for one resource kind, over @kubernetes/client-node.
import {
  type ConfigurationOptions,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  Observable,
  PatchStrategy,
  type RequestContext,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node';
import { errorFromStatus, type KubeStatus, toKubeError } from './errors.ts';
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

/** How to reach one kind: its API group/version/plural and the generated client calls to use. */
interface Backend {
  get(ref: ObjectRef, o: ConfigurationOptions): Promise<unknown>;
  list(namespace: string | undefined, q: ListOptions, o: ConfigurationOptions): Promise<unknown>;
  create(namespace: string | undefined, body: unknown, o: ConfigurationOptions): Promise<unknown>;
  replace(ref: ObjectRef, body: unknown, o: ConfigurationOptions): Promise<unknown>;
  delete(
    ref: ObjectRef,
    body: unknown,
    propagationPolicy: string | undefined,
    o: ConfigurationOptions,
  ): Promise<unknown>;
  patch(ref: ObjectRef, body: unknown, o: ConfigurationOptions): Promise<unknown>;
  patchStatus(ref: ObjectRef, body: unknown, o: ConfigurationOptions): Promise<unknown>;
  collectionPath(namespace: string | undefined): string;
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

/** A ResourceStore and WatchSource for one kind. Build through createKubeClients(). */
export class KubeResource<T extends KubeObject> implements ResourceStore<T>, WatchSource<T> {
  readonly resource: string;
  readonly descriptor: ResourceDescriptor;
  readonly #kubeConfig: KubeConfig;
  readonly #backend: Backend;
  readonly #options: ResourceClientOptions;

  constructor(
    kubeConfig: KubeConfig,
    descriptor: ResourceDescriptor,
    backend: Backend,
    options: ResourceClientOptions = {},
  ) {
    this.#kubeConfig = kubeConfig;
    this.descriptor = descriptor;
    this.resource = descriptor.group ? `${descriptor.plural}.${descriptor.group}` : descriptor.plural;
    this.#backend = backend;
    this.#options = options;
  }

  get(ref: ObjectRef, options: CallOptions = {}): Promise<T> {
    return this.#call('get', ref, options, (o) => this.#backend.get(ref, o)).then((x) => this.#normalize(x));
  }

  async list(namespace: string | undefined, options: ListOptions = {}): Promise<ObjectList<T>> {
    return this.#call('list', { name: '', namespace }, options, () =>
      this.listPage(namespace, options, false),
    );
  }

  /** One list request without retries (the informer owns its backoff). */
  async listPage(namespace: string | undefined, options: ListOptions, wrap = true): Promise<ObjectList<T>> {
    const request = async () => {
      const raw = (await this.#backend.list(namespace, options, requestOptions(options.signal))) as {
        items?: unknown[];
        metadata?: { resourceVersion?: string; continue?: string; _continue?: string };
      };
      const next = raw.metadata?.continue ?? raw.metadata?._continue;
      return {
        items: (raw.items ?? []).map((item) => this.#normalize(item)),
        resourceVersion: raw.metadata?.resourceVersion ?? '',
        ...(next ? { continue: next } : {}),
      };
    };
    if (!wrap) return request();
    try {
      return await request();
    } catch (error) {
      throw toKubeError(error, `list ${this.resource}${namespace ? ` in ${namespace}` : ''}`);
    }
  }

  create(obj: T, options: CallOptions = {}): Promise<T> {
    const ref = {
      namespace: obj.metadata.namespace,
      name: obj.metadata.name ?? obj.metadata.generateName ?? '',
    };
    const body = { apiVersion: this.#apiVersion(), kind: this.descriptor.kind, ...obj };
    return this.#call('create', ref as ObjectRef, options, (o) =>
      this.#backend.create(this.#namespaceFor(obj.metadata.namespace), body, o),
    ).then((x) => this.#normalize(x));
  }

  replace(obj: T, options: CallOptions = {}): Promise<T> {
    const ref: ObjectRef = { namespace: obj.metadata.namespace, name: obj.metadata.name ?? '' };
    const body = { apiVersion: this.#apiVersion(), kind: this.descriptor.kind, ...obj };
    return this.#call('replace', ref, options, (o) => this.#backend.replace(ref, body, o)).then((x) =>
      this.#normalize(x),
    );
  }

  async delete(ref: ObjectRef, options: DeleteOptions = {}): Promise<void> {
    const body = options.preconditions
      ? { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: options.preconditions }
      : undefined;
    await this.#call('delete', ref, options, (o) =>
      this.#backend.delete(ref, body, options.propagationPolicy, o),
    );
  }

  mergePatch(ref: ObjectRef, patch: unknown, options: CallOptions = {}): Promise<T> {
    return this.#call(
      'patch',
      ref,
      options,
      (o) => this.#backend.patch(ref, patch, o),
      PatchStrategy.MergePatch,
    ).then((x) => this.#normalize(x));
  }

  jsonPatch(ref: ObjectRef, ops: JsonPatchOp[], options: CallOptions = {}): Promise<T> {
    return this.#call(
      'patch',
      ref,
      options,
      (o) => this.#backend.patch(ref, ops, o),
      PatchStrategy.JsonPatch,
    ).then((x) => this.#normalize(x));
  }

  patchStatus(ref: ObjectRef, patch: unknown, options: CallOptions = {}): Promise<T> {
    return this.#call(
      'patch status of',
      ref,
      options,
      (o) => this.#backend.patchStatus(ref, patch, o),
      PatchStrategy.MergePatch,
    ).then((x) => this.#normalize(x));
  }

  async watch(
    namespace: string | undefined,
    request: WatchRequest,
    onEvent: (type: WatchEventType, object: T | KubeStatus) => void,
    onDone: (error?: unknown) => void,
  ): Promise<WatchHandle> {
    const query: Record<string, string | number | boolean | undefined> = {
      resourceVersion: request.resourceVersion,
      labelSelector: request.labelSelector,
      fieldSelector: request.fieldSelector,
      timeoutSeconds: request.timeoutSeconds,
      allowWatchBookmarks: request.allowWatchBookmarks,
    };
    const what = `watch ${this.resource}${namespace ? ` in ${namespace}` : ''}`;
    let finished = false;
    const controller = await new Watch(this.#kubeConfig).watch(
      this.#backend.collectionPath(this.#namespaceFor(namespace)),
      query,
      (type: string, object: unknown) => {
        if (finished) return;
        if (type === 'ERROR') onEvent('ERROR', object as KubeStatus);
        else onEvent(type as WatchEventType, this.#normalize(object));
      },
      (error: unknown) => {
        if (finished) return;
        finished = true;
        onDone(error ? toKubeError(error, what) : undefined);
      },
    );
    return {
      stop: () => controller.abort(),
    };
  }

  /** A KubeApiError built from a watch ERROR event. */
  watchError(status: KubeStatus, namespace?: string): Error {
    return errorFromStatus(status, `watch ${this.resource}${namespace ? ` in ${namespace}` : ''}`);
  }

  async #call<R>(
    verb: string,
    ref: ObjectRef,
    options: CallOptions,
    request: (o: ConfigurationOptions) => Promise<R>,
    contentType?: string,
  ): Promise<R> {
    const what = `${verb} ${this.resource} ${formatRef(ref)}`.trimEnd();
    const once = async () => {
      try {
        return await request(requestOptions(options.signal, contentType));
      } catch (error) {
        throw toKubeError(error, what);
      }
    };
    if (this.#options.retry === false) return once();
    return withRetry(once, { ...this.#options.retry, signal: options.signal });
  }

  #apiVersion(): string {
    return this.descriptor.group
      ? `${this.descriptor.group}/${this.descriptor.version}`
      : this.descriptor.version;
  }

  #namespaceFor(namespace: string | undefined): string | undefined {
    return this.descriptor.namespaced ? namespace : undefined;
  }

  /**
   * Plain JSON with apiVersion and kind set: typed clients turn timestamps into Date objects and
   * list items of built-in kinds lack apiVersion/kind, so every path ends up looking like a watch event.
   */
  #normalize(raw: unknown): T {
    const plain = JSON.parse(JSON.stringify(raw)) as T;
    plain.apiVersion ??= this.#apiVersion();
    plain.kind ??= this.descriptor.kind;
    return plain;
  }
}

/** Per-request client-node options: the abort signal and, for patches, the Content-Type. */
export function requestOptions(signal: AbortSignal | undefined, contentType?: string): ConfigurationOptions {
  const base: ConfigurationOptions = contentType ? setHeaderOptions('Content-Type', contentType) : {};
  if (!signal) return base;
  // client-node's call-time middleware is Observable-based; its Observable wraps a promise.
  const signalMiddleware = {
    pre: (context: RequestContext) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: <R>(response: R) => new Observable(Promise.resolve(response)),
  };
  return {
    ...base,
    middleware: [...(base.middleware ?? []), signalMiddleware],
    middlewareMergeStrategy: 'append',
  } as ConfigurationOptions;
}

/** Per-request options carrying only an AbortSignal. */
export function signalOptions(signal: AbortSignal): ConfigurationOptions {
  return requestOptions(signal);
}

/** A backend for a custom resource (or any non-core group) through CustomObjectsApi. */
export function customObjectsBackend(
  kubeConfig: KubeConfig,
  d: ResourceDescriptor,
  fieldManager?: string,
): Backend {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  const gv = { group: d.group, version: d.version, plural: d.plural };
  const ns = (namespace: string | undefined): string => {
    if (!namespace) throw new Error(`${d.plural} is namespaced: a namespace is required`);
    return namespace;
  };
  const listQuery = (q: ListOptions) => ({
    labelSelector: q.labelSelector,
    fieldSelector: q.fieldSelector,
    limit: q.limit,
    _continue: q.continue,
  });
  return {
    get: (ref, o) =>
      d.namespaced
        ? api.getNamespacedCustomObject({ ...gv, namespace: ns(ref.namespace), name: ref.name }, o)
        : api.getClusterCustomObject({ ...gv, name: ref.name }, o),
    list: (namespace, q, o) =>
      d.namespaced && namespace
        ? api.listNamespacedCustomObject({ ...gv, namespace, ...listQuery(q) }, o)
        : api.listClusterCustomObject({ ...gv, ...listQuery(q) }, o),
    create: (namespace, body, o) =>
      d.namespaced
        ? api.createNamespacedCustomObject(
            { ...gv, namespace: ns(namespace), body: body as object, fieldManager },
            o,
          )
        : api.createClusterCustomObject({ ...gv, body: body as object, fieldManager }, o),
    replace: (ref, body, o) =>
      d.namespaced
        ? api.replaceNamespacedCustomObject(
            { ...gv, namespace: ns(ref.namespace), name: ref.name, body: body as object, fieldManager },
            o,
          )
        : api.replaceClusterCustomObject({ ...gv, name: ref.name, body: body as object, fieldManager }, o),
    delete: (ref, body, propagationPolicy, o) =>
      d.namespaced
        ? api.deleteNamespacedCustomObject(
            { ...gv, namespace: ns(ref.namespace), name: ref.name, body: body as object, propagationPolicy },
            o,
          )
        : api.deleteClusterCustomObject(
            { ...gv, name: ref.name, body: body as object, propagationPolicy },
            o,
          ),
    patch: (ref, body, o) =>
      d.namespaced
        ? api.patchNamespacedCustomObject(
            { ...gv, namespace: ns(ref.namespace), name: ref.name, body: body as object, fieldManager },
            o,
          )
        : api.patchClusterCustomObject({ ...gv, name: ref.name, body: body as object, fieldManager }, o),
    patchStatus: (ref, body, o) =>
      d.namespaced
        ? api.patchNamespacedCustomObjectStatus(
            { ...gv, namespace: ns(ref.namespace), name: ref.name, body: body as object, fieldManager },
            o,
          )
        : api.patchClusterCustomObjectStatus(
            { ...gv, name: ref.name, body: body as object, fieldManager },
            o,
          ),
    collectionPath: (namespace) =>
      d.namespaced && namespace
        ? `/apis/${d.group}/${d.version}/namespaces/${encodeURIComponent(namespace)}/${d.plural}`
        : `/apis/${d.group}/${d.version}/${d.plural}`,
  };
}

/** Nodes, through CoreV1Api (core group, cluster-scoped). */
export function nodesBackend(kubeConfig: KubeConfig, fieldManager?: string): Backend {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  // The generated typings want V1Node class instances; plain JSON serialises identically.
  // biome-ignore lint/suspicious/noExplicitAny: the plain-JSON body stands in for the generated model type.
  const node = (body: unknown) => body as any;
  return {
    get: (ref, o) => api.readNode({ name: ref.name }, o),
    list: (_namespace, q, o) =>
      api.listNode(
        {
          labelSelector: q.labelSelector,
          fieldSelector: q.fieldSelector,
          limit: q.limit,
          _continue: q.continue,
        },
        o,
      ),
    create: (_namespace, body, o) => api.createNode({ body: node(body), fieldManager }, o),
    replace: (ref, body, o) => api.replaceNode({ name: ref.name, body: node(body), fieldManager }, o),
    delete: (ref, body, propagationPolicy, o) =>
      api.deleteNode({ name: ref.name, body: node(body), propagationPolicy }, o),
    patch: (ref, body, o) => api.patchNode({ name: ref.name, body: node(body), fieldManager }, o),
    patchStatus: (ref, body, o) => api.patchNodeStatus({ name: ref.name, body: node(body), fieldManager }, o),
    collectionPath: () => '/api/v1/nodes',
  };
}
