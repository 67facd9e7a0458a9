// The agent's binding over a fake engine, cache and writer: which attempts it runs, which statuses it
// writes (and coalesces), and what it does for invalid, finished, recovered and deleted activations.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ActivationBinding, type ActivationEngine } from '../../../src/agent/binding.ts';
import type { ActivateOptions, SupervisedHealth } from '../../../src/agent/plugin-host.ts';
import {
  type PluginActivation,
  type PluginActivationSpec,
  type PluginActivationStatus,
  revisionOf,
} from '../../../src/api/index.ts';
import { desiredActivation } from '../../../src/controller/planner.ts';
import type { ReconcileResult } from '../../../src/runtime/reconcile.ts';
import { aRelease, parsedRelease } from '../../support/builders.ts';
import { outcome } from '../../support/outcome.ts';

const NOW = new Date('2026-12-01T12:00:00.000Z');
const NODE = 'node-1';
const logger = pino({ level: 'silent' });
const release = parsedRelease(aRelease());
const REVISION = revisionOf(release.spec);
const KEY = `default/echo-${NODE}`;

/** echo's activation on this node at `generation`, with the status its agent last wrote. */
function anActivation(status?: PluginActivationStatus, generation = 1): PluginActivation {
  const a = desiredActivation(release, REVISION, NODE, undefined, NOW);
  a.metadata.uid = 'uid-activation';
  a.metadata.generation = generation;
  return status ? { ...a, status } : a;
}

/** A status of this attempt, as the binding writes it for generation 1. */
const reported = (phase: PluginActivationStatus['phase'], extra: PluginActivationStatus = {}) => ({
  observedGeneration: 1,
  dryRun: false,
  revision: REVISION,
  phase,
  ...(phase === 'Active' ? { activeRevision: REVISION, reason: 'Activated' } : {}),
  ...extra,
});

const deleted = (a: PluginActivation): PluginActivation => ({
  ...a,
  metadata: { ...a.metadata, deletionTimestamp: NOW.toISOString() },
});

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Writes that can be held in flight, and fail on demand; each is recorded as `phase/reason@generation`. */
class FakeWriter {
  readonly writes: string[] = [];
  /** Makes the n-th write (1-based) fail. */
  failAt: number | undefined;
  #calls = 0;
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;

  hold(): void {
    this.#held = new Promise((resolve) => {
      this.#release = resolve;
    });
  }
  release(): void {
    this.#release?.();
    this.#held = undefined;
  }

  async writeStatus(_a: PluginActivation, status: PluginActivationStatus): Promise<void> {
    this.#calls++;
    const held = this.#held;
    if (held) await held;
    if (this.#calls === this.failAt) throw new Error('the API server is unavailable');
    this.writes.push(`${status.phase ?? '-'}/${status.reason ?? '-'}@${status.observedGeneration}`);
  }
}

/** What an attempt does on the fake engine: report progress through `emit`, then finish (or throw). */
type Attempt = (
  emit: (status: PluginActivationStatus) => void,
  writer: FakeWriter,
  signal: AbortSignal,
) => Promise<PluginActivationStatus>;

class FakeEngine implements ActivationEngine {
  readonly calls: string[] = [];
  serving: string | undefined;
  supervised: SupervisedHealth = { revision: undefined, restarts: 0, down: false };
  #attempt: Attempt;
  #writer: FakeWriter;

  constructor(attempt: Attempt, writer: FakeWriter, serving?: string) {
    this.#attempt = attempt;
    this.#writer = writer;
    this.serving = serving;
  }

  async activate(spec: PluginActivationSpec, options: ActivateOptions = {}): Promise<PluginActivationStatus> {
    this.calls.push(`activate ${spec.revision === REVISION ? 'echo' : spec.revision}`);
    const final = await this.#attempt((s) => options.onStatus?.(s), this.#writer, options.signal!);
    if (final.phase === 'Active') this.serving = REVISION;
    return final;
  }
  async activeRevision(): Promise<string | undefined> {
    return this.serving;
  }
  async health(): Promise<SupervisedHealth> {
    return this.supervised;
  }
  async uninstall(plugin: string): Promise<void> {
    this.calls.push(`uninstall ${plugin}`);
    this.serving = undefined;
  }
}

/** An attempt that reports nothing on its way and ends Active, now. */
const activates: Attempt = async () => ({
  phase: 'Active',
  reason: 'Activated',
  revision: REVISION,
  activeRevision: REVISION,
  lastTransitionTime: NOW.toISOString(),
});

interface World {
  /** The activations the cache shows, the first one being the one reconciled. */
  activations: PluginActivation[];
  attempt?: Attempt;
  /** The revision the node serves before the reconcile. */
  serving?: string;
  health?: SupervisedHealth;
  recovered?: Record<string, string[]>;
  failAt?: number;
}

interface Case {
  name: string;
  given: () => World;
  /** Changes the cache shows between two reconciles; one reconcile when omitted. */
  later?: (shown: PluginActivation[]) => PluginActivation[];
  want: { writes: string[]; engine: string[]; outcomes: Array<ReconcileResult | string> };
}

