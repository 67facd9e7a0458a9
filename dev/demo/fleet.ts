// A whole plugin-release installation on one machine: the dev cluster (or any cluster a kubeconfig
// names), the controller, and one agent per node, each with its own root. The demo and the
// end-to-end tests run on it.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type RunningAgent, startAgent } from '../../src/agent/daemon.ts';
import { type RunningController, startController } from '../../src/controller/manager.ts';
import { createKubeClients, type KubeClients, loadKubeConfig } from '../../src/kube/index.ts';
import { type DevCluster, startDevCluster } from '../cluster/index.ts';

export interface FleetOptions {
  logger: Logger;
  /** Simulated nodes on a fresh dev cluster (default 3). Ignored with `kubeconfig`. */
  nodes?: number;
  /** Run against this cluster instead of a dev cluster; agents serve its existing Nodes. */
  kubeconfig?: string;
  /** Where node roots and the shared staging directory go (default: a fresh temp dir). */
  dir?: string;
  /** The controller reconciles only this namespace's releases (default: every namespace). */
  namespace?: string;
}

export interface NodeAgent {
  node: string;
  root: string;
  agent: RunningAgent;
}

export interface LocalFleet {
  dir: string;
  kubeconfigPath: string;
  cluster: DevCluster | undefined;
  clients: KubeClients;
  /** The running controller (replaced by restartController). */
  readonly controller: RunningController;
  /** Stops the controller and starts a fresh one, as a controller restart mid-rollout would. */
  restartController(): Promise<void>;
  agents: NodeAgent[];
  /**
   * One staging directory shared by every simulated node, as if the same files were staged on each
   * (a release names one artifact path for the whole fleet).
   */
  stagingRoot: string;
  /** The front socket of `plugin` on `node` (its default address). */
  frontSocket(node: string, plugin: string): string;
  /** Stops the controller, the agents (with their plugins) and the cluster, and removes what it made. */
  stop(): Promise<void>;
}

export async function startLocalFleet(options: FleetOptions): Promise<LocalFleet> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'plugin-release-')));
  const cluster = options.kubeconfig
    ? undefined
    : await startDevCluster({ nodes: options.nodes ?? 3, dir: join(dir, 'cluster'), logger: options.logger });
  const kubeconfigPath = options.kubeconfig ?? cluster?.kubeconfigPath ?? '';
  const kubeConfig = loadKubeConfig(kubeconfigPath);
  const clients = createKubeClients(kubeConfig, { fieldManager: 'plugin-release-fleet' });
  const stagingRoot = join(dir, 'staging');
  await mkdir(stagingRoot, { recursive: true });

  // A simulated node brings its own root; a real cluster's nodes get one under `dir`.
  const nodes = cluster
    ? cluster.nodes.map((n) => ({ node: n.name, root: n.root }))
    : (await clients.nodes.list(undefined)).items.map((n) => {
        const node = n.metadata.name ?? '';
        return { node, root: join(dir, 'nodes', node, 'root') };
      });
  const agents = await Promise.all(
    nodes.map(async ({ node, root }): Promise<NodeAgent> => {
      const agent = await startAgent({
        kubeConfig: loadKubeConfig(kubeconfigPath),
        nodeName: node,
        root,
        stagingRoot,
        logger: options.logger.child({ component: 'agent', node }),
      });
      return { node, root, agent };
    }),
  );
  const newController = () =>
    startController({
      kubeConfig: loadKubeConfig(kubeconfigPath),
      logger: options.logger.child({ component: 'controller' }),
      ...(options.namespace ? { namespace: options.namespace } : {}),
    });
  let controller = await newController();
  return {
    dir,
    kubeconfigPath,
    cluster,
    clients,
    get controller() {
      return controller;
    },
    async restartController() {
      await controller.stop();
      controller = await newController();
    },
    agents,
    stagingRoot,
    frontSocket: (node, plugin) =>
      join(agents.find((a) => a.node === node)?.root ?? '', 'plugins', plugin, 'front.sock'),
    async stop() {
      await controller.stop();
      await Promise.all(agents.map((a) => a.agent.stop(true)));
      await cluster?.stop();
      // What the fleet made goes with it (the caller's files in a `dir` it gave stay); a keeper whose
      // root is gone exits within a second instead of idling out.
      const made = options.dir ? ['cluster', 'staging', 'nodes'].map((d) => join(dir, d)) : [dir];
      await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}
