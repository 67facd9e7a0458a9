// Loading the kubeconfig: an explicit file, else KUBECONFIG / ~/.kube/config, else the in-cluster service account.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
// The module of KubeConfig alone, not the package index with every generated API class (see loader.ts).
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { PluginReleaseError } from '../runtime/errors.ts';

export { KubeConfig };

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export class KubeConfigError extends PluginReleaseError {
  constructor(message: string, options?: ErrorOptions) {
    super('PR_ERR_KUBECONFIG', message, options);
  }
}

/**
 * Loads cluster access, in this order: `path`; the `KUBECONFIG` variable or `~/.kube/config`; the
 * in-cluster service account (when KUBERNETES_SERVICE_HOST is set). Unlike client-node's
 * loadFromDefault it never falls back to http://localhost:8080: with nothing found it throws
 * KubeConfigError, which names what to pass.
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (path) {
      kc.loadFromFile(path);
    } else if (process.env.KUBECONFIG || existsSync(join(homedir(), '.kube', 'config'))) {
      kc.loadFromDefault();
    } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
      kc.loadFromCluster();
    } else {
      throw new KubeConfigError(
        'no cluster access configured: pass --kubeconfig <path>, set KUBECONFIG, or run inside a cluster',
      );
    }
  } catch (error) {
    if (error instanceof KubeConfigError) throw error;
    throw new KubeConfigError(
      `cannot load kubeconfig${path ? ` ${path}` : ''}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new KubeConfigError(`kubeconfig${path ? ` ${path}` : ''} has no current context with a cluster`);
  }
  return kc;
}

/** The namespace of the kubeconfig's current context ("default" when it names none). */
export function currentNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
}

/** The API server URL of the current context. */
export function serverUrl(kc: KubeConfig): string {
  return kc.getCurrentCluster()?.server ?? '';
}
