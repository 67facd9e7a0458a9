// Crash safety: SIGKILL the agent at every step of an activation and at random moments (half of them in
// the milliseconds around the candidate's spawn), restart it on the same root, and check that it
// converged: old or new active, never half of each, and no plugin process left behind.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import type { PluginActivationSpec } from '../../../src/api/index.ts';
import { aCandidate, anAgent } from '../../support/agent-fixtures.ts';
import { killMarked, leftAfter, TEST_MARK } from '../../support/contained-plugins.ts';

const HARNESS = join(import.meta.dirname, '../../support/agent-harness.ts');
const RANDOM_TRIALS = Number(process.env.CRASH_RANDOM_TRIALS ?? 50);
/** A kill lands this many ms (at most) after the candidate's launch starts: the spawn window. */
const SPAWN_WINDOW_MS = 8;
const PARALLEL = 3;

interface Report {
  actions: string[];
  current?: string;
  currentComplete?: boolean;
  activeRevision?: string;
  intent: unknown;
  liveProcesses: number;
  served?: { ok: boolean; version?: string; error?: string };
  /** Added by crashAndRecover: plugin processes (found by the world's environment marker) still alive
   * after the recovering agent stopped what it serves. */
  leaked?: number;
}

async function aWorld(strategy: 'TryActivate' | 'Recreate') {
  const world = await anAgent();
  await world.engine.close();
  const fast = { health: { probes: [] }, activation: { drainSeconds: 0, verifySeconds: 0 } };
  // Every plugin process of this world, and every descendant, carries the mark.
  const mark = randomBytes(6).toString('hex');
  const env = { [TEST_MARK]: mark };
  const v1 = await aCandidate(world, { version: '1.0.0', network: 'unix', env }, fast);
  const v2 = await aCandidate(
    world,
    { version: '2.0.0', network: 'unix', env },
    {
      health: { probes: [{ grpc: {}, periodSeconds: 1 }] },
      activation: { strategy, drainSeconds: 1, verifySeconds: 1 },
    },
  );
  const file = (name: string, spec: PluginActivationSpec) => {
    const path = join(world.base, `${name}.json`);
    writeFileSync(path, JSON.stringify(spec));
    return path;
  };
  return { world, mark, v1: v1.spec, v2: v2.spec, files: [file('v1', v1.spec), file('v2', v2.spec)] };
}

function run(args: string[], env: Record<string, string>, killAfterMs?: { afterLine: string; ms: number }) {
  const child = spawn(process.execPath, [HARNESS, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    if (killAfterMs && line === killAfterMs.afterLine)
      setTimeout(() => child.kill('SIGKILL'), killAfterMs.ms);
    if (line.startsWith('V2_DONE')) child.kill('SIGKILL'); // no crash happened: stop it like a crash
  });
  return new Promise<{ signal: string | null; lines: string[] }>((resolve) =>
    child.on('exit', (_code, signal) => resolve({ signal, lines })),
  );
}

async function crashAndRecover(
  strategy: 'TryActivate' | 'Recreate',
  crash: { at?: string; randomMs?: number },
) {
  const { world, mark, v1, v2, files } = await aWorld(strategy);
  const args = ['activate', world.root, world.staging, ...files];
  const first = crash.at
    ? await run(args, { PR_TEST_CRASH_AT: crash.at })
    : await run(args, {}, { afterLine: 'V1_ACTIVE', ms: crash.randomMs! });
  // The recovering agent stops what it serves before it exits (engine.close(true)): nothing may remain.
  const second = await run(['recover', world.root, world.staging], {});
  const report = JSON.parse(second.lines.at(-1)!) as Report;
  report.leaked = (await leftAfter(mark, 2000)).length;
  killMarked(mark);
  return { first, report, v1: v1.revision, v2: v2.revision };
}

function expectConverged(r: Awaited<ReturnType<typeof crashAndRecover>>) {
  const { report, v1, v2 } = r;
  expect(report.intent).toBeNull();
  expect([v1, v2]).toContain(report.current);
  expect(report.currentComplete).toBe(true);
  expect(report.activeRevision).toBe(report.current);
  expect(report.liveProcesses).toBe(1);
  expect(report.leaked).toBe(0);
  expect(report.served).toMatchObject({ ok: true, version: report.current === v1 ? '1.0.0' : '2.0.0' });
}

const crashPoints: {
  at: string;
  strategy: 'TryActivate' | 'Recreate';
  wantActive: 'v1' | 'v2' | 'either';
}[] = [
  { at: 'stage:complete', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'launch:spawned', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'launch:done', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'probe:done', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'swap:intent', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'swap:previous', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'swap:current', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'swap:front', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'verify:done', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'retire:drained', strategy: 'TryActivate', wantActive: 'v1' },
  { at: 'retire:settled', strategy: 'TryActivate', wantActive: 'v2' },
  { at: 'recreate:stopped', strategy: 'Recreate', wantActive: 'v1' },
];

async function pool<T>(items: T[], size: number, work: (item: T) => Promise<void>) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: size }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
    }),
  );
}

describe('crash safety', () => {
  it.each(crashPoints)(
    'converges after a SIGKILL at $at ($strategy): $wantActive active, one process, journal settled',
    async ({ at, strategy, wantActive }) => {
      const result = await crashAndRecover(strategy, { at });
      expect(result.first.signal).toBe('SIGKILL');
      expect(result.first.lines).not.toContainEqual(expect.stringMatching(/^V2_DONE/));
      expectConverged(result);
      expect(result.report.current).toBe(wantActive === 'v1' ? result.v1 : result.v2);
    },
  );

  it(`converges and leaks no process after SIGKILLs at ${RANDOM_TRIALS} random moments, half around the spawn`, async () => {
    // Even trials: anywhere in the 2.5 s of v2's activation. Odd trials: within SPAWN_WINDOW_MS after v2's
    // launch starts (run dir, containment record, spawn, pid.json), where a kill once lost the candidate.
    const trials = Array.from({ length: RANDOM_TRIALS }, (_, i) => {
      const half = Math.ceil(RANDOM_TRIALS / 2);
      const k = Math.floor(i / 2);
      return i % 2 === 0
        ? { randomMs: Math.round(((k + Math.random()) / half) * 2500) }
        : { at: `launch:start+${Math.floor(((k + Math.random()) / half) * SPAWN_WINDOW_MS)}` };
    });
    const failures: string[] = [];
    const outcomes = { v1: 0, v2: 0 };
    await pool(trials, PARALLEL, async (crash) => {
      const result = await crashAndRecover('TryActivate', crash);
      try {
        expectConverged(result);
        outcomes[result.report.current === result.v1 ? 'v1' : 'v2']++;
      } catch (error) {
        const when = crash.at ? `at ${crash.at}` : `after ${crash.randomMs} ms`;
        failures.push(
          `kill ${when}: ${(error as Error).message.split('\n')[0]} ${JSON.stringify(result.report)}`,
        );
      }
    });
    expect(failures).toEqual([]);
    expect(outcomes.v1 + outcomes.v2).toBe(RANDOM_TRIALS);
  }, 300_000);
});
