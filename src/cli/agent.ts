// `plugin-release agent`: run this node's PluginActivations on the node engine.
import type { ParseArgsOptionsConfig } from 'node:util';
import { z } from 'zod';
import { commonFlags, componentFlags, runUntilSignal, started } from './component.ts';
import { agentVersion } from './version.ts';

export const help = `Usage: plugin-release agent --node <name> --staging-root <dir> --root <dir>
                            [--kubeconfig <path>] [--metrics-addr <host:port>] [--takeover]
                            [--fronts keeper|local] [--log-level <level>]

Watches the PluginActivations labelled pluginrelease.io/node=<name> and runs each on this machine:
stage, probe, swap, roll back. Writes only the activations' status. Several agents may run on one
machine as long as each has its own --node and --root.

Flags:
  --node <name>              the Node this agent serves (default: $NODE_NAME)
  --staging-root <dir>       artifacts and configs must resolve inside this directory
  --root <dir>               the agent's own state: staged releases, current/previous links, journals
  --kubeconfig <path>        kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, then in-cluster)
  --metrics-addr <host:port> serve /metrics, /healthz and /readyz here (e.g. 0.0.0.0:8081)
  --cache-sync-timeout <seconds>
                             exit non-zero when the activations cache has not filled by then (default
                             60); a list the API server refuses (RBAC) fails at once, naming it
  --takeover                 when another agent holds --root (an upgrade), ask it to hand over instead
                             of refusing to start; it stops, its plugins keep serving, this one adopts them
  --fronts keeper|local      who holds the fronts' listening sockets: a keeper process that outlives the
                             agent (default; see plugin-release keeper), or the agent itself
  --log-level <level>        trace, debug, info (default), warn, error

On SIGTERM the agent stops watching; plugin processes and the fronts keep serving and the next agent
adopts them. A second agent on the same --root refuses to start (RootLocked) unless --takeover.

Example:
  plugin-release agent --node "$NODE_NAME" --staging-root /var/lib/plugin-release/staging \\
    --root /var/lib/plugin-release/agent --metrics-addr 0.0.0.0:8081`;

const required = (message: string) => z.string({ error: message }).min(1, message);
const Flags = z.object({
  node: required('--node (or $NODE_NAME) is required'),
  'staging-root': required('--staging-root is required'),
  root: required('--root is required'),
  ...commonFlags,
  takeover: z.boolean().default(false),
  fronts: z.enum(['keeper', 'local']).default('keeper'),
});

/** This command's own flags (componentFlags adds the common ones). */
const OPTIONS = {
  node: { type: 'string' },
  'staging-root': { type: 'string' },
  root: { type: 'string' },
  takeover: { type: 'boolean' },
  fronts: { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

export async function main(argv: string[]): Promise<number> {
  const flags = componentFlags('agent', help, argv, OPTIONS, Flags, { node: process.env.NODE_NAME });
  if (!flags) return 1;
  // Loaded only now, so --help and bad flags answer at once (docs/benchmarks.md, start-up).
  const [{ startAgent }, { loadKubeConfig }, { createLogger }] = await Promise.all([
    import('../agent/daemon.ts'),
    import('../kube/index.ts'),
    import('../observability/index.ts'),
  ]);
  const logger = createLogger({ level: flags['log-level'] }).child({ node: flags.node });
  const agent = await started(
    logger,
    startAgent({
      kubeConfig: loadKubeConfig(flags.kubeconfig),
      nodeName: flags.node,
      root: flags.root,
      stagingRoot: flags['staging-root'],
      logger,
      metricsAddr: flags['metrics-addr'],
      version: agentVersion(),
      takeover: flags.takeover,
      fronts: flags.fronts,
      cacheSyncTimeoutMs: flags['cache-sync-timeout'] * 1000,
    }),
  );
  if (!agent) return 1;
  return runUntilSignal(logger, 'agent', agent, {
    stopping: 'stopping; plugin processes keep serving',
    ended: agent.handedOver.then(() => 'handed the root over to a newer agent; exiting'),
  });
}
