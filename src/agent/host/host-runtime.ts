// One plugin on one node under runtime Host: an existing plugin host, driven through its admin API,
// owns the listener and loads the config and plugins itself; the agent only decides what it runs.
// Runs one activation at a time by driving the same pure state machine as the Process runtime
// (engine/transition.ts), with one small handler per effect:
//
//   Stage  copy + verify config/artifact              Launch  GET health (a dead host is not a bad candidate)
//   Probe  POST try-activate (the host builds it)     Swap    journal intent → install plugin, reload → activate
//   Verify GET health through verifySeconds           Retire  settle the journal, sweep releases and snapshots
//   Restore  put the plugin snapshot back, reload, activate the previous config
//   StopCandidate  nothing runs before the swap; after one with nothing to restore, the plugin snapshot
//
// The journal's intent is written before the host is told anything, so an agent killed between the swap
// and the end of verification restores the previous config and plugin when it opens again.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  type HostSpec,
  NodeReason,
  type PluginActivationSpec,
  type PluginActivationStatus,
  type ProbeResult,
} from '../../api/index.ts';
import { crashPoint } from '../actions/crash-point.ts';
import { verifyWindowMs } from '../actions/verify.ts';
import {
  type AttemptBase,
  Attempts,
  driveAttempt,
  type Handlers,
  outcomeOf,
  performEffect,
} from '../attempt.ts';
import type { Effect } from '../engine/transition.ts';
import { ActivationError } from '../errors.ts';
import type { ActivateOptions } from '../plugin-host.ts';
import { runProbes } from '../runtime/index.ts';
import { linkTarget, readLinkRevision, setLink } from '../store.ts';
import { type HostAnswer, judgeCall, judgeTryActivate } from './answers.ts';
import { forNode, type HostClient, type HostEndpoint, hostClient } from './client.ts';
import {
  checkPluginsDir,
  restorePlugin,
  snapshotName,
  stagePlugin,
  swapPlugin,
  sweepPluginSnapshots,
} from './install.ts';
import {
  type HostIntent,
  type HostJournal,
  type HostRecord,
  hostPluginDir,
  hostReleasesDir,
  hostsRoot,
  readHostJournal,
  readHostRecord,
  writeHostJournal,
} from './layout.ts';
import { stageHostRelease } from './stage.ts';

export interface HostRuntimeOptions {
  root: string;
  stagingRoot: string;
  plugin: string;
  logger: Logger;
  now?: () => Date;
  delay?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Longest try-activate answer kept in the status (`hostAnswer`). */
const MAX_ANSWER_KEPT = 4096;

interface Attempt extends AttemptBase {
  record?: HostRecord;
  client?: HostClient;
  /** The host's try-activate body, as the status reports it. */
  hostAnswer?: string;
  /** The last result of the release's own probes against the host, while verifying. */
  lastProbe?: ProbeResult;
  /** What the swap changed so far, so that a restore undoes that and tells the host nothing else. */
  changed?: Changed;
}

/** Which parts of the host a swap changed: the plugin directory, the active config. */
interface Changed {
  plugin: boolean;
  config: boolean;
}
/** Recovery cannot know how far a swap got, so it undoes every part (each is idempotent). */
const EVERYTHING: Changed = { plugin: true, config: true };

/** The reason an unexpected error (an I/O failure, not the host's answer) in each effect reports. */
const UNEXPECTED_FAILURE_REASON: Record<Effect, NodeReason> = {
  Stage: NodeReason.StageFailed,
  StopActive: NodeReason.SwapFailed,
  Launch: NodeReason.HostUnreachable,
  Probe: NodeReason.HostError,
  Swap: NodeReason.SwapFailed,
  Verify: NodeReason.HostUnhealthy,
  Retire: NodeReason.SwapFailed,
  StopCandidate: NodeReason.RollbackFailed,
  Restore: NodeReason.RollbackFailed,
};

/** Where the release's own probes reach the host: its admin address, as a handshake would name it. */
const probeTarget = (endpoint: HostEndpoint) => ({
  coreProtocol: 1,
  appProtocol: 1,
  network: endpoint.kind,
  address: endpoint.kind === 'unix' ? endpoint.socketPath : `${endpoint.hostname}:${endpoint.port}`,
});

/** The host's plugin reload path for `plugin` (its `{plugin}` placeholder replaced). */
const reloadPath = (host: HostSpec, plugin: string) =>
  (host.plugins?.reload.path ?? '').replaceAll('{plugin}', plugin);

export class HostRuntime {
  readonly plugin: string;
  readonly #opts: HostRuntimeOptions;
  readonly #now: () => Date;
  #journal!: HostJournal;
  readonly #attempts = new Attempts();
  /** What recovery did when this runtime opened, reported once on the next activation. */
  recoveryActions: string[] = [];

