// Activation latency breakdown: stage (by artifact size), spawn + handshake, probe and swap, timed by
// the node engine's onEffect hook over real activations of the example echo plugin (instant handshake).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Effect } from '../src/agent/engine/transition.ts';
import { NodeEngine } from '../src/agent/node-engine.ts';
import type { EffectTiming } from '../src/agent/plugin-host.ts';
import { echoSpec, stageEchoArtifact, writePayload } from './lib/artifact.ts';
import type { Benchmark } from './lib/benchmark.ts';
import { median } from './lib/stats.ts';
import type { Row } from './lib/table.ts';

const MB = 2 ** 20;
/** The phases reported, each one effect of the engine's state machine. */
const PHASES = [
  { effect: 'Stage', label: 'stage ms' },
  { effect: 'Launch', label: 'spawn + handshake ms' },
  { effect: 'Probe', label: 'probe ms' },
  { effect: 'Swap', label: 'swap ms' },
  { effect: 'Retire', label: 'retire old ms' },
] as const satisfies readonly { effect: Effect; label: string }[];

/** How long each effect of one activation took (ms), by effect. */
export function effectDurations(timings: readonly EffectTiming[]): Partial<Record<Effect, number>> {
  const out: Partial<Record<Effect, number>> = {};
  for (const t of timings) out[t.effect] = (out[t.effect] ?? 0) + (t.endedAt - t.startedAt);
  return out;
}

interface SizeResult {
  sizeMb: number;
  samples: { durations: Partial<Record<Effect, number>>; totalMs: number }[];
}

export const benchmark: Benchmark = {
  name: 'activation',
  title: 'Activation latency breakdown',
  async run({ quick, smoke, log }) {
    const sizesMb = quick || smoke ? [1, 50] : [1, 50, 500];
    const n = smoke ? 1 : quick ? 2 : 5;
    const dir = mkdtempSync(join(tmpdir(), 'bench-activation-'));
    const staging = join(dir, 'staging');
    const payloads = join(dir, 'payloads');
    mkdirSync(payloads, { recursive: true });
    const engine = new NodeEngine({
      root: join(dir, 'root'),
      stagingRoot: staging,
      logger: pino({ level: 'silent' }),
    });
    const overrides = {
      health: { probes: [{ grpc: {}, periodSeconds: 1, failureThreshold: 2 }] },
      activation: { drainSeconds: 1, verifySeconds: 0 },
      retention: { keepSnapshots: 0 },
    };
    const results: SizeResult[] = [];
    try {
      await engine.recover();
      // Every measured activation replaces an active version, as an update does.
      const first = await engine.activate(
        echoSpec(await stageEchoArtifact(staging, '0.0.0'), 'r0', overrides),
      );
      if (first.phase !== 'Active') throw new Error(`the first activation ended ${first.phase}`);
      for (const sizeMb of sizesMb) {
        const payload = join(payloads, `${sizeMb}mb.bin`);
        await writePayload(payload, sizeMb * MB);
        const artifact = await stageEchoArtifact(staging, `${sizeMb}.0.0`, payload);
        const result: SizeResult = { sizeMb, samples: [] };
        for (let i = 0; i < n; i++) {
          // A new revision each time, so the engine copies and hashes the artifact again.
          const timings: EffectTiming[] = [];
          const started = performance.now();
          const status = await engine.activate(echoSpec(artifact, `r${sizeMb}mb-${i}`, overrides), {
            onEffect: (t) => timings.push(t),
          });
          const totalMs = performance.now() - started;
          if (status.phase !== 'Active')
            throw new Error(`activation of ${sizeMb} MB ended ${status.phase}: ${status.message}`);
          result.samples.push({ durations: effectDurations(timings), totalMs });
        }
        rmSync(artifact.path, { recursive: true, force: true });
        rmSync(payload, { force: true });
        const stageMs = median(result.samples.map((s) => s.durations.Stage ?? Number.NaN));
        log(`${sizeMb} MB: stage ${stageMs.toFixed(1)} ms (median of ${n})`);
        results.push(result);
      }
    } finally {
      await engine.close(true);
      rmSync(dir, { recursive: true, force: true });
    }

    const med = (r: SizeResult, effect: Effect) =>
      median(r.samples.map((s) => s.durations[effect] ?? Number.NaN));
    const rows: Row[] = results.map((r) => ({
      artifact: `${r.sizeMb} MB`,
      n: r.samples.length,
      ...Object.fromEntries(PHASES.map((p) => [p.label, med(r, p.effect)])),
      'total ms': median(r.samples.map((s) => s.totalMs)),
      'stage MB/s': r.sizeMb / (med(r, 'Stage') / 1000),
    }));
    const all = (effect: Effect) =>
      median(results.flatMap((r) => r.samples.map((s) => s.durations[effect] ?? Number.NaN)));
    const figures: Record<string, number> = { n };
    for (const r of results) figures[`stage${r.sizeMb}MbMs`] = Number(med(r, 'Stage').toFixed(1));
    figures.spawnHandshakeMs = Number(all('Launch').toFixed(1));
    figures.probeMs = Number(all('Probe').toFixed(2));
    figures.swapMs = Number(all('Swap').toFixed(2));
    return {
      name: 'activation',
      title: 'Activation latency breakdown',
      notes: [
        `Median of ${n} activations per artifact size on one node engine, each replacing the active version. The plugin is the example echo plugin (a Node program: its handshake line is written as soon as it listens); the artifact directory also holds a payload file of the given size, so staging copies, fsyncs and sha256-hashes every byte (the payload was just written, so it is read from the page cache, as a freshly downloaded artifact would be).`,
        "Phases are the engine's effects, timed by its onEffect hook: stage (confinement checks, copy, digest, fsync, `.complete`), spawn + handshake (process start until the handshake line is read), probe (one gRPC health check, soak 0), swap (journal intent with fsync, `previous`/`current` renames, front switch), retire old (drain the old process's connections, stop it, settle the journal, sweep). Total is the whole activate() call.",
      ],
      tables: [{ caption: 'Activation phases by artifact size (median ms)', rows }],
      figures,
    };
  },
};
