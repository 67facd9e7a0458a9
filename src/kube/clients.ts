// The one place that wires the clients together: typed stores for both kinds and Nodes, informers,
// the Lease lock and the event recorder, all over one REST layer from one KubeConfig.
import { GROUP, Kinds, type PluginActivation, type PluginRelease, VERSION } from '../api/index.ts';
import type { KubeConfig } from './config.ts';
import { type EventRecorderOptions, KubeEventRecorder } from './events.ts';
import { Informer, type InformerOptions } from './informer.ts';
import { KubeLeaseLock } from './lease.ts';
import {
  KubeResource,
  type ResourceClientOptions,
  type ResourceDescriptor,
  type ResourceStore,
} from './resource.ts';
import { KubeRest } from './rest.ts';
import type { KubeNode } from './types.ts';

export type ReleaseStore = ResourceStore<PluginRelease>;
export type ActivationStore = ResourceStore<PluginActivation>;
export type NodeStore = ResourceStore<KubeNode>;

export const RELEASES: ResourceDescriptor = {
  group: GROUP,
  version: VERSION,
  plural: Kinds.PluginRelease.plural,
  kind: Kinds.PluginRelease.kind,
  namespaced: true,
};
export const ACTIVATIONS: ResourceDescriptor = {
  group: GROUP,
  version: VERSION,
  plural: Kinds.PluginActivation.plural,
  kind: Kinds.PluginActivation.kind,
  namespaced: true,
};
export const NODES: ResourceDescriptor = {
  group: '',
  version: 'v1',
  plural: 'nodes',
  kind: 'Node',
  namespaced: false,
};

export interface KubeClients {
  readonly kubeConfig: KubeConfig;
  readonly releases: KubeResource<PluginRelease>;
  readonly activations: KubeResource<PluginActivation>;
  readonly nodes: KubeResource<KubeNode>;
  /** A new informer over one of the resources above (not started). */
  informer<T extends PluginRelease | PluginActivation | KubeNode>(
    resource: KubeResource<T>,
    options?: InformerOptions<T>,
  ): Informer<T>;
  /** The Lease lock for leader election (namespace/name of the Lease). */
  leaseLock(namespace: string, name: string): KubeLeaseLock;
  eventRecorder(options: EventRecorderOptions): KubeEventRecorder;
  /** Closes the pooled connections (for processes that create many clients, e.g. tests and benches). */
  close(): void;
}

/**
 * Builds every client from `kubeConfig` (see loadKubeConfig). `fieldManager` names this process's
 * writes in managedFields; `retry` tunes (or, with false, disables) the per-call Transient retries.
 */
export function createKubeClients(kubeConfig: KubeConfig, options: ResourceClientOptions = {}): KubeClients {
  const rest = new KubeRest(kubeConfig);
  const resource = <T extends PluginRelease | PluginActivation | KubeNode>(d: ResourceDescriptor) =>
    new KubeResource<T>(rest, d, options);
  return {
    kubeConfig,
    releases: resource<PluginRelease>(RELEASES),
    activations: resource<PluginActivation>(ACTIVATIONS),
    nodes: resource<KubeNode>(NODES),
    informer: (r, informerOptions) => new Informer(r, informerOptions),
    leaseLock: (namespace, name) => new KubeLeaseLock(rest, namespace, name),
    eventRecorder: (recorderOptions) => new KubeEventRecorder(rest, recorderOptions),
    close: () => rest.close(),
  };
}
