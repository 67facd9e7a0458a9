// The node engine: every plugin under one agent root. The Kubernetes binding and the try-activate CLI
// drive it; it knows nothing of Kubernetes.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PluginActivationSpec, PluginActivationStatus } from '../api/index.ts';
import { type Fronts, LocalFronts } from './front/fronts.ts';
import { HostRuntime, hostPlugins } from './host/host-runtime.ts';
import { hostPluginDir } from './host/layout.ts';
import {
  type ActivateOptions,
  PluginHost,
  type SupervisedHealth,
  type SupervisionEvent,
} from './plugin-host.ts';
import { type Holder, type LockOptions, lockRoot, type RootLock } from './root-lock.ts';
import { pluginDir } from './store.ts';

export interface NodeEngineOptions {
  /** The agent's own directory: plugins/<plugin>/{releases,current,previous,journal.json,run}. */
  root: string;
  /** Artifacts and configs must resolve inside this directory. */
  stagingRoot: string;
  logger: Logger;
  /**
   * Who holds the fronts: the root's keeper process (KeeperFronts), so they outlive this process, or
   * by default this process itself (LocalFronts), for try-activate and tests.
   */
  fronts?: Fronts;
  now?: () => Date;
  delay?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Called when a plugin's supervised active process went down or came back. */
  onHealth?: (plugin: string, health: SupervisedHealth, event: SupervisionEvent) => void;
  /** How the engine takes the root's lock (root-lock.ts): who it is, and whether it asks to take over. */
  lock?: LockOptions;
}

export class NodeEngine {
  readonly #opts: NodeEngineOptions & { fronts: Fronts };
  readonly #hosts = new Map<string, Promise<PluginHost>>();
  /** Plugins under runtime Host (src/agent/host): an existing plugin host runs them, not the agent. */
  readonly #hostRuntimes = new Map<string, Promise<HostRuntime>>();
  #lock: RootLock | undefined;

  constructor(opts: NodeEngineOptions) {
    this.#opts = { ...opts, fronts: opts.fronts ?? new LocalFronts(opts.logger) };
  }

  /** The agent that held the root before this engine took it over, if it did. */
  get predecessor(): Holder | undefined {
    return this.#lock?.predecessor;
  }

  /**
   * Takes the root's lock (a live holder makes it throw ActivationError RootLocked, unless it hands
   * over), then recovers every plugin found under the root (see recovery.ts) and returns what recovery
   * did, by plugin. Call once at start-up, before the first activate.
   */
  async recover(): Promise<Record<string, string[]>> {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(this.#opts.root, { recursive: true });
    this.#lock ??= await lockRoot(this.#opts.root, this.#opts.lock ?? { version: 'engine' });
    let plugins: string[] = [];
    try {
      plugins = await readdir(join(this.#opts.root, 'plugins'));
    } catch {
      // a fresh root
    }
    const report: Record<string, string[]> = {};
    for (const plugin of plugins) report[plugin] = (await this.#host(plugin)).recoveryActions;
    for (const plugin of await hostPlugins(this.#opts.root)) {
      report[plugin] = [...(report[plugin] ?? []), ...(await this.#hostRuntime(plugin)).recoveryActions];
    }
    return report;
  }

  /** Runs one activation (one at a time per plugin) and resolves with its final status. */
  async activate(spec: PluginActivationSpec, options: ActivateOptions = {}): Promise<PluginActivationStatus> {
    if (spec.runtime === 'Host') return (await this.#hostRuntime(spec.plugin)).activate(spec, options);
    return (await this.#host(spec.plugin)).activate(spec, options);
  }

  /** The revision serving for `plugin` on this node, if any. */
  async activeRevision(plugin: string): Promise<string | undefined> {
    const host = this.#hostRuntimes.get(plugin);
    return (await (host ?? this.#host(plugin))).activeRevision;
  }

  /** What supervision knows of `plugin`'s active process (under runtime Host the host supervises itself). */
  async health(plugin: string): Promise<SupervisedHealth> {
    const host = this.#hostRuntimes.get(plugin);
    if (host) return { revision: (await host).activeRevision, restarts: 0, down: false };
    return (await this.#host(plugin)).health;
  }

  /**
   * Uninstalls `plugin` from this node (PluginHost.uninstall), then deletes its directory: releases,
   * snapshots, links and journal. Idempotent: a plugin the node never had, or one half removed by an
   * agent that died meanwhile, ends removed too.
   */
  async uninstall(plugin: string): Promise<void> {
    if ((await hostPlugins(this.#opts.root)).includes(plugin)) {
      // Under runtime Host the config and plugins are the host's: they stay live, and only the agent's
      // own record of them (snapshots, journal) goes.
      const runtime = this.#hostRuntimes.get(plugin);
      this.#hostRuntimes.delete(plugin);
      await (await runtime?.catch(() => undefined))?.close();
      await rm(hostPluginDir(this.#opts.root, plugin), { recursive: true, force: true });
      return;
    }
    const host = await this.#host(plugin).catch((err: unknown) => {
      this.#opts.logger.warn({ plugin, err }, 'the plugin could not be opened; removing its directory');
      return undefined;
    });
    this.#hosts.delete(plugin);
    await host?.uninstall();
    await rm(pluginDir(this.#opts.root, plugin), { recursive: true, force: true });
  }

  /**
   * Stops supervising and lets go of the fronts. Plugin processes keep running (a restarted agent adopts
   * them), and so do the fronts when a keeper holds them; with `stopPlugins` both stop.
   */
  async close(stopPlugins = false): Promise<void> {
    // A host that failed to open (a damaged root) has nothing to close; the fronts still must be let go.
    for (const host of this.#hosts.values()) await (await host.catch(() => undefined))?.close(stopPlugins);
    for (const host of this.#hostRuntimes.values()) await (await host.catch(() => undefined))?.close();
    await this.#opts.fronts.detach(stopPlugins);
    await this.#lock?.release();
    this.#lock = undefined;
  }

  #hostRuntime(plugin: string): Promise<HostRuntime> {
    return openOnce(this.#hostRuntimes, plugin, () => HostRuntime.open({ ...this.#opts, plugin }));
  }

  #host(plugin: string): Promise<PluginHost> {
    return openOnce(this.#hosts, plugin, () => PluginHost.open({ ...this.#opts, plugin }));
  }
}

/** The runtime of `plugin`, opened on first use; later callers share that opening. */
function openOnce<T>(opened: Map<string, Promise<T>>, plugin: string, open: () => Promise<T>): Promise<T> {
  let runtime = opened.get(plugin);
  if (!runtime) {
    runtime = open();
    opened.set(plugin, runtime);
  }
  return runtime;
}
