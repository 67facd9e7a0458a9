// Fixture builders: tests say what is special about their object, not the whole JSON blob.
import { API_VERSION, PluginRelease, type PluginReleaseSpecInput } from '../../src/api/index.ts';

export const DIGEST_A = `sha256:${'a'.repeat(64)}`;
export const DIGEST_B = `sha256:${'b'.repeat(64)}`;

type DeepPartial<T> = {
  [K in keyof T]?: NonNullable<T[K]> extends object ? DeepPartial<NonNullable<T[K]>> : T[K];
};

class ReleaseBuilder {
  name = 'echo';
  namespace = 'default';
  generation = 1;
  spec: PluginReleaseSpecInput = {
    plugin: 'echo',
    version: '1.0.0',
    artifact: { path: '/staging/echo/1.0.0/echo', digest: DIGEST_A },
  };

  named(name: string): this {
    this.name = name;
    return this;
  }
  withVersion(version: string): this {
    this.spec.version = version;
    return this;
  }
  withCanary(nodes: number, pauseAfter = false): this {
    this.spec.rollout = { ...this.spec.rollout, canary: { nodes, pauseAfter } };
    return this;
  }
  withMaxUnavailable(maxUnavailable: number | string): this {
    this.spec.rollout = { ...this.spec.rollout, maxUnavailable };
    return this;
  }
  withSpec(patch: DeepPartial<PluginReleaseSpecInput>): this {
    this.spec = deepMerge(this.spec, patch) as PluginReleaseSpecInput;
    return this;
  }
  /** The raw spec, as a user would write it (defaults not applied). */
  specInput(): Record<string, unknown> {
    return structuredClone(this.spec) as Record<string, unknown>;
  }
  /** The object as a user would `kubectl apply` it. */
  manifest() {
    return {
      apiVersion: API_VERSION,
      kind: 'PluginRelease',
      metadata: { name: this.name, namespace: this.namespace, generation: this.generation },
      spec: this.specInput(),
    };
  }
}

function deepMerge(base: unknown, patch: unknown): unknown {
  if (patch === undefined) return base;
  if (
    base === null ||
    patch === null ||
    typeof base !== 'object' ||
    typeof patch !== 'object' ||
    Array.isArray(base) ||
    Array.isArray(patch)
  ) {
    return patch;
  }
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch)) out[k] = deepMerge(out[k], v);
  return out;
}

export const aRelease = () => new ReleaseBuilder();

/** The release as the controller reads it: defaults applied, with server-set metadata. */
export function parsedRelease(
  builder: ReleaseBuilder,
  metadata: { annotations?: Record<string, string>; creationTimestamp?: string } = {},
): PluginRelease {
  const manifest = builder.manifest();
  return PluginRelease.parse({
    ...manifest,
    metadata: {
      ...manifest.metadata,
      uid: `uid-${builder.name}`,
      creationTimestamp: '2026-11-23T09:00:00Z',
      ...metadata,
    },
  });
}
