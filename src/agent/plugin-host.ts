// One plugin on one node: owns its stable front and its serving process, and runs one activation at a
// time by driving the pure state machine (engine/transition.ts), performing each effect it asks for.
import type { Logger } from 'pino';
import {
  type Condition,
  type HandshakeResult,
  NodeReason,
  type PluginActivationSpec,
  type PluginActivationStatus,
  type ProbeResult,
} from '../api/index.ts';
import { setCondition } from '../runtime/conditions.ts';
import { crashPoint } from './actions/crash-point.ts';
import { launch, probe, STOP_GRACE_MS, verify } from './actions/probe.ts';
import { restore } from './actions/rollback.ts';
import { stage } from './actions/stage.ts';
import { recordIntent, retire, type Serving, swap, unload } from './actions/swap.ts';
import { sweep } from './actions/sweep.ts';
import { type Effect, type Observation, type State, transition } from './engine/transition.ts';
import { ActivationError } from './errors.ts';
import { Front } from './front/index.ts';
import { type Journal, writeJournal } from './journal.ts';
import { recoverPlugin } from './recovery.ts';
import type { PluginProcess } from './runtime/index.ts';
import { defaultFrontAddress, newRunDir, pluginDir, type ReleaseRecord, readLinkRevision } from './store.ts';

export interface HostOptions {
  root: string;
  stagingRoot: string;
  plugin: string;
  logger: Logger;
  now?: () => Date;
  delay?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

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

/** What one activation has learned so far, for its status. */
interface Progress {
  spec: PluginActivationSpec;
  revision: string;
  attempts: number;
  handshake?: HandshakeResult;
  capabilities?: string[];
  lastProbe?: ProbeResult;
  conditions: Condition[];
}

const PROGRESS_REASON: Record<string, string> = {
  Pending: NodeReason.Pending,
  Staged: NodeReason.Staged,
  Probing: NodeReason.Probing,
  Restoring: NodeReason.Probing,
  Active: NodeReason.Activated,
  Probed: NodeReason.ProbeSucceeded,
};

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
  #front: Front | undefined;
  #serving: Serving | undefined;
  #journal: Journal | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #attempts = new Map<string, number>();
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
    const recovered = await recoverPlugin(opts.root, opts.plugin, opts.logger, host.#now);
    if (recovered) {
      host.#front = recovered.front;
      host.#serving = recovered.serving;
      host.#journal = recovered.journal;
      host.recoveryActions = recovered.actions;
      for (const a of recovered.actions) opts.logger.warn({ plugin: opts.plugin }, a);
    }
    return host;
  }

  get activeRevision(): string | undefined {
    return this.#serving?.revision;
  }

  get frontAddress(): string | undefined {
    return this.#front?.address;
  }

  /**
   * Runs one activation of `spec` to a terminal phase and returns its final status. Activations of the
   * same plugin run one after another. Never throws for plugin failures (they end in RolledBack or
   * Failed); throws only when aborted.
   */
  activate(spec: PluginActivationSpec, options: ActivateOptions = {}): Promise<PluginActivationStatus> {
    const run = this.#queue.then(() => this.#activate(spec, options));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #activate(spec: PluginActivationSpec, options: ActivateOptions): Promise<PluginActivationStatus> {
    const revision = spec.rollbackTo?.revision ?? spec.revision;
    const logger = this.#opts.logger.child({ plugin: spec.plugin, revision });
    const attempts = (this.#attempts.get(revision) ?? 0) + 1;
    this.#attempts.set(revision, attempts);
    const progress: Progress = { spec, revision, attempts, conditions: [] };
    await this.#ensureFront(spec);

    let state: State = { phase: 'Pending', revision };
    let observation: Observation = { type: 'Start' };
    let candidate: { record?: ReleaseRecord; process?: PluginProcess } = {};
    let drain: ((timeoutMs: number) => Promise<void>) | undefined;
    let retiring: Serving | undefined;
    const report = async () => options.onStatus?.(await this.#status(state, progress));

    for (;;) {
      const policy = {
        strategy: spec.activation.strategy,
        dryRun: spec.dryRun,
        verifySeconds: spec.activation.verifySeconds,
        hasActive: this.#serving !== undefined,
      };
      const step = transition(state, observation, policy);
      const changed = step.next.phase !== state.phase;
      state = step.next;
      if (changed) await report();
      if (!step.effect) break;
      const startedAt = performance.now();
      observation = await this.#perform(step.effect, {
        spec,
        revision,
        logger,
        progress,
        candidate,
        options,
        setCandidate: (c) => {
          candidate = c;
        },
        setDrain: (d, old) => {
          drain = d;
          retiring = old;
        },
        drain: () => ({ drain, retiring }),
      });
      options.onEffect?.({
        effect: step.effect,
        startedAt,
        endedAt: performance.now(),
        observation: observation.type,
      });
    }
    return this.#status(state, progress);
  }

