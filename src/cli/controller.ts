// `plugin-release controller`: reconcile PluginReleases into per-node PluginActivations.
import type { ParseArgsOptionsConfig } from 'node:util';
import { z } from 'zod';
import { commonFlags, componentFlags, runUntilSignal, started } from './component.ts';

export const help = `Usage: plugin-release controller [--kubeconfig <path>] [--namespace <ns> | --all-namespaces]
                                 [--leader-elect] [--metrics-addr <host:port>] [--log-level <level>]

Watches PluginReleases, Nodes and PluginActivations and rolls each release out in waves: it creates,
updates and deletes one PluginActivation per targeted node and reports progress in the release's status.

Flags:
  --kubeconfig <path>        kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster)
  --namespace <ns>           watch one namespace only
  --all-namespaces           watch every namespace (the default)
  --leader-elect             campaign for the Lease "plugin-release-controller" in $POD_NAMESPACE
                             (or --lease-namespace) and reconcile only while leading
  --leader-elect-lease-duration <seconds>
                             how long a lease outlives a leader that stopped renewing it: the time a
                             standby waits to take over after the leader dies (default 15)
  --lease-namespace <ns>     where the leader-election Lease lives (default: $POD_NAMESPACE, else the
                             kubeconfig context's namespace)
  --metrics-addr <host:port> serve /metrics, /healthz and /readyz here (e.g. 0.0.0.0:8080)
  --cache-sync-timeout <seconds>
                             exit non-zero when the caches have not filled by then (default 60); a list
                             the API server refuses (RBAC) fails at once, naming the verb and resource
  --log-level <level>        trace, debug, info (default), warn, error

Examples:
  plugin-release controller --kubeconfig ~/.kube/config
  plugin-release controller --leader-elect --metrics-addr 0.0.0.0:8080`;

const Flags = z
  .object({
    ...commonFlags,
    namespace: z.string().min(1).optional(),
    'all-namespaces': z.boolean().default(false),
    'leader-elect': z.boolean().default(false),
    'lease-namespace': z.string().min(1).optional(),
    'leader-elect-lease-duration': z.coerce.number().int().min(2).max(3600).default(15),
  })
  .refine(
    (f) => !(f.namespace && f['all-namespaces']),
    '--namespace and --all-namespaces exclude each other',
  );

/** This command's own flags (componentFlags adds the common ones). */
const OPTIONS = {
  namespace: { type: 'string' },
  'all-namespaces': { type: 'boolean' },
  'leader-elect': { type: 'boolean' },
  'lease-namespace': { type: 'string' },
  'leader-elect-lease-duration': { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

export async function main(argv: string[]): Promise<number> {
  const flags = componentFlags('controller', help, argv, OPTIONS, Flags, {
    'lease-namespace': process.env.POD_NAMESPACE,
  });
  if (!flags) return 1;
  // Loaded only now, so --help and bad flags answer at once (docs/benchmarks.md, start-up).
  const [{ startController }, { currentNamespace, loadKubeConfig }, { createLogger }] = await Promise.all([
    import('../controller/manager.ts'),
    import('../kube/index.ts'),
    import('../observability/index.ts'),
  ]);
  const logger = createLogger({ level: flags['log-level'] });
  const kubeConfig = loadKubeConfig(flags.kubeconfig);
  const controller = await started(
    logger,
    startController({
      kubeConfig,
      logger,
      namespace: flags.namespace,
      leaderElection: flags['leader-elect']
        ? {
            namespace: flags['lease-namespace'] ?? currentNamespace(kubeConfig),
            name: 'plugin-release-controller',
            leaseDurationSeconds: flags['leader-elect-lease-duration'],
          }
        : undefined,
      metricsAddr: flags['metrics-addr'],
      cacheSyncTimeoutMs: flags['cache-sync-timeout'] * 1000,
    }),
  );
  return controller ? runUntilSignal(logger, 'controller', controller) : 1;
}
