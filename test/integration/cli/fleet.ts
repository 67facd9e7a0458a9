// A local fleet (dev cluster, controller, two agents) with the kubectl plugin on a PATH, and the few
// release operations the kubectl plugin tests need around their `kubectl pluginrelease` calls.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { stageEcho } from '../../../dev/demo/echo.ts';
import { type LocalFleet, startLocalFleet } from '../../../dev/demo/fleet.ts';
import { API_VERSION, type PluginRelease, type PluginReleaseSpecInput } from '../../../src/api/index.ts';
import { type Kubectl, kubectlEnv, kubectlPlugin, pluginBinDir, runProcess, waitFor } from './support.ts';

export interface PluginFleet {
  fleet: LocalFleet;
  home: string;
  kubectl: Kubectl;
  /** `kubectl pluginrelease <args>` as a running child, for commands that run until stopped (--watch). */
  spawnKubectl(args: string[]): ChildProcess;
  /** The real kubectl itself (`kubectl <args>`), with the same kubeconfig and empty HOME. */
  kubectlRaw: Kubectl;
  /** Creates a release of the echo plugin named `name` (plugin `name`) in "default". */
  create(name: string, spec: PluginReleaseSpecInput): Promise<void>;
  get(name: string): Promise<PluginRelease>;
  /** Resolves with the release once `ok` holds (polled; `timeoutMs`, default 60 s, at most). */
  until(
    name: string,
    what: string,
    ok: (r: PluginRelease) => boolean,
    timeoutMs?: number,
  ): Promise<PluginRelease>;
  /** A quick-probing spec of the echo plugin staged (or, later, to be staged) at `path`. */
  echoSpec(plugin: string, path: string, digest: string): PluginReleaseSpecInput;
  stageEcho: typeof stageEcho;
  stop(): Promise<void>;
}

export async function startPluginFleet(kubectlPath: string): Promise<PluginFleet> {
  const [fleet, binDir, home] = await Promise.all([
    startLocalFleet({ logger: pino({ level: 'silent' }), nodes: 2 }),
    pluginBinDir(),
    mkdtemp(join(tmpdir(), 'kubectl-home-')),
  ]);
  const get = (name: string) => fleet.clients.releases.get({ namespace: 'default', name });
  return {
    fleet,
    home,
    kubectl: kubectlPlugin(kubectlPath, binDir, home, fleet.kubeconfigPath),
    spawnKubectl: (args) =>
      spawn(kubectlPath, ['pluginrelease', ...args], {
        env: kubectlEnv(binDir, home, fleet.kubeconfigPath),
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    kubectlRaw: (args, env = {}) =>
      runProcess(kubectlPath, args, kubectlEnv(binDir, home, fleet.kubeconfigPath, env)),
    async create(name, spec) {
      await fleet.clients.releases.create({
        apiVersion: API_VERSION,
        kind: 'PluginRelease',
        metadata: { name, namespace: 'default' },
        spec,
      } as PluginRelease);
    },
    get,
    until: (name, what, ok, timeoutMs = 60_000) =>
      waitFor(
        `${name}: ${what}`,
        async () => {
          const release = await get(name);
          return ok(release) ? release : undefined;
        },
        timeoutMs,
      ),
    echoSpec: (plugin, path, digest) => ({
      plugin,
      version: '1.0.0',
      artifact: { path, digest, entrypoint: 'plugin' },
      health: { probes: [{ grpc: {}, periodSeconds: 1 }] },
      activation: { drainSeconds: 1, verifySeconds: 1 },
    }),
    stageEcho,
    stop: () => fleet.stop(),
  };
}