  async #perform(effect: Effect, ctx: EffectContext): Promise<Observation> {
    const { spec, logger, options } = ctx;
    const probeCtx = {
      logger,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(this.#opts.delay ? { delay: this.#opts.delay } : {}),
      onProbe: (r: ProbeResult) => {
        ctx.progress.lastProbe = r;
      },
    };
    try {
      switch (effect) {
        case 'Stage': {
          const record = await stage({
            root: this.#opts.root,
            stagingRoot: this.#opts.stagingRoot,
            spec,
            now: this.#now(),
          });
          crashPoint('stage:complete');
          ctx.setCandidate({ record });
          return { type: 'Staged' };
        }
        case 'StopActive': {
          this.#journal = await recordIntent(
            this.#opts.root,
            this.#requireJournal(),
            'recreate',
            ctx.revision,
            this.#now(),
          );
          await unload(this.#front!, this.#serving?.process);
          return { type: 'ActiveStopped' };
        }
        case 'Launch': {
          const record = ctx.candidate.record!;
          const runDir = await newRunDir(this.#opts.root, spec.plugin, ctx.revision);
          const launched = await launch(record, spec, runDir, probeCtx);
          ctx.setCandidate({ record, process: launched.process });
          ctx.progress.handshake = {
            ...launched.process.handshake,
            ...(launched.capabilities ? { capabilities: launched.capabilities } : {}),
          };
          crashPoint('launch:done');
          return { type: 'Launched' };
        }
        case 'Probe':
          await probe(ctx.candidate.process!, spec, probeCtx);
          crashPoint('probe:done');
          return { type: 'Healthy' };
        case 'Swap': {
          const candidate: Serving = { revision: ctx.revision, process: ctx.candidate.process! };
          if (!this.#journal?.intent) {
            this.#journal = await recordIntent(
              this.#opts.root,
              this.#requireJournal(),
              'swap',
              ctx.revision,
              this.#now(),
            );
          }
          crashPoint('swap:intent');
          const old = this.#serving;
          const switched = await swap(this.#opts.root, spec.plugin, this.#front!, candidate);
          this.#serving = candidate;
          ctx.setDrain(switched.drained, old);
          return { type: 'Swapped' };
        }
        case 'Verify':
          await verify(ctx.candidate.process!, spec, probeCtx);
          crashPoint('verify:done');
          return { type: 'Verified' };
        case 'Retire': {
          const { drain, retiring } = ctx.drain();
          const drained = drain?.(spec.activation.drainSeconds * 1000);
          this.#journal = await retire(
            this.#opts.root,
            this.#requireJournal(),
            retiring?.process,
            drained,
            this.#serving!,
            this.#now,
          );
          crashPoint('retire:settled');
          const removed = await sweep(this.#opts.root, this.#journal, spec.retention.keepSnapshots).catch(
            (e) => {
              logger.warn({ err: e }, 'sweep failed');
              return [];
            },
          );
          if (removed.length) logger.info({ removed }, 'swept old releases');
          return { type: 'Retired' };
        }
        case 'StopCandidate':
          await ctx.candidate.process?.stop(STOP_GRACE_MS);
          return { type: 'CandidateStopped' };
        case 'Restore': {
          const { retiring } = ctx.drain();
          const restored = await restore({
            root: this.#opts.root,
            journal: this.#requireJournal(),
            front: this.#front!,
            candidate: ctx.candidate.process,
            previous: retiring ?? (this.#serving?.revision !== ctx.revision ? this.#serving : undefined),
            logger,
            now: this.#now,
            drainMs: spec.activation.drainSeconds * 1000,
          });
          this.#serving = restored.serving;
          this.#journal = restored.journal;
          return { type: 'Restored' };
        }
      }
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (error instanceof ActivationError)
        return { type: 'Failed', reason: error.reason, message: error.message };
      logger.error({ err: error }, `${effect} failed unexpectedly`);
      return {
        type: 'Failed',
        reason: UNEXPECTED_FAILURE_REASON[effect],
        message: `${effect} failed: ${(error as Error).message}.`,
      };
    }
  }

  #requireJournal(): Journal {
    if (!this.#journal) throw new Error('the front must be opened before the journal is used');
    return this.#journal;
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
    const front = await Front.listen(address, this.#opts.logger);
    if (this.#serving)
      front.switchTo({
        network: this.#serving.process.handshake.network,
        address: this.#serving.process.handshake.address,
      });
    await this.#front?.close();
    this.#front = front;
    this.#journal = await writeJournal(
      this.#opts.root,
      {
        plugin: spec.plugin,
        front: address,
        active: this.#journal?.active ?? null,
        intent: this.#journal?.intent ?? null,
      },
      this.#now(),
    );
  }

  async #status(state: State, progress: Progress): Promise<PluginActivationStatus> {
    const phase = state.phase === 'Restoring' ? 'Probing' : state.phase;
    const failure = state.phase === 'RolledBack' || state.phase === 'Failed' ? state.failure : undefined;
    const verifying = state.phase === 'Probing' && state.step !== 'candidate';
    const restoredSnapshot = phase === 'Active' && progress.spec.rollbackTo !== undefined;
    const reason =
      failure?.reason ??
      (verifying
        ? NodeReason.Verifying
        : restoredSnapshot
          ? NodeReason.RolledBackToSnapshot
          : PROGRESS_REASON[state.phase]!);
    const message = failure
      ? failure.message
      : restoredSnapshot
        ? `Rolled back to the kept snapshot of revision ${progress.revision}, which is active and serving.`
        : phase === 'Active'
          ? `Revision ${progress.revision} is active and serving.`
          : phase === 'Probed'
            ? `Revision ${progress.revision} staged and probed healthy; dry run, nothing swapped.`
            : `Revision ${progress.revision}: ${reason}.`;
    const now = this.#now();
    const ready = phase === 'Active' || phase === 'Probed';
    progress.conditions = setCondition(
      progress.conditions,
      { type: 'Ready', status: ready ? 'True' : 'False', reason, message },
      0,
      now,
    );
    if (failure) {
      progress.conditions = setCondition(
        progress.conditions,
        { type: 'RolledBack', status: 'True', reason: failure.reason, message: failure.message },
        0,
        now,
      );
    }
    const previousRevision = await readLinkRevision(pluginDir(this.#opts.root, this.plugin), 'previous');
    return {
      phase,
      reason,
      message,
      revision: progress.spec.revision,
      ...(this.#serving ? { activeRevision: this.#serving.revision } : {}),
      ...(previousRevision ? { previousRevision } : {}),
      ...(progress.handshake ? { handshake: progress.handshake } : {}),
      ...(progress.lastProbe ? { lastProbe: progress.lastProbe } : {}),
      attempts: progress.attempts,
      ...(progress.spec.retryAt ? { retryAt: progress.spec.retryAt } : {}),
      lastTransitionTime: now.toISOString(),
      conditions: progress.conditions,
    };
  }

  /** Closes the front. Plugin processes keep running unless `stopPlugins` (they outlive the agent). */
  async close(stopPlugins = false): Promise<void> {
    await this.#queue.catch(() => {});
    await this.#front?.close();
    if (stopPlugins) await this.#serving?.process.stop(STOP_GRACE_MS);
  }
}

interface EffectContext {
  spec: PluginActivationSpec;
  revision: string;
  logger: Logger;
  progress: Progress;
  candidate: { record?: ReleaseRecord; process?: PluginProcess };
  options: ActivateOptions;
  setCandidate(c: { record?: ReleaseRecord; process?: PluginProcess }): void;
  setDrain(d: ((timeoutMs: number) => Promise<void>) | undefined, old: Serving | undefined): void;
  drain(): { drain: ((timeoutMs: number) => Promise<void>) | undefined; retiring: Serving | undefined };
}
