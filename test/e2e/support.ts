// End-to-end support: a fleet (dev cluster, or a real cluster with E2E_REAL_CLUSTER=1 and KUBECONFIG),
// a namespace of its own, releases of the example plugin, and a recorder of every activation change.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import { stageEcho, writeEchoConfig } from '../../dev/demo/echo.ts';
import { type LocalFleet, startLocalFleet } from '../../dev/demo/fleet.ts';
import { servingVersion } from '../../dev/demo/traffic.ts';
import {
  API_VERSION,
  type PluginActivation,
  type PluginRelease,
  type PluginReleaseSpecInput,
} from '../../src/api/index.ts';
import { loadKubeConfig } from '../../src/kube/index.ts';

export const REAL = process.env.E2E_REAL_CLUSTER === '1' && Boolean(process.env.KUBECONFIG);
export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
export const HAS_KUBECTL = existsSync(KUBECTL);
const run = promisify(execFile);
const CRDS = join(import.meta.dirname, '../../crds');

/** How many Node objects a real-cluster world of `nodes` creates for itself. */
export const createdNodes = (nodes: number) => Number(process.env.E2E_CREATE_NODES ?? nodes);

export interface World {
  fleet: LocalFleet;
  namespace: string;
  kubectl(...args: string[]): Promise<string>;
  close(): Promise<void>;
}

/**
 * A fleet of `nodes` simulated nodes on a fresh dev cluster. Against a real cluster: applies crds/,
 * creates `nodes` Node objects (E2E_CREATE_NODES overrides: 0 for a cluster whose own Nodes should
 * serve), and runs one local agent per Node of the cluster.
 * Either way the test gets a namespace of its own, deleted at close.
 */