const failed =
  (message: string): Attempt =>
  async (emit) => {
    emit({ phase: 'Staged', reason: 'Staged', revision: REVISION });
    return { phase: 'RolledBack', reason: 'ProbeFailed', message, revision: REVISION };
  };

const cases: Case[] = [
  {
    name: 'runs a new attempt and writes its progress and its final status',
    given: () => ({ activations: [anActivation()], attempt: failed('grpc probe failed') }),
    want: {
      writes: ['Staged/Staged@1', 'RolledBack/ProbeFailed@1'],
      engine: ['activate echo'],
      outcomes: [{}],
    },
  },
  {
    name: "ignores another node's activation",
    given: () => {
      const other = anActivation();
      other.spec.nodeName = 'node-2';
      return { activations: [other] };
    },
    want: { writes: [], engine: [], outcomes: [{}] },
  },
  {
    name: 'reports an invalid spec as Failed/InvalidSpec, runs nothing, and gives up (TerminalError)',
    given: () => {
      const invalid = anActivation();
      invalid.spec.revision = '../escape';
      return { activations: [invalid] };
    },
    want: { writes: ['Failed/InvalidSpec@1'], engine: [], outcomes: ['terminal InvalidSpec'] },
  },
  {
    name: 'does not run a finished attempt again while the cache still shows its progress (read-your-own-writes)',
    given: () => ({ activations: [anActivation()], attempt: activates }),
    later: (shown) => [{ ...shown[0]!, status: reported('Probing') }],
    want: { writes: ['Active/Activated@1'], engine: ['activate echo'], outcomes: [{}, {}] },
  },
  {
    name: 'writes nothing for an attempt its status already reports done while the node still serves it',
    given: () => ({ activations: [anActivation(reported('Active'))], serving: REVISION }),
    want: { writes: [], engine: [], outcomes: [{}] },
  },
  {
    name: 'only acknowledges a new generation of a finished attempt (probe settings changed), without running it',
    given: () => ({ activations: [anActivation(reported('Active'), 2)], serving: REVISION }),
    want: { writes: ['Active/Activated@2'], engine: [], outcomes: [{}] },
  },
  {
    name: 'runs an attempt reported Active again when the node no longer serves its revision',
    given: () => ({
      activations: [anActivation(reported('Active'))],
      serving: 'r-older',
      attempt: activates,
    }),
    want: { writes: ['Active/Activated@1'], engine: ['activate echo'], outcomes: [{}] },
  },
  {
    name: 'stands by a rejection until a retry or a new revision: no attempt, no write',
    given: () => ({ activations: [anActivation(reported('RolledBack', { reason: 'ProbeFailed' }))] }),
    want: { writes: [], engine: [], outcomes: [{}] },
  },
  {
    name: 'says once what start-up recovery repaired, not again at the next generation',
    given: () => ({
      activations: [anActivation(reported('Active'))],
      serving: REVISION,
      recovered: { echo: ['Finished the swap to r1 that the previous agent left half done.'] },
    }),
    later: (shown) => [anActivation(reported('Active'), 2), ...shown.slice(1)],
    want: { writes: ['Active/Recovered@1', 'Active/Activated@2'], engine: [], outcomes: [{}, {}] },
  },
  {
    name: 'reports an Active plugin whose process is down as PluginDown',
    given: () => ({
      activations: [anActivation(reported('Active'))],
      serving: REVISION,
      health: { revision: REVISION, restarts: 1, down: true, lastExit: 'exit 1 at 11:59' },
    }),
    want: { writes: ['Active/PluginDown@1'], engine: [], outcomes: [{}] },
  },
  {
    name: 'writes only the newest progress waiting behind a write in flight (coalescing)',
    given: () => ({
      activations: [anActivation()],
      attempt: async (emit, writer) => {
        writer.hold();
        emit({ phase: 'Staged', reason: 'Staged', revision: REVISION });
        emit({ phase: 'Probing', reason: 'Probing', message: 'Launched.', revision: REVISION });
        emit({ phase: 'Probing', reason: 'Verifying', message: 'Swapped.', revision: REVISION });
        writer.release();
        await tick();
        return { phase: 'Active', reason: 'Activated', revision: REVISION, activeRevision: REVISION };
      },
    }),
    want: {
      writes: ['Staged/Staged@1', 'Probing/Verifying@1', 'Active/Activated@1'],
      engine: ['activate echo'],
      outcomes: [{}],
    },
  },
  {
    name: 'does not write a progress report again that differs only in its timestamps',
    given: () => ({
      activations: [anActivation()],
      attempt: async (emit) => {
        emit({
          phase: 'Probing',
          reason: 'Probing',
          revision: REVISION,
          lastTransitionTime: NOW.toISOString(),
        });
        await tick();
        emit({
          phase: 'Probing',
          reason: 'Probing',
          revision: REVISION,
          lastTransitionTime: '2026-12-01T12:00:05.000Z',
        });
        await tick();
        return { phase: 'Active', reason: 'Activated', revision: REVISION, activeRevision: REVISION };
      },
    }),
    want: { writes: ['Probing/Probing@1', 'Active/Activated@1'], engine: ['activate echo'], outcomes: [{}] },
  },
  {
    name: 'finishes the attempt when a progress write fails, and still writes the final status',
    given: () => ({ activations: [anActivation()], attempt: failed('grpc probe failed'), failAt: 1 }),
    want: { writes: ['RolledBack/ProbeFailed@1'], engine: ['activate echo'], outcomes: [{}] },
  },
  {
    name: 'throws when the final status cannot be written, so the key is retried',
    given: () => ({ activations: [anActivation()], attempt: activates, failAt: 1 }),
    want: { writes: [], engine: ['activate echo'], outcomes: ['the API server is unavailable'] },
  },
  {
    name: 'uninstalls the plugin of a deleted activation and says so (Uninstalled)',
    given: () => ({ activations: [deleted(anActivation(reported('Active')))], serving: REVISION }),
    want: { writes: ['Active/Uninstalled@1'], engine: ['uninstall echo'], outcomes: [{}] },
  },
  {
    name: 'leaves the plugin running when another live activation of this node holds it',
    given: () => {
      const successor = anActivation();
      successor.metadata.uid = 'uid-successor';
      return { activations: [deleted(anActivation(reported('Active'))), successor], serving: REVISION };
    },
    want: { writes: ['Active/Uninstalled@1'], engine: [], outcomes: [{}] },
  },
  {
    name: 'does not uninstall twice while the cache has not caught up with the Uninstalled status',
    given: () => ({ activations: [deleted(anActivation(reported('Active')))], serving: REVISION }),
    later: (shown) => shown,
    want: { writes: ['Active/Uninstalled@1'], engine: ['uninstall echo'], outcomes: [{}, {}] },
  },
];

