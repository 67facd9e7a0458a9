// The kubectl plugin's cluster side: resolve kubeconfig/context/namespace, run one subcommand against
// the API server, and turn any failure into one actionable line. Loaded lazily (client-node is slow
// to import, and --help must not wait for it).
import { Labels } from '../../api/group.ts';
import type { PluginActivation, PluginRelease } from '../../api/index.ts';
import {
  createKubeClients,
  KubeApiError,
  type KubeClients,
  KubeConfigError,
  type ObjectRef,
  serverUrl,
} from '../../kube/index.ts';
import {
  type KubectlAccess,
  type KubectlAccessOptions,
  resolveKubectlAccess,
} from '../../kube/kubectl-access.ts';
import { type CommandContext, CommandFailure, type PluginCommand } from './commands.ts';

/** One line a person can act on, for whatever a command threw. */
export function describeFailure(error: unknown, release: string, access: KubectlAccess | undefined): string {
  if (error instanceof KubeConfigError || error instanceof CommandFailure) return error.message;
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
  options: KubectlAccessOptions,
  flags: Pick<CommandContext, 'output' | 'watch' | 'timeoutMs' | 'toRevision'>,
): Promise<number> {
  let access: KubectlAccess | undefined;
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    access = resolveKubectlAccess(options);
    const clients = createKubeClients(access.kubeConfig, {
      fieldManager: 'kubectl-pluginrelease',
      // A person is waiting: a couple of quick retries, then say what is wrong.
      retry: { retries: 2, maxTimeoutMs: 1000, maxRetryAfterMs: 2000 },
    });
    const ref = { namespace: access.namespace, name };
    const result = await command.run({
      releases: clients.releases,
      activations: clients.activations,
      ref,
      now: Date.now,
      ...flags,
      print: (text) => console.log(text),
      follow: (onChange, signal) => follow(clients, ref, onChange, signal),
      interrupted: interrupt.signal,
    });
    if (typeof result === 'number') return result;
    console.log(result);
    return 0;
  } catch (error) {
    console.error(`error: ${describeFailure(error, name, access)}`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * CommandContext.follow over two informers: the release (by name) and its activations (by label).
 * A first GET surfaces NotFound, auth and reachability errors at once: an informer would retry them.
 */
async function follow(
  clients: KubeClients,
  ref: ObjectRef & { namespace: string },
  onChange: (release: PluginRelease | undefined, activations: PluginActivation[]) => number | undefined,
  signal: AbortSignal,
): Promise<number | undefined> {
  await clients.releases.get(ref);
  const releases = clients.informer(clients.releases, {
    namespace: ref.namespace,
    fieldSelector: `metadata.name=${ref.name}`,
  });
  const activations = clients.informer(clients.activations, {
    namespace: ref.namespace,
    labelSelector: `${Labels.release}=${ref.name}`,
  });
  try {
    return await new Promise<number | undefined>((resolve, reject) => {
      let synced = false;
      const check = () => {
        if (!synced || signal.aborted) return;
        try {
          const code = onChange(releases.get(`${ref.namespace}/${ref.name}`), activations.list());
          if (code !== undefined) resolve(code);
        } catch (error) {
          reject(error);
        }
      };
      const handlers = { add: check, update: check, delete: check };
      releases.on(handlers);
      activations.on(handlers);
      signal.addEventListener('abort', () => resolve(undefined), { once: true });
      releases.start();
      activations.start();
      Promise.all([releases.waitForSync(signal), activations.waitForSync(signal)]).then(() => {
        synced = true;
        check();
      }, reject);
    });
  } finally {
    await Promise.all([releases.stop(), activations.stop()]);
  }
}
