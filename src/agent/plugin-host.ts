// One plugin on one node: owns its stable front and its serving process. Runs one activation at a time
// by driving the pure state machine (engine/transition.ts) — one small handler per effect, the attempt's
// data in one Attempt value — and supervises the active process between activations: when it exits on
// its own, the same revision is started again with exponential backoff, as the kubelet restarts a
// container, while the front holds new connections for the new process.
import type { Logger } from 'pino';
import {
  type HandshakeResult,
  NodeReason,
  type PluginActivationSpec,
  type PluginActivationStatus,
  type ProbeResult,
} from '../api/index.ts';
import { crashPoint } from './actions/crash-point.ts';
import { launch, relaunch, type TakenAddress } from './actions/launch.ts';
import { type ProbeContext, probe } from './actions/probe.ts';
import { restore } from './actions/restore.ts';
import { stage } from './actions/stage.ts';
import { backendOf, recordIntent, retire, type Serving, swap, unload } from './actions/swap.ts';
import { sweep } from './actions/sweep.ts';
import { verify, verifyWindowMs } from './actions/verify.ts';
import { type AttemptBase, Attempts, driveAttempt, outcomeOf, performEffect } from './attempt.ts';
import type { Effect, Observation } from './engine/transition.ts';
import type { FrontHandle, FrontSwitch, Fronts } from './front/fronts.ts';
import { frontEndpoint } from './front/index.ts';
import { type Journal, settleJournal, writeJournal } from './journal.ts';
import { openFront, recoverPlugin } from './recovery.ts';
import { isSameProcess, type PluginProcess, STOP_GRACE_MS, withStderr } from './runtime/index.ts';
import {
  defaultFrontAddress,
  newRunDir,
  pluginDir,
  type ReleaseRecord,
  readLinkRevision,
  readReleaseRecord,
} from './store.ts';

export interface HostOptions {
  root: string;
  stagingRoot: string;
  plugin: string;
  logger: Logger;
  fronts: Fronts;
  now?: () => Date;
  delay?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Called whenever the supervised active process went down or came back (see `health`). */
  onHealth?: (plugin: string, health: SupervisedHealth, event: SupervisionEvent) => void;
}

/** What supervision just saw: the active process exited, a restart of it failed, or one serves again. */
export type SupervisionEvent = 'Crashed' | 'RestartFailed' | 'Restarted';

export interface ActivateOptions {
  signal?: AbortSignal;
  /** Called with the status after every phase change (and probe result). */
  onStatus?: (status: PluginActivationStatus) => void;
  /** Called after each effect the host performed, with when it ran (for benchmarks and tracing). */
  onEffect?: (timing: EffectTiming) => void;
}

/** One performed effect: performance.now() when the host began it and when it had its observation. */
export interface EffectTiming {
  effect: Effect;
  startedAt: number;
  endedAt: number;
  observation: Observation['type'];
}

/** What supervision knows of the active process (restart counts are per revision). */
export interface SupervisedHealth {
  revision: string | undefined;
  /** Times the active revision was started again after it exited on its own. */
  restarts: number;
  /** True from the active process's exit until a restarted one serves. */
  down: boolean;
  /** How it last exited, when, and its last stderr lines. */
  lastExit?: string;
  /** While down: the last restart error, or when the next restart is due. */
  message?: string;
}

/** kubelet-like restart backoff: 1 s, doubling to 30 s; a process that ran a minute resets it. */
export const RESTART_BACKOFF = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000 } as const;

/** One activation in progress: the state machine's state and everything the attempt has learned. */
interface Attempt extends AttemptBase {
  record?: ReleaseRecord;
  candidate?: PluginProcess;
  /** Set by Swap: the process that served before, and its connections' drain. */
  retiring?: { serving: Serving | undefined; drained: FrontSwitch['drained'] };
  handshake?: HandshakeResult;
  lastProbe?: ProbeResult;
  /** Why spec.process.resources could not be applied to the candidate, when they could not. */
  unappliedLimits?: string;
}

