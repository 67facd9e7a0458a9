// The only door to Kubernetes: everything domain code needs from the API server, over a small REST
// layer (rest.ts) that takes its configuration, credentials and TLS from client-node's KubeConfig.
//
// Contracts in brief (details on each export):
// - loadKubeConfig(path?): file, else KUBECONFIG/~/.kube/config, else in-cluster; throws KubeConfigError.
// - createKubeClients(kc): ResourceStore<T> for PluginRelease, PluginActivation and Node (get/list/
//   create/replace/delete/mergePatch/jsonPatch/patchStatus). Each method is ONE request, retried
//   only on Transient failures (withRetry); failures reject with KubeApiError: use classify().
// - Informer<T>: list+watch cache keyed `namespace/name`; `synced`/waitForSync (waitForCacheSync: with a
//   timeout, failing at once on a refused list, naming the resource); restarts itself with
//   backoff after any error or stream end; relists on 410 Gone; addIndex/byIndex for secondary indexes.
// - Runner (runner.ts; imported directly, not from here, so loading the clients loads neither the
//   metrics nor the health server): the loop both components run: caches → sync → a queue per term.
// - KubeLeaseLock: the runtime LeaderElector's LeaseLock over coordination.k8s.io/v1.
// - KubeEventRecorder: core/v1 Events, identical repeats aggregated into a count; never throws.
// - replaceStatusPatch(previous, next): a merge patch that replaces a whole status.
// - addFinalizer/removeFinalizer: JSON patch guarded by `test` ops; a lost race rejects as Conflict.
export {
  ACTIVATIONS,
  type ActivationStore,
  createKubeClients,
  type KubeClients,
  NODES,
  type NodeStore,
  RELEASES,
  type ReleaseStore,
} from './clients.ts';
export {
  currentNamespace,
  KubeConfig,
  KubeConfigError,
  loadKubeConfig,
  serverUrl,
} from './config.ts';
export {
  classify,
  classifyStatus,
  type ErrorClass,
  errorFromStatus,
  ignoreNotFound,
  isAlreadyExists,
  isConflict,
  isGone,
  isNotFound,
  KubeApiError,
  type KubeStatus,
  retryAfterMsOf,
  statusCodeOf,
  toKubeError,
} from './errors.ts';
export {
  type EventRecorder,
  type EventRecorderOptions,
  type EventType,
  KubeEventRecorder,
} from './events.ts';
export {
  addFinalizer,
  addFinalizerPatch,
  hasFinalizer,
  removeFinalizer,
  removeFinalizerPatch,
} from './finalizers.ts';
export type { IndexFunc } from './indexes.ts';
export {
  CACHE_SYNC_TIMEOUT_MS,
  CacheSyncTimeout,
  Informer,
  type InformerHandlers,
  type InformerOptions,
  type InformerStats,
  waitForCacheSync,
} from './informer.ts';
export { leanActivation, leanNode, Sharing } from './lean.ts';
export { KubeLeaseLock } from './lease.ts';
export {
  type CallOptions,
  type DeleteOptions,
  KubeResource,
  type ListOptions,
  type ResourceClientOptions,
  type ResourceDescriptor,
  type ResourceStore,
  type WatchEventType,
  type WatchHandle,
  type WatchRequest,
  type WatchSource,
} from './resource.ts';
export { type RetryOptions, withRetry } from './retry.ts';
export { replaceStatusPatch } from './status-patch.ts';
export {
  formatRef,
  type JsonPatchOp,
  type KubeNode,
  type KubeObject,
  type ObjectList,
  type ObjectRef,
  objectKey,
  refFromKey,
  refOf,
} from './types.ts';