  private constructor(opts: HostRuntimeOptions) {
    this.plugin = opts.plugin;
    this.#opts = opts;
    this.#now = opts.now ?? (() => new Date());
  }

  /** Opens the plugin's host state, finishing whatever an earlier agent left mid-swap (see recover). */
  static async open(opts: HostRuntimeOptions): Promise<HostRuntime> {
    const runtime = new HostRuntime(opts);
    runtime.#journal = await readHostJournal(opts.root, opts.plugin);
    if (runtime.#journal.intent) {
      runtime.recoveryActions = await runtime.#recover().catch((error: Error) => {
        opts.logger.error(
          { plugin: opts.plugin, err: error },
          'host recovery failed; retried on the next activation',
        );
        return [
          `Restoring the host after an interrupted swap failed (${error.message}); it is retried on the next activation.`,
        ];
      });
      for (const a of runtime.recoveryActions) opts.logger.warn({ plugin: opts.plugin }, a);
    }
    return runtime;
  }

  /** The revision the agent last made the host run. */
  get activeRevision(): string | undefined {
    return this.#journal.active ?? undefined;
  }

  /** Runs one activation to a terminal phase; never throws for host failures, only when aborted. */
  activate(spec: PluginActivationSpec, options: ActivateOptions = {}): Promise<PluginActivationStatus> {
    return this.#attempts.enqueue(() => this.#activate(spec, options));
  }

  async #activate(spec: PluginActivationSpec, options: ActivateOptions): Promise<PluginActivationStatus> {
    const attempt: Attempt = this.#attempts.begin(spec, options, this.#opts.logger, { runtime: 'Host' });
    await driveAttempt(
      attempt,
      () => ({
        strategy: 'TryActivate',
        dryRun: spec.dryRun,
        verifySeconds: spec.activation.verifySeconds,
        hasActive: this.#journal.active !== null,
      }),
      (effect, a) => performEffect(this.#handlers, UNEXPECTED_FAILURE_REASON, effect, a),
      (a) => this.#status(a),
      (a) => this.#cancel(a),
    );
    return this.#status(attempt);
  }

  /**
   * A cancelled attempt (its activation deleted or sent elsewhere) undoes its swap if it made one; before
   * the swap the host was never told. The restore's calls are not tied to the aborted signal; one that
   * fails is finished by recovery before the next activation.
   */
  async #cancel(a: Attempt): Promise<void> {
    if (!this.#journal.intent || !a.record) return;
    try {
      a.client = await hostClient(a.record.host, a.record.node);
      await this.#handlers.Restore(a);
      a.logger.info({ phase: a.state.phase }, 'attempt cancelled; the previous config is restored');
    } catch (error) {
      a.logger.warn(
        { err: error },
        'could not undo the cancelled attempt; it is restored before the next one',
      );
    }
  }

  readonly #handlers: Handlers<Attempt> = {
    Stage: async (a) => {
      if (this.#journal.intent) {
        // An earlier restore could not reach the host: finish it before anything new.
        try {
          this.recoveryActions.push(...(await this.#recover()));
        } catch (error) {
          throw new ActivationError(
            NodeReason.RecoveryFailed,
            `An interrupted swap to ${this.#journal.intent?.to} is still being restored, and the host could not be told yet: ${(error as Error).message}`,
          );
        }
      }
      a.record = await stageHostRelease({
        root: this.#opts.root,
        stagingRoot: this.#opts.stagingRoot,
        spec: a.spec,
        now: this.#now(),
      });
      a.client = await hostClient(a.record.host, a.record.node, a.options.signal);
      if (a.record.artifact) await checkPluginsDir(this.#pluginsDir(a.record));
      return { type: 'Staged' };
    },
    StopActive: async () => {
      throw new ActivationError(
        NodeReason.SwapFailed,
        'Runtime Host has no Recreate: the host swaps in place.',
      );
    },
    Launch: async (a) => {
      await this.#checkHealthy(
        a.client!,
        a.record!.host,
        'before try-activate; a dead host is not a bad candidate',
      );
      return { type: 'Launched' };
    },
    Probe: async (a) => {
      const config = a.record!.config;
      if (!config) return { type: 'Healthy' }; // a plugin-only release: its files were verified at Stage
      const answer = await a.client!.call(
        'POST',
        a.record!.host.tryActivate.path,
        await this.#configBody(config),
      );
      a.hostAnswer = answer.body.slice(0, MAX_ANSWER_KEPT);
      const verdict = judgeTryActivate(answer);
      if (verdict.kind === 'rejected')
        throw new ActivationError(
          NodeReason.TryActivateRejected,
          `${verdict.message}. The active config is unchanged.`,
        );
      if (verdict.kind === 'failed') {
        throw new ActivationError(
          NodeReason.HostError,
          `${verdict.message}; that is not an answer about the candidate (200 or 422 is), so the host was left as it is.`,
        );
      }
      crashPoint('host:probed');
      return { type: 'Healthy' };
    },
    Swap: async (a) => {
      const record = a.record!;
      const dir = record.artifact ? this.#pluginsDir(record) : undefined;
      const intent: HostIntent = {
        op: 'swap',
        from: this.#journal.active,
        fromPrevious:
          (await readLinkRevision(hostPluginDir(this.#opts.root, this.plugin), 'previous')) ?? null,
        to: a.revision,
        plugin: dir ? { dir, snapshot: await snapshotName(dir, this.plugin, this.#now()) } : null,
        at: this.#now().toISOString(),
      };
      this.#journal = await writeHostJournal(this.#opts.root, { ...this.#journal, intent }, this.#now());
      crashPoint('host:intent');
      a.changed = { plugin: false, config: false };
      if (record.artifact && intent.plugin) {
        const staged = await stagePlugin(
          intent.plugin.dir,
          this.plugin,
          a.revision,
          record.artifact.path,
          record.artifact.digest,
        );
        a.changed.plugin = true;
        await swapPlugin(intent.plugin.dir, this.plugin, staged, intent.plugin.snapshot, {
          revision: a.revision,
          digest: record.artifact.digest,
          at: this.#now(),
        });
        crashPoint('host:installed');
        await this.#reloadPlugin(a.client!, record.host, NodeReason.PluginReloadFailed);
      }
      if (record.config) {
        a.changed.config = true;
        const verdict = judgeCall(
          `The host's activate (POST ${record.host.activate.path})`,
          await a.client!.call('POST', record.host.activate.path, await this.#configBody(record.config)),
        );
        if (verdict.kind !== 'accepted')
          throw new ActivationError(NodeReason.ActivateFailed, `${verdict.message}.`);
      }
      crashPoint('host:activated');
      const dirOf = hostPluginDir(this.#opts.root, this.plugin);
      if (intent.from !== a.revision) {
        await setLink(dirOf, 'previous', intent.from ? linkTarget(intent.from) : undefined);
      }
      await setLink(dirOf, 'current', linkTarget(a.revision));
      return { type: 'Swapped' };
    },
    Verify: async (a) => {
      // As for processes: extended so that every probe can reach its failure threshold inside it.
      const windowMs = verifyWindowMs(a.spec);
      const stop = new AbortController();
      const onAbort = () => stop.abort(a.options.signal?.reason);
      a.options.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        // The host's health path, and the release's own probes against the host's address, if any.
        const probes = a.spec.health.probes.length
          ? [
              runProbes(probeTarget(a.client!.endpoint), a.spec.health, {
                until: 'window',
                windowMs,
                signal: stop.signal,
                ...(this.#opts.delay ? { delay: this.#opts.delay } : {}),
                onResult: (r) => {
                  a.lastProbe = r;
                },
              }),
            ]
          : [];
        // Verified when both are done; the first failure ends it.
        await Promise.all([this.#watchHealth(a, windowMs, stop.signal), ...probes]);
      } finally {
        stop.abort(new Error('verification finished'));
        a.options.signal?.removeEventListener('abort', onAbort);
      }
      crashPoint('host:verified');
      return { type: 'Verified' };
    },
    Retire: async (a) => {
      this.#journal = await writeHostJournal(
        this.#opts.root,
        { ...this.#journal, active: a.revision, intent: null },
        this.#now(),
      );
      const keep = a.spec.retention.keepSnapshots;
      const removed: string[] = await this.#sweep(keep).catch((e: Error) => {
        a.logger.warn({ err: e }, 'sweep failed');
        return [];
      });
      if (a.record?.artifact)
        removed.push(
          ...(await sweepPluginSnapshots(this.#pluginsDir(a.record), this.plugin, keep).catch(() => [])),
        );
      if (removed.length) a.logger.info({ removed }, 'swept old host releases and plugin snapshots');
      return { type: 'Retired' };
    },
    StopCandidate: async (a) => {
      // Nothing runs before the swap. After one (a first activation has no previous config to go back to),
      // at least the plugin directory is put back as it was.
      if (this.#journal.intent?.to === a.revision)
        await this.#restore(this.#journal.intent, a.client!, a.logger, a.changed);
      return { type: 'CandidateStopped' };
    },
    Restore: async (a) => {
      await this.#restore(this.#journal.intent!, a.client!, a.logger, a.changed);
      return { type: 'Restored' };
    },
  };

  #pluginsDir(record: HostRecord): string {
    return forNode(record.host.plugins!.dir, record.node);
  }

  async #configBody(
    config: NonNullable<HostRecord['config']>,
  ): Promise<{ bytes: Buffer; contentType: string }> {
    return { bytes: await readFile(config.path), contentType: config.contentType };
  }

  /**
   * Checks the host's health every periodSeconds, as many times as `windowMs` holds and at least
   * failureThreshold times; throws HostUnhealthy at the threshold. The checks are counted, not timed
   * against the clock: on a loaded node the window stretches rather than losing checks.
   */
  async #watchHealth(a: Attempt, windowMs: number, signal: AbortSignal): Promise<void> {
    const { host } = a.record!;
    const delay = this.#opts.delay ?? ((ms, s) => sleep(ms, undefined, { signal: s }));
    const periodMs = host.health.periodSeconds * 1000;
    const checks = Math.max(host.health.failureThreshold, Math.ceil(windowMs / periodMs));
    let failures = 0;
    for (let i = 0; i < checks; i++) {
      await delay(periodMs, signal);
      const why = await this.#unhealthy(a.client!, host);
      failures = why ? failures + 1 : 0;
      if (why && failures >= host.health.failureThreshold) {
        throw new ActivationError(
          NodeReason.HostUnhealthy,
          `After revision ${a.revision} was activated the host failed ${failures} health checks in a row: ${why}.`,
        );
      }
    }
  }

  /** Why the host is not healthy now, or undefined when it is. */
  async #unhealthy(client: HostClient, host: HostSpec): Promise<string | undefined> {
    let answer: HostAnswer;
    try {
      answer = await client.call('GET', host.health.path);
    } catch (error) {
      return (error as Error).message;
    }
    const verdict = judgeCall(`GET ${host.health.path}`, answer);
    return verdict.kind === 'accepted' ? undefined : verdict.message;
  }

  async #checkHealthy(client: HostClient, host: HostSpec, when: string): Promise<void> {
    const answer = await client.call('GET', host.health.path); // HostUnreachable when it cannot be reached
    const verdict = judgeCall(`GET ${host.health.path}`, answer);
    if (verdict.kind !== 'accepted') {
      throw new ActivationError(
        NodeReason.HostUnhealthy,
        `The host is not healthy ${when}: ${verdict.message}.`,
      );
    }
  }

  async #reloadPlugin(client: HostClient, host: HostSpec, reason: NodeReason): Promise<void> {
    const path = reloadPath(host, this.plugin);
    const verdict = judgeCall(`The host's plugin reload (POST ${path})`, await client.call('POST', path));
    if (verdict.kind !== 'accepted') throw new ActivationError(reason, `${verdict.message}.`);
  }

  /**
   * Undoes the swap `intent` describes: the plugin directory back to its snapshot (and reloaded), the
   * previous config activated again, the links and the journal back on `from`. Idempotent; throws
   * ActivationError when the host refuses or cannot be reached (the journal keeps the intent then).
   */
  async #restore(
    intent: HostIntent,
    client: HostClient,
    logger: Logger,
    changed: Changed = EVERYTHING,
  ): Promise<string[]> {
    const done: string[] = [];
    const to = await readHostRecord(this.#opts.root, this.plugin, intent.to).catch(() => undefined);
    if (intent.plugin && changed.plugin) {
      await restorePlugin(intent.plugin.dir, this.plugin, intent.plugin.snapshot);
      done.push(
        intent.plugin.snapshot
          ? `Put the plugin directory ${intent.plugin.dir}/${this.plugin} back from its snapshot ${intent.plugin.snapshot}.`
          : `Removed ${intent.plugin.dir}/${this.plugin}, which ${intent.to} had installed.`,
      );
      if (intent.plugin.snapshot && to) {
        await this.#reloadPlugin(client, to.host, NodeReason.RollbackFailed);
        done.push('The host reloaded the restored plugin.');
      }
    }
    const from = intent.from ? await readHostRecord(this.#opts.root, this.plugin, intent.from) : undefined;
    if (intent.from && !from) {
      throw new ActivationError(
        NodeReason.RestoreTargetMissing,
        `The previous host release ${intent.from} is no longer kept on this node.`,
      );
    }
    if (from?.config && changed.config) {
      const answer = await client.call('POST', from.host.activate.path, await this.#configBody(from.config));
      const verdict = judgeCall(`Activating the previous config of ${from.revision}`, answer);
      if (verdict.kind !== 'accepted')
        throw new ActivationError(NodeReason.RollbackFailed, `${verdict.message}.`);
      done.push(`The host activated the previous config of revision ${from.revision} again.`);
    }
    const dir = hostPluginDir(this.#opts.root, this.plugin);
    await setLink(dir, 'current', intent.from ? linkTarget(intent.from) : undefined);
    await setLink(dir, 'previous', intent.fromPrevious ? linkTarget(intent.fromPrevious) : undefined);
    this.#journal = await writeHostJournal(
      this.#opts.root,
      { ...this.#journal, active: intent.from, intent: null },
      this.#now(),
    );
    logger.warn({ restored: intent.from, actions: done }, 'host restored');
    return done;
  }

  /** Recovery: an intent left open means an agent stopped mid-swap; restore what ran before it. */
  async #recover(): Promise<string[]> {
    const intent = this.#journal.intent!;
    const record =
      (await readHostRecord(this.#opts.root, this.plugin, intent.to).catch(() => undefined)) ??
      (intent.from ? await readHostRecord(this.#opts.root, this.plugin, intent.from) : undefined);
    if (!record) {
      throw new ActivationError(
        NodeReason.RestoreTargetMissing,
        `Neither ${intent.to} nor the release before it is kept on this node, so the host cannot be reached.`,
      );
    }
    const client = await hostClient(record.host, record.node);
    const done = await this.#restore(
      intent,
      client,
      this.#opts.logger.child({ plugin: this.plugin, recovery: true }),
    );
    return [
      `An agent stopped while the host was being switched to ${intent.to}; restored ${intent.from ?? 'what ran before'}.`,
      ...done,
    ];
  }

  /** Removes host releases other than current, previous and the newest `keep` others. */
  async #sweep(keep: number): Promise<string[]> {
    const dir = hostPluginDir(this.#opts.root, this.plugin);
    const pinned = new Set([await readLinkRevision(dir, 'current'), await readLinkRevision(dir, 'previous')]);
    const others: { name: string; stagedAt: string }[] = [];
    for (const name of await readdir(hostReleasesDir(this.#opts.root, this.plugin))) {
      if (name.startsWith('.') || pinned.has(name)) continue;
      const record = await readHostRecord(this.#opts.root, this.plugin, name).catch(() => undefined);
      others.push({ name, stagedAt: record?.stagedAt ?? '' });
    }
    others.sort((x, y) => y.stagedAt.localeCompare(x.stagedAt));
    const removed = others.slice(keep).map((o) => o.name);
    for (const name of removed)
      await rm(join(hostReleasesDir(this.#opts.root, this.plugin), name), { recursive: true, force: true });
    return removed;
  }

  async #status(a: Attempt): Promise<PluginActivationStatus> {
    const now = this.#now();
    const { phase, reason, message } = outcomeOf(
      a,
      {
        active: `Revision ${a.revision} is active in the host.`,
        probed: `Revision ${a.revision} staged, and the host's try-activate accepted it; dry run, the host was not changed.`,
      },
      now,
    );
    const previousRevision = await readLinkRevision(hostPluginDir(this.#opts.root, this.plugin), 'previous');
    return {
      phase,
      reason,
      message,
      revision: a.spec.revision,
      ...(this.#journal.active ? { activeRevision: this.#journal.active } : {}),
      ...(previousRevision ? { previousRevision } : {}),
      ...(a.hostAnswer !== undefined ? { hostAnswer: a.hostAnswer } : {}),
      ...(a.lastProbe ? { lastProbe: a.lastProbe } : {}),
      attempts: a.attempts,
      ...(a.spec.retryAt ? { retryAt: a.spec.retryAt } : {}),
      lastTransitionTime: now.toISOString(),
      conditions: a.conditions,
    };
  }

  /** Waits for the activation in progress; nothing else runs (the host keeps running on its own). */
  async close(): Promise<void> {
    await this.#attempts.idle();
  }
}

/** The plugins that have Host runtime state under `root`. */
export async function hostPlugins(root: string): Promise<string[]> {
  return (await readdir(hostsRoot(root)).catch(() => [])).filter((n) => !n.startsWith('.'));
}