/** The reason an unexpected error (an I/O failure, not a misbehaving plugin) in each effect reports. */
const UNEXPECTED_FAILURE_REASON: Record<Effect, NodeReason> = {
  Stage: NodeReason.StageFailed,
  StopActive: NodeReason.SwapFailed,
  Launch: NodeReason.SpawnFailed,
  Probe: NodeReason.ProbeFailed,
  Swap: NodeReason.SwapFailed,
  Verify: NodeReason.VerifyFailed,
  Retire: NodeReason.SwapFailed,
  StopCandidate: NodeReason.SpawnFailed,
  Restore: NodeReason.RollbackFailed,
};

export class PluginHost {
  readonly plugin: string;
  readonly #opts: HostOptions;
  readonly #now: () => Date;
  #front: FrontHandle | undefined;
  #serving: Serving | undefined;
  #servingSince = 0;
  #journal: Journal | undefined;
  readonly #attempts = new Attempts();
  /** The last spec activated here: supervision probes a restarted process with its health settings. */
  #lastSpec: PluginActivationSpec | undefined;
  #health: SupervisedHealth = { revision: undefined, restarts: 0, down: false };
  #crashes = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** What recovery did when this host opened, reported once on the next activation. */
  recoveryActions: string[] = [];

  private constructor(opts: HostOptions) {
    this.plugin = opts.plugin;
    this.#opts = opts;
    this.#now = opts.now ?? (() => new Date());
  }

