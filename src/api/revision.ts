// The revision hash: a stable name for "what runs on the node", like a Deployment's pod-template-hash.
import { createHash } from 'node:crypto';
import type { PluginReleaseSpec } from './pluginrelease.ts';

/** JSON with object keys sorted, so equal values always serialise to equal bytes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Hashes the fields that change what runs on a node: plugin, version, artifact, config, handshake,
 * serve address and process options, and the runtime with its host's endpoints. Probes, activation
 * and rollout settings change how a revision is judged and spread, not what it is, so editing them does not start a new rollout.
 * Takes a parsed (defaulted) spec so that an omitted default and an explicit one hash the same.
 */
export function revisionOf(spec: PluginReleaseSpec): string {
  const { plugin, version, artifact, config, handshake, serve, process, runtime, host } = spec;
  // Process is left out so that revisions named before runtimes existed keep their names; of the host,
  // only where it is and what is called (timeouts and health settings judge, like probes).
  const which =
    runtime === 'Host' && host
      ? {
          runtime,
          host: {
            url: host.url,
            tokenFile: host.tokenFile,
            tryActivate: host.tryActivate,
            activate: host.activate,
            plugins: host.plugins,
          },
        }
      : {};
  const material = canonicalJson({ plugin, version, artifact, config, handshake, serve, process, ...which });
  return createHash('sha256').update(material).digest('hex').slice(0, 12);
}