describe('ActivationBinding.reconcile', () => {
  it.each(cases)('$name', async ({ given, later, want }) => {
    const world = given();
    const writer = new FakeWriter();
    writer.failAt = world.failAt;
    const engine = new FakeEngine(world.attempt ?? activates, writer, world.serving);
    if (world.health) engine.supervised = world.health;
    let shown = world.activations;
    const binding = new ActivationBinding({
      nodeName: NODE,
      engine,
      caches: { activation: (k) => (k === KEY ? shown[0] : undefined), activations: () => shown },
      writer,
      ...(world.recovered ? { recovered: world.recovered } : {}),
      now: () => NOW,
    });
    const run = async () => outcome(binding.reconcile(KEY, logger, new AbortController().signal));
    const outcomes = [await run()];
    if (later) {
      shown = later(shown);
      outcomes.push(await run());
    }
    expect({ writes: writer.writes, engine: engine.calls, outcomes }).toEqual(want);
  });
});

describe('ActivationBinding', () => {
  it("leaves the caller's recovery report as it was", async () => {
    const recovered = { echo: ['Finished the swap to r1.'] };
    const writer = new FakeWriter();
    const binding = new ActivationBinding({
      nodeName: NODE,
      engine: new FakeEngine(activates, writer, REVISION),
      caches: { activation: () => anActivation(reported('Active')), activations: () => [] },
      writer,
      recovered,
    });
    await binding.reconcile(KEY, logger, new AbortController().signal);
    expect({ writes: writer.writes, recovered }).toEqual({
      writes: ['Active/Recovered@1'],
      recovered: { echo: ['Finished the swap to r1.'] },
    });
  });

  const stopped: { name: string; stop: 'cancel' | 'shutdown'; want: ReconcileResult | string }[] = [
    {
      name: 'returns done when the attempt is cancelled (the change that cancelled it runs next)',
      stop: 'cancel',
      want: {},
    },
    {
      name: 'throws when the queue shuts down, rather than calling the attempt cancelled',
      stop: 'shutdown',
      want: 'work queue shut down',
    },
  ];
  it.each(stopped)('$name, with no final status and nothing finished', async ({ stop, want }) => {
    const writer = new FakeWriter();
    const finished: string[] = [];
    const untilAborted: Attempt = (_emit, _writer, signal) =>
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    const binding = new ActivationBinding({
      nodeName: NODE,
      engine: new FakeEngine(untilAborted, writer),
      caches: { activation: () => anActivation(), activations: () => [] },
      writer,
      onFinished: (_a, s) => finished.push(s.phase ?? '-'),
    });
    const shutdown = new AbortController();
    const running = binding.reconcile(KEY, logger, shutdown.signal);
    await tick();
    if (stop === 'cancel') binding.cancel(KEY, 'sent back');
    else shutdown.abort(new Error('work queue shut down'));
    expect({ outcome: await outcome(running), writes: writer.writes, finished }).toEqual({
      outcome: want,
      writes: [],
      finished: [],
    });
  });
});