  /** Opens the host, recovering whatever an earlier agent left on disk and running. */
  static async open(opts: HostOptions): Promise<PluginHost> {
    const host = new PluginHost(opts);
    const recovered = await recoverPlugin(opts.root, opts.plugin, opts.logger, host.#now, opts.fronts);
    if (recovered) {
      host.#front = recovered.front;
      host.#journal = recovered.journal;
      host.#setServing(recovered.serving);
      host.recoveryActions = recovered.actions;
      for (const a of recovered.actions) opts.logger.warn({ plugin: opts.plugin }, a);
    }
    return host;
  }

  get activeRevision(): string | undefined {
    return this.#serving?.revision;
  }

  /** What supervision knows of the active process now. */
  get health(): SupervisedHealth {
    return { ...this.#health };
  }

  /**
   * Runs one activation of `spec` to a terminal phase and returns its final status. Activations of the
   * same plugin run one after another (and after any restart supervision queued). Never throws for
   * plugin failures (they end in RolledBack or Failed); throws only when aborted.
   */
  activate(spec: PluginActivationSpec, options: ActivateOptions = {}): Promise<PluginActivationStatus> {
    return this.#attempts.enqueue(() => this.#activate(spec, options));
  }

  async #activate(spec: PluginActivationSpec, options: ActivateOptions): Promise<PluginActivationStatus> {
    const attempt: Attempt = this.#attempts.begin(spec, options, this.#opts.logger);
    await this.#ensureFront(spec);
    await driveAttempt(
      attempt,
      () => ({
        strategy: spec.activation.strategy,
        dryRun: spec.dryRun,
        verifySeconds: spec.activation.verifySeconds,
        hasActive: this.#serving !== undefined,
      }),
      (effect, a) => performEffect(this.#handlers, UNEXPECTED_FAILURE_REASON, effect, a),
      (a) => this.#status(a),
      (a) => this.#cancel(a),
    );
    if (!spec.dryRun) this.#lastSpec = spec;
    return this.#status(attempt);
  }

  readonly #handlers: Record<Effect, (a: Attempt) => Promise<Observation>> = {
    Stage: async (a) => {
      a.record = await stage({
        root: this.#opts.root,
        stagingRoot: this.#opts.stagingRoot,
        spec: a.spec,
        now: this.#now(),
      });
      crashPoint('stage:complete');
      return { type: 'Staged' };
    },
    StopActive: async (a) => {
      this.#journal = await recordIntent(
        this.#opts.root,
        this.#requireJournal(),
        'recreate',
        a.revision,
        this.#now(),
      );
      await unload(this.#requireFront(), this.#serving?.process);
      return { type: 'ActiveStopped' };
    },
    Launch: async (a) => {
      const runDir = await newRunDir(this.#opts.root, a.spec.plugin, a.revision);
      const launched = await launch(a.record!, a.spec, runDir, {
        ...this.#probeContext(a),
        taken: await this.#takenAddresses(a.state.phase === 'Staged' && a.state.unloaded),
      });
      a.candidate = launched.process;
      if (launched.process.unappliedLimits) a.unappliedLimits = launched.process.unappliedLimits;
      a.handshake = {
        ...launched.process.handshake,
        ...(launched.capabilities ? { capabilities: launched.capabilities } : {}),
      };
      crashPoint('launch:done');
      return { type: 'Launched' };
    },
    Probe: async (a) => {
      await probe(a.candidate!, a.spec.health, this.#probeContext(a));
      crashPoint('probe:done');
      return { type: 'Healthy' };
    },
    Swap: async (a) => {
      const candidate: Serving = { revision: a.revision, process: a.candidate! };
      if (!this.#journal?.intent) {
        this.#journal = await recordIntent(
          this.#opts.root,
          this.#requireJournal(),
          'swap',
          a.revision,
          this.#now(),
        );
      }
      crashPoint('swap:intent');
      const old = this.#serving;
      const switched = await swap(this.#opts.root, a.spec.plugin, this.#requireFront(), candidate);
      this.#setServing(candidate);
      a.retiring = { serving: old, drained: switched.drained };
      return { type: 'Swapped' };
    },
    Verify: async (a) => {
      const windowMs = verifyWindowMs(a.spec);
      if (windowMs > a.spec.activation.verifySeconds * 1000) {
        a.logger.info(
          { windowMs },
          'verification window extended so that every probe can reach its failure threshold',
        );
      }
      await verify(a.candidate!, this.#requireFront(), a.spec, this.#probeContext(a));
      crashPoint('verify:done');
      return { type: 'Verified' };
    },
    Retire: async (a) => {
      const drained = a.retiring?.drained(a.spec.activation.drainSeconds * 1000);
      this.#journal = await retire(
        this.#opts.root,
        this.#requireJournal(),
        a.retiring?.serving?.process,
        drained,
        this.#serving!,
        this.#now,
      );
      crashPoint('retire:settled');
      this.#health = { revision: a.revision, restarts: 0, down: false };
      this.#crashes = 0;
      const removed = await sweep(this.#opts.root, this.#journal, a.spec.retention.keepSnapshots).catch(
        (e) => {
          a.logger.warn({ err: e }, 'sweep failed');
          return [];
        },
      );
      if (removed.length) a.logger.info({ removed }, 'swept old releases');
      return { type: 'Retired' };
    },
    StopCandidate: async (a) => {
      await a.candidate?.stop(STOP_GRACE_MS);
      if (this.#serving?.process === a.candidate) this.#setServing(undefined);
      return { type: 'CandidateStopped' };
    },
    Restore: async (a) => {
      const previous =
        a.retiring?.serving ?? (this.#serving?.revision !== a.revision ? this.#serving : undefined);
      const restored = await restore({
        root: this.#opts.root,
        journal: this.#requireJournal(),
        front: this.#requireFront(),
        candidate: a.candidate,
        previous,
        logger: a.logger,
        now: this.#now,
        drainMs: a.spec.activation.drainSeconds * 1000,
      });
      this.#setServing(restored.serving);
      this.#journal = restored.journal;
      return { type: 'Restored' };
    },
  };

  /**
   * Leaves the node as the cancelled attempt found it: before any irreversible step the candidate just
   * stops; after one (the journal holds its intent: a swap, or Recreate's unload) what served before is
   * restored, as a failed verification would be.
   */
  async #cancel(a: Attempt): Promise<void> {
    try {
      if (this.#journal?.intent) await this.#handlers.Restore(a);
      else await a.candidate?.stop(STOP_GRACE_MS);
      a.logger.info({ phase: a.state.phase }, 'attempt cancelled');
    } catch (error) {
      a.logger.warn({ err: error }, 'could not undo the cancelled attempt; recovery repairs it on restart');
    }
  }

  #probeContext(a: Attempt): ProbeContext {
    return {
      logger: a.logger,
      ...(a.options.signal ? { signal: a.options.signal } : {}),
      ...(this.#opts.delay ? { delay: this.#opts.delay } : {}),
      onProbe: (r) => {
        a.lastProbe = r;
      },
    };
  }

  /**
   * Addresses a new process may not announce: this front, every other front on the node and its
   * backend, and the active backend unless it is gone (Recreate unloaded it, or supervision restarts it).
   */
  async #takenAddresses(activeGone: boolean): Promise<TakenAddress[]> {
    const taken: TakenAddress[] = [];
    for (const f of await this.#opts.fronts.list()) {
      const mine = f.address === this.#front?.address;
      taken.push({
        backend: frontEndpoint(f.address),
        owner: mine ? "this plugin's own front" : `the front ${f.address}`,
      });
      if (f.backend && !mine)
        taken.push({ backend: f.backend, owner: `the backend of the front ${f.address}` });
    }
    if (this.#serving && !activeGone) {
      taken.push({
        backend: backendOf(this.#serving.process),
        owner: `the address of the active ${this.#serving.revision} process (pid ${this.#serving.process.pid})`,
      });
    }
    return taken;
  }

  /** Makes `serving` the active process and watches it: an exit nobody asked for queues supervision. */
  #setServing(serving: Serving | undefined): void {
    this.#serving = serving;
    this.#servingSince = Date.now();
    if (!serving) return;
    void serving.process.exited.then((exit) => {
      if (this.#closed || this.#serving !== serving) return;
      void this.#attempts.enqueue(() => this.#onActiveExit(serving, exit));
    });
  }

  /** The active process exited on its own: report it, and restart the same revision after the backoff. */
  async #onActiveExit(died: Serving, exit: { code: number | null; signal: string | null }): Promise<void> {
    if (this.#closed || this.#serving !== died || isSameProcess(died.process.pid, died.process.startTime))
      return;
    if (Date.now() - this.#servingSince > RESTART_BACKOFF.resetAfterMs) this.#crashes = 0;
    const how = exit.signal
      ? `was killed by ${exit.signal}`
      : exit.code === null
        ? 'exited'
        : `exited with code ${exit.code}`;
    this.#health = {
      revision: died.revision,
      restarts: this.#health.revision === died.revision ? this.#health.restarts : 0,
      down: true,
      lastExit: withStderr(
        `The active ${died.revision} process (pid ${died.process.pid}) ${how} at ${this.#now().toISOString()}.`,
        died.process.stderrTail(5),
      ),
    };
    this.#opts.logger.warn(
      { plugin: this.plugin, revision: died.revision, pid: died.process.pid, exit },
      'active plugin exited; restarting it',
    );
    this.#scheduleRestart(died, 'Crashed');
  }

  #scheduleRestart(died: Serving, event: 'Crashed' | 'RestartFailed'): void {
    this.#crashes++;
    const backoffMs = Math.min(RESTART_BACKOFF.initialMs * 2 ** (this.#crashes - 1), RESTART_BACKOFF.maxMs);
    this.#health = {
      ...this.#health,
      message: `${this.#health.message ? `${this.#health.message} ` : ''}Restarting it in ${backoffMs / 1000}s.`,
    };
    this.#opts.onHealth?.(this.plugin, this.health, event);
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => void this.#attempts.enqueue(() => this.#restart(died)), backoffMs);
    this.#restartTimer.unref();
  }

  /** A try-activate of the revision that died: launch, probe, switch the front to it, settle the journal. */
  async #restart(died: Serving): Promise<void> {
    if (this.#closed || this.#serving !== died) return; // an activation replaced it meanwhile
    const logger = this.#opts.logger.child({
      plugin: this.plugin,
      revision: died.revision,
      restart: this.#health.restarts + 1,
    });
    let process: PluginProcess | undefined;
    try {
      process = await relaunch(this.#opts.root, this.plugin, died.revision, {
        logger,
        taken: await this.#takenAddresses(true),
      });
      // Probed as its activation was: by the last spec, or (after an agent restart) by its record.
      const spec = this.#lastSpec;
      const health =
        spec && (spec.rollbackTo?.revision ?? spec.revision) === died.revision
          ? spec.health
          : (await readReleaseRecord(this.#opts.root, this.plugin, died.revision))?.health;
      if (health) {
        await probe(process, health, { logger, ...(this.#opts.delay ? { delay: this.#opts.delay } : {}) });
      }
      const restarted: Serving = { revision: died.revision, process };
      await this.#requireFront().switchTo(backendOf(process));
      this.#setServing(restarted);
      this.#journal = await settleJournal(this.#opts.root, this.#requireJournal(), restarted, this.#now());
      this.#health = {
        revision: died.revision,
        restarts: this.#health.restarts + 1,
        down: false,
        ...(this.#health.lastExit ? { lastExit: this.#health.lastExit } : {}),
      };
      logger.info({ pid: process.pid }, 'active plugin restarted');
      this.#opts.onHealth?.(this.plugin, this.health, 'Restarted');
    } catch (error) {
      await process?.stop(STOP_GRACE_MS);
      this.#health = { ...this.#health, message: `The restart failed: ${(error as Error).message}` };
      logger.warn({ err: error }, 'restart of the active plugin failed');
      this.#scheduleRestart(died, 'RestartFailed');
    }
  }

  #requireJournal(): Journal {
    if (!this.#journal) throw new Error('the front must be opened before the journal is used');
    return this.#journal;
  }

  #requireFront(): FrontHandle {
    if (!this.#front) throw new Error('the front must be opened before it is switched');
    return this.#front;
  }

  /** Opens the front (and the journal) for the spec's serve address on first use. */
  async #ensureFront(spec: PluginActivationSpec): Promise<void> {
    const address = spec.serve.address ?? defaultFrontAddress(this.#opts.root, spec.plugin);
    if (
      this.#front?.address === address ||
      (this.#front && address.startsWith('tcp://') && address.endsWith(':0'))
    )
      return;
    const { mkdir } = await import('node:fs/promises');
    await mkdir(pluginDir(this.#opts.root, spec.plugin), { recursive: true });
    const front = await openFront(this.#opts.fronts, address);
    if (this.#serving) await front.switchTo(backendOf(this.#serving.process));
    await this.#front?.close();
    this.#front = front;
    this.#journal = await writeJournal(
      this.#opts.root,
      {
        ...(this.#journal ?? {}),
        plugin: spec.plugin,
        front: address,
        active: this.#journal?.active ?? null,
        intent: this.#journal?.intent ?? null,
      },
      this.#now(),
    );
  }

  async #status(a: Attempt): Promise<PluginActivationStatus> {
    const now = this.#now();
    const { phase, reason, message } = outcomeOf(
      a,
      {
        active: `Revision ${a.revision} is active and serving.${a.unappliedLimits ? ` ${a.unappliedLimits}` : ''}`,
        probed: `Revision ${a.revision} staged and probed healthy; dry run, nothing swapped.`,
      },
      now,
    );
    const previousRevision = await readLinkRevision(pluginDir(this.#opts.root, this.plugin), 'previous');
    return {
      phase,
      reason,
      message,
      revision: a.spec.revision,
      ...(this.#serving ? { activeRevision: this.#serving.revision } : {}),
      ...(previousRevision ? { previousRevision } : {}),
      ...(a.handshake ? { handshake: a.handshake } : {}),
      ...(a.lastProbe ? { lastProbe: a.lastProbe } : {}),
      attempts: a.attempts,
      ...(a.spec.retryAt ? { retryAt: a.spec.retryAt } : {}),
      lastTransitionTime: now.toISOString(),
      conditions: a.conditions,
    };
  }

  /**
   * Takes the plugin off this node: supervision stops, the front closes (a unix front's socket goes with
   * it) and the serving process stops. Waits for the activation in flight first (cancel it to hurry).
   * The caller removes the plugin's directory, so no later agent brings it back.
   */
  async uninstall(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    await this.#attempts.idle();
    await this.#front?.close();
    await this.#serving?.process.stop(STOP_GRACE_MS);
    this.#front = undefined;
    this.#serving = undefined;
  }

  /**
   * Stops supervising. With `stopPlugins` the front closes and the serving process stops; without, both
   * keep serving (the fronts' keeper holds the listener; a restarted agent adopts the process).
   */
  async close(stopPlugins = false): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    await this.#attempts.idle();
    if (stopPlugins) {
      await this.#front?.close();
      await this.#serving?.process.stop(STOP_GRACE_MS);
    }
  }
}
