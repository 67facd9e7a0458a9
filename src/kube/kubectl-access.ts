// Cluster access resolved as kubectl resolves it: a kubeconfig (flag, KUBECONFIG, ~/.kube/config or
// in-cluster), then the --context and --namespace overrides a kubectl plugin receives from its user.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { currentNamespace, KubeConfig, KubeConfigError, loadKubeConfig } from './config.ts';

export interface KubectlAccessOptions {
  /** --kubeconfig: one file; wins over KUBECONFIG as in kubectl. */
  kubeconfig?: string | undefined;
  /** --context: a context of the kubeconfig to use instead of its current-context. */
  context?: string | undefined;
  /** -n/--namespace: wins over the context's namespace. */
  namespace?: string | undefined;
}

export interface KubectlAccess {
  /** The loaded config, its current context switched to the chosen one. */
  kubeConfig: KubeConfig;
  /** The context in use. */
  context: string;
  /** --namespace, else the context's namespace, else "default". */
  namespace: string;
}

/**
 * Loads cluster access for a kubectl-style command. Without --context this is loadKubeConfig (so the
 * same search order and errors). With --context, the kubeconfig need not name a current-context (as
 * with kubectl), but must hold the named context and its cluster. Throws KubeConfigError, whose
 * message names what to fix; nothing here talks to the API server.
 */
export function resolveKubectlAccess(options: KubectlAccessOptions): KubectlAccess {
  const kubeConfig = options.context
    ? loadWithContext(options.kubeconfig, options.context)
    : loadKubeConfig(options.kubeconfig);
  return {
    kubeConfig,
    context: kubeConfig.getCurrentContext(),
    namespace: options.namespace || currentNamespace(kubeConfig),
  };
}

function loadWithContext(path: string | undefined, context: string): KubeConfig {
  const kc = new KubeConfig();
  const source = path ?? (process.env.KUBECONFIG || join(homedir(), '.kube', 'config'));
  try {
    if (path) kc.loadFromFile(path);
    else if (process.env.KUBECONFIG || existsSync(source)) kc.loadFromDefault();
    else
      throw new KubeConfigError(
        `--context ${context} needs a kubeconfig: pass --kubeconfig or set KUBECONFIG`,
      );
  } catch (error) {
    if (error instanceof KubeConfigError) throw error;
    throw new KubeConfigError(`cannot load kubeconfig ${source}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const found = kc.getContextObject(context);
  if (!found) {
    const known = kc.getContexts().map((c) => c.name);
    throw new KubeConfigError(
      `context "${context}" not found in kubeconfig ${source}` +
        (known.length > 0 ? ` (it has: ${known.join(', ')})` : ''),
    );
  }
  kc.setCurrentContext(context);
  if (!kc.getCurrentCluster()) {
    throw new KubeConfigError(`context "${context}" names cluster "${found.cluster}", which ${source} lacks`);
  }
  return kc;
}
