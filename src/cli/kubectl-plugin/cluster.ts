// The kubectl plugin's cluster side: resolve kubeconfig/context/namespace, run one subcommand against
// the API server, and turn any failure into one actionable line. Loaded lazily (client-node is slow
// to import, and --help must not wait for it).
import { createKubeClients, KubeApiError, KubeConfigError, serverUrl } from '../../kube/index.ts';
import {
  type KubectlAccess,
  type KubectlAccessOptions,
  resolveKubectlAccess,
} from '../../kube/kubectl-access.ts';
import type { PluginCommand } from './commands.ts';

/** One line a person can act on, for whatever a command threw. */
export function describeFailure(error: unknown, release: string, access: KubectlAccess | undefined): string {
  if (error instanceof KubeConfigError) return error.message;
  if (error instanceof KubeApiError && access) {
    const server = serverUrl(access.kubeConfig);
    if (error.classification === 'NotFound') {
      // A named object's 404 says `"<name>" not found`; any other 404 means the type is unknown.
      return error.message.includes(`"${release}" not found`)
        ? `pluginrelease "${release}" not found in namespace "${access.namespace}"`
        : `the server at ${server} does not serve pluginreleases.pluginrelease.io: install the CRDs (crds/ or deploy/)`;
    }
    if (error.statusCode === 401) return `unauthorized by ${server}: ${error.message}`;
    if (error.statusCode === 403) return `forbidden: ${error.message}`;
    if (error.statusCode === undefined) {
      return `cannot reach the API server at ${server} (context "${access.context}"): ${error.message}`;
    }
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs `command` on the release `name` with the user's kubeconfig/context/namespace: prints its result
 * on stdout and resolves 0, or prints `error: <describeFailure>` on stderr and resolves 1.
 */
export async function runAgainstCluster(
  command: PluginCommand,
  name: string,
  options: KubectlAccessOptions & { toRevision?: number },
): Promise<number> {
  let access: KubectlAccess | undefined;
  try {
    access = resolveKubectlAccess(options);
    const clients = createKubeClients(access.kubeConfig, {
      fieldManager: 'kubectl-pluginrelease',
      // A person is waiting: a couple of quick retries, then say what is wrong.
      retry: { retries: 2, maxTimeoutMs: 1000, maxRetryAfterMs: 2000 },
    });
    const output = await command.run({
      releases: clients.releases,
      activations: clients.activations,
      ref: { namespace: access.namespace, name },
      now: Date.now,
      ...(options.toRevision !== undefined ? { toRevision: options.toRevision } : {}),
    });
    console.log(output);
    return 0;
  } catch (error) {
    console.error(`error: ${describeFailure(error, name, access)}`);
    return 1;
  }
}
