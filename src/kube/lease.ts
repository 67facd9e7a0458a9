// The LeaseLock of src/runtime/leader.ts over a coordination.k8s.io/v1 Lease.
import type { LeaseLock, LeaseRecord, LeaseSnapshot } from '../runtime/leader.ts';
import { isNotFound, toKubeError } from './errors.ts';
import type { KubeRest } from './rest.ts';

/** A coordination.k8s.io/v1 Lease as JSON (times are MicroTime strings). */
interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    leaseTransitions?: number;
    acquireTime?: string;
    renewTime?: string;
  };
}

/**
 * One Lease, read and written with optimistic concurrency (replace at the observed
 * resourceVersion). No retries here: the elector's retry period is the retry. Times are written as
 * MicroTime (RFC 3339 with 6 fractional digits), which the API server requires for Lease times.
 */
export class KubeLeaseLock implements LeaseLock {
  readonly description: string;
  readonly #rest: KubeRest;
  readonly #namespace: string;
  readonly #name: string;
  readonly #collection: string;

  constructor(rest: KubeRest, namespace: string, name: string) {
    this.#rest = rest;
    this.#collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
    this.#namespace = namespace;
    this.#name = name;
    this.description = `${namespace}/${name}`;
  }

  async get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    try {
      const lease = await this.#rest.request<Lease>({ method: 'GET', path: this.#path(), signal });
      return snapshotOf(lease);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw toKubeError(error, `get lease ${this.description}`);
    }
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    try {
      const lease = await this.#rest.request<Lease>({
        method: 'POST',
        path: this.#collection,
        body: this.#body(record),
        signal,
      });
      return snapshotOf(lease);
    } catch (error) {
      throw toKubeError(error, `create lease ${this.description}`);
    }
  }

  async update(record: LeaseRecord, resourceVersion: string, signal: AbortSignal): Promise<LeaseSnapshot> {
    try {
      const lease = await this.#rest.request<Lease>({
        method: 'PUT',
        path: this.#path(),
        body: this.#body(record, resourceVersion),
        signal,
      });
      return snapshotOf(lease);
    } catch (error) {
      throw toKubeError(error, `update lease ${this.description}`);
    }
  }

  #path(): string {
    return `${this.#collection}/${encodeURIComponent(this.#name)}`;
  }

  #body(record: LeaseRecord, resourceVersion?: string): Lease {
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
        ...(record.acquireTime ? { acquireTime: microTime(record.acquireTime) } : {}),
        ...(record.renewTime ? { renewTime: microTime(record.renewTime) } : {}),
      },
    };
  }
}

/** RFC 3339 with microseconds, e.g. 2026-01-02T03:04:05.678000Z, as metav1.MicroTime is written. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

function snapshotOf(lease: Lease): LeaseSnapshot {
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