export async function aWorld(nodes: number, logger: Logger = pino({ level: 'silent' })): Promise<World> {
  const created: string[] = [];
  if (REAL) {
    await run(KUBECTL, ['apply', '-f', CRDS]);
    const core = loadKubeConfig().makeApiClient(CoreV1Api);
    for (let i = 1; i <= createdNodes(nodes); i++) {
      const name = `plr-e2e-node-${i}`;
      await core.createNode({ body: { metadata: { name } } });
      created.push(name);
    }
  }
  // The controller sees only this namespace: on a shared real cluster, other suites' releases stay theirs.
  const namespace = `plr-e2e-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const fleet = await startLocalFleet({
    logger,
    nodes,
    namespace,
    ...(REAL ? { kubeconfig: process.env.KUBECONFIG } : {}),
  });
  const core = fleet.clients.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  return {
    fleet,
    namespace,
    async kubectl(...args) {
      const { stdout } = await run(
        KUBECTL,
        ['--kubeconfig', fleet.kubeconfigPath, '-n', namespace, ...args],
        {
          timeout: 40_000,
        },
      );
      return stdout;
    },
    async close() {
      await core.deleteNamespace({ name: namespace }).catch(() => {});
      // Its activations wait for the agents to uninstall their plugins: keep them running until then,
      // or a real cluster keeps the namespace Terminating.
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const left = await fleet.clients.activations.list(namespace).catch(() => undefined);
        if (!left || left.items.length === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      for (const name of created) await core.deleteNode({ name }).catch(() => {});
      await fleet.stop();
    },
  };
}

export interface Plugin {
  name: string;
  /**
   * Stages `version` of the example plugin under its own name and returns a release spec for it. A
   * version ending in `-broken` is never healthy; `healthyOn` makes it healthy only on those nodes.
   */
  spec(
    version: string,
    extra?: Partial<PluginReleaseSpecInput>,
    healthyOn?: string[],
  ): Promise<PluginReleaseSpecInput>;
}

export function aPlugin(world: World, name: string): Plugin {
  return stagedPlugin(join(world.fleet.stagingRoot, name), name);
}

/** A plugin staged under `staging` (the directory every node's agent reads as its staging root). */
export function stagedPlugin(staging: string, name: string): Plugin {
  return {
    name,
    async spec(version, extra = {}, healthyOn) {
      const artifact = await stageEcho(join(staging, version), version);
      let requires: string | undefined;
      if (version.endsWith('-broken')) requires = '/nonexistent/flag';
      if (healthyOn) {
        // The plugin expands ${PLUGIN_RELEASE_NODE}: a flag file per healthy node.
        const flags = join(staging, `${version}-flags`);
        for (const node of healthyOn) await writeEchoConfig(join(flags, node), {});
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the placeholder the plugin expands.
        requires = join(flags, '${PLUGIN_RELEASE_NODE}');
      }
      const config = await writeEchoConfig(join(staging, `${version}.json`), requires ? { requires } : {});
      return {
        plugin: name,
        version,
        artifact: { path: artifact.path, digest: artifact.digest, entrypoint: 'plugin' },
        config,
        health: { probes: [{ grpc: {}, periodSeconds: 1, failureThreshold: 2 }] },
        activation: { drainSeconds: 1, verifySeconds: 1 },
        rollout: { maxUnavailable: '100%' },
        ...extra,
      };
    },
  };
}

/** Creates the release, or replaces its spec (and merges `annotations`) when it exists. */
export async function apply(
  world: World,
  name: string,
  spec: PluginReleaseSpecInput,
  annotations?: Record<string, string>,
): Promise<PluginRelease> {
  const { releases } = world.fleet.clients;
  const ref = { namespace: world.namespace, name };
  const existing = await releases.get(ref).catch(() => undefined);
  if (!existing) {
    return releases.create({
      apiVersion: API_VERSION,
      kind: 'PluginRelease',
      metadata: { name, namespace: world.namespace, ...(annotations ? { annotations } : {}) },
      spec,
    } as PluginRelease);
  }
  return releases.replace({
    ...existing,
    metadata: { ...existing.metadata, annotations: { ...existing.metadata.annotations, ...annotations } },
    spec: spec as PluginRelease['spec'],
  });
}

/** The release once its status describes its spec and `check` holds. */
export async function until(
  world: World,
  name: string,
  check: (r: PluginRelease) => boolean,
  timeoutMs = 45_000,
): Promise<PluginRelease> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await world.fleet.clients.releases
      .get({ namespace: world.namespace, name })
      .catch(() => undefined);
    if (r && r.status?.observedGeneration === r.metadata.generation && check(r)) return r;
    if (Date.now() > deadline)
      throw new Error(`release ${name} never converged: ${JSON.stringify(r?.status)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export const condition = (r: PluginRelease, type: string) =>
  r.status?.conditions?.find((c) => c.type === type);

/** The version each node's front serves for `plugin`, in node order. */
export const serving = (world: World, plugin: string) =>
  Promise.all(world.fleet.agents.map((a) => servingVersion(world.fleet.frontSocket(a.node, plugin))));

export async function activationsOf(world: World, release: string): Promise<PluginActivation[]> {
  const list = await world.fleet.clients.activations.list(world.namespace, {
    labelSelector: `pluginrelease.io/release=${release}`,
  });
  return list.items.sort((a, b) => a.spec.nodeName.localeCompare(b.spec.nodeName, 'en', { numeric: true }));
}

/** One observed activation state: what the API server held at `at`. */
export interface Observed {
  at: number;
  node: string;
  revision: string;
  generation: number;
  observedGeneration: number | undefined;
  phase: string | undefined;
}

/** Records every version of the release's activations a watch delivers, until `stop()`. */
export function recordActivations(world: World, release: string) {
  const seen: Observed[] = [];
  const informer = world.fleet.clients.informer(world.fleet.clients.activations, {
    namespace: world.namespace,
    labelSelector: `pluginrelease.io/release=${release}`,
  });
  const record = (a: PluginActivation) =>
    seen.push({
      at: Date.now(),
      node: a.spec.nodeName,
      revision: a.spec.revision,
      generation: a.metadata.generation ?? 0,
      observedGeneration: a.status?.observedGeneration,
      phase: a.status?.phase,
    });
  informer.on({ add: record, update: (_, a) => record(a) });
  informer.start();
  return {
    seen,
    synced: () => informer.waitForSync(),
    stop: () => informer.stop(),
  };
}

const TERMINAL = new Set(['Active', 'RolledBack', 'Failed', 'Probed']);

/**
 * The most activations of `revision` in flight at once: a node is in flight from the first version
 * of its activation that names `revision` until its agent reports a terminal phase for it.
 */
export function maxInFlight(seen: readonly Observed[], revision: string): number {
  const inFlight = new Set<string>();
  let max = 0;
  for (const o of seen) {
    if (o.revision !== revision) continue;
    const finished = o.observedGeneration === o.generation && o.phase !== undefined && TERMINAL.has(o.phase);
    if (finished) inFlight.delete(o.node);
    else inFlight.add(o.node);
    max = Math.max(max, inFlight.size);
  }
  return max;
}

/** The phases a node went through for `revision`, in order, without repeats. */
export function phasesOf(seen: readonly Observed[], node: string, revision: string): string[] {
  const phases: string[] = [];
  for (const o of seen) {
    if (o.node !== node || o.revision !== revision || o.observedGeneration !== o.generation || !o.phase)
      continue;
    if (phases.at(-1) !== o.phase) phases.push(o.phase);
  }
  return phases;
}
