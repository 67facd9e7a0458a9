// The node engine: every plugin under one agent root. The Kubernetes binding and the try-activate CLI
// drive it; it knows nothing of Kubernetes.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { PluginActivationSpec, PluginActivationStatus } from '../api/index.ts';
import { type ActivateOptions, PluginHost } from './plugin-host.ts';

export interface NodeEngineOptions {
  /** The agent's own directory: plugins/<plugin>/{releases,current,previous,journal.json,run}. */
  root: string;
  /** Artifacts and configs must resolve inside this directory. */
  stagingRoot: string;
  logger: Logger;
  now?: () => Date;
  delay?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export class NodeEngine {
  readonly #opts: NodeEngineOptions;
  readonly #hosts = new Map<string, Promise<PluginHost>>();

  constructor(opts: NodeEngineOptions) {
    this.#opts = opts;
  }

  /**
   * Recovers every plugin found under the root (see recovery.ts) and returns what recovery did, by
   * plugin. Call once at start-up, before the first activate.
   */
  async recover(): Promise<Record<string, string[]>> {
    let plugins: string[] = [];
    try {
      plugins = await readdir(join(this.#opts.root, 'plugins'));
    } catch {
      // a fresh root
    }
    const report: Record<string, string[]> = {};
    for (const plugin of plugins) report[plugin] = (await this.#host(plugin)).recoveryActions;
    return report;
  }

  /** Runs one activation (one at a time per plugin) and resolves with its final status. */
  async activate(spec: PluginActivationSpec, options: ActivateOptions = {}): Promise<PluginActivationStatus> {
    return (await this.#host(spec.plugin)).activate(spec, options);
  }

  /** The revision serving for `plugin` on this node, if any. */
  async activeRevision(plugin: string): Promise<string | undefined> {
    return (await this.#host(plugin)).activeRevision;
  }

  /** Closes every front; plugin processes keep running (a restarted agent adopts them). */
  async close(stopPlugins = false): Promise<void> {
    for (const host of this.#hosts.values()) await (await host).close(stopPlugins);
  }

  #host(plugin: string): Promise<PluginHost> {
    let host = this.#hosts.get(plugin);
    if (!host) {
      host = PluginHost.open({ ...this.#opts, plugin });
      this.#hosts.set(plugin, host);
    }
    return host;
  }
}
