// The LeaseLock of src/runtime/leader.ts over a coordination.k8s.io/v1 Lease.
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { LeaseLock, LeaseRecord, LeaseSnapshot } from '../runtime/leader.ts';
import { isNotFound, toKubeError } from './errors.ts';
import { signalOptions } from './resource.ts';

/**
 * One Lease, read and written with optimistic concurrency (replace at the observed
 * resourceVersion). No retries here: the elector's retry period is the retry. Times are written as
 * MicroTime (RFC 3339 with 6 fractional digits), which the API server requires for Lease times.
 */
export class KubeLeaseLock implements LeaseLock {
  readonly description: string;
  readonly #api: CoordinationV1Api;
  readonly #namespace: string;
  readonly #name: string;

  constructor(kubeConfig: KubeConfig, namespace: string, name: string) {
    this.#api = kubeConfig.makeApiClient(CoordinationV1Api);
    this.#namespace = namespace;
    this.#name = name;
    this.description = `${namespace}/${name}`;
  }

  async get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    try {
      const lease = await this.#api.readNamespacedLease(
        { namespace: this.#namespace, name: this.#name },
        signalOptions(signal),
      );
      return snapshotOf(lease);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw toKubeError(error, `get lease ${this.description}`);
    }
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    try {
      const lease = await this.#api.createNamespacedLease(
        { namespace: this.#namespace, body: this.#body(record) },
        signalOptions(signal),
      );
      return snapshotOf(lease);
    } catch (error) {
      throw toKubeError(error, `create lease ${this.description}`);
    }
  }

  async update(record: LeaseRecord, resourceVersion: string, signal: AbortSignal): Promise<LeaseSnapshot> {
    try {
      const lease = await this.#api.replaceNamespacedLease(
        { namespace: this.#namespace, name: this.#name, body: this.#body(record, resourceVersion) },
        signalOptions(signal),
      );
      return snapshotOf(lease);
    } catch (error) {
      throw toKubeError(error, `update lease ${this.description}`);
    }
  }

  #body(record: LeaseRecord, resourceVersion?: string): V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.#name,
        namespace: this.#namespace,
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        leaseTransitions: record.leaseTransitions,
        ...(record.acquireTime ? { acquireTime: new V1MicroTime(record.acquireTime.getTime()) } : {}),
        ...(record.renewTime ? { renewTime: new V1MicroTime(record.renewTime.getTime()) } : {}),
      },
    };
  }
}

function snapshotOf(lease: V1Lease): LeaseSnapshot {
  const spec = lease.spec ?? {};
  return {
    resourceVersion: lease.metadata?.resourceVersion ?? '',
    record: {
      holderIdentity: spec.holderIdentity ?? '',
      leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
      leaseTransitions: spec.leaseTransitions ?? 0,
      ...(spec.acquireTime ? { acquireTime: new Date(spec.acquireTime) } : {}),
      ...(spec.renewTime ? { renewTime: new Date(spec.renewTime) } : {}),
    },
  };
}
