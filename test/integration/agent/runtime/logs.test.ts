// Plugin logs: capped and rotated while the agent runs, written O_APPEND, last lines still quoted.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ActivationError } from '../../../../src/agent/errors.ts';
import {
  type LaunchOptions,
  launchPlugin,
  STDERR_LOG,
  STDOUT_LOG,
} from '../../../../src/agent/runtime/index.ts';
import { rotateLog, tailLog } from '../../../../src/agent/runtime/logs.ts';
import { Handshake } from '../../../../src/api/index.ts';
import { aShellPlugin, killMarked, leftAfter } from '../../../support/contained-plugins.ts';

const logger = pino({ level: 'silent' });
const CAP = 64 * 1024;
let root: string;
let runs = 0;
const marks: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pr-logs-'));
});
afterEach(() => {
  for (const mark of marks.splice(0)) killMarked(mark);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function plugin(name: string, body: string) {
  const p = await aShellPlugin(join(root, 'plugins'), `${name}-${++runs}`, body);
  marks.push(p.mark);
  return p;
}

function options(p: { entrypoint: string; dir: string }, more: Partial<LaunchOptions> = {}): LaunchOptions {
  return {
    runDir: join(root, 'run', String(++runs)),
    entrypoint: p.entrypoint,
    args: [],
    cwd: p.dir,
    env: {},
    handshake: Handshake.parse({ timeoutSeconds: 3 }),
    logger,
    stopGraceMs: 300,
    logs: { maxBytes: CAP, files: 1, checkMs: 20 },
    ...more,
  };
}

function size(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

describe('plugin logs', () => {
  it('keeps the stderr of a plugin writing in a loop under its cap, and still quotes its last lines', async () => {
    const done = join(root, `flood-done-${runs}`);
    const p = await plugin(
      'flood',
      // 40,000 lines (about 0.7 MB, ten times the cap) in 20 bursts of about 35 KB, 20 ms apart: a
      // sustained writer, yet a few processes rather than 40,000 shell steps.
      'for c in $(seq 0 19); do seq $((c*2000)) $((c*2000+1999)) | sed "s/^/noise line /"; sleep 0.02; done >&2\n' +
        `echo "last words before the timeout" >&2\n: > '${done}'\nexec sleep 1000`,
    );
    // The handshake times out once the plugin has said its last words, however long a busy machine
    // takes to write them: the injected clock jumps past the deadline when the plugin marks that.
    const clock = { now: () => new Date(Date.now() + (existsSync(done) ? 3_600_000 : 0)) };
    const opts = options(p, { handshake: Handshake.parse({ timeoutSeconds: 5 }), clock });
    const stderr = join(opts.runDir, STDERR_LOG);
    let largest = 0;
    const watch = setInterval(() => {
      largest = Math.max(largest, size(stderr) + size(`${stderr}.1`));
    }, 5);
    const error = (await launchPlugin(opts).catch((e: unknown) => e)) as ActivationError;
    clearInterval(watch);
    expect(error.reason).toBe('HandshakeTimeout');
    expect(error.message).toMatch(/Last stderr lines:\n(.|\n)*last words before the timeout/);
    // It wrote about 0.7 MB; on disk there were never more than the cap, the rotated copy and the slack
    // of one 20 ms check interval.
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(8 * CAP);
    expect(size(`${stderr}.1`)).toBeLessThanOrEqual(CAP);
    expect(readFileSync(`${stderr}.1`, 'utf8')).toMatch(/^noise line \d+\n/);
    expect(await leftAfter(p.mark)).toEqual([]);
  });

  it('hands the plugin its logs opened O_APPEND, so writes after a truncation land at the new end', async () => {
    const p = await plugin('append', 'echo "$HANDSHAKE"\nwhile :; do echo "tick" >&2; sleep 0.01; done');
    const handle = await launchPlugin(options(p, { logs: { maxBytes: 200, files: 1, checkMs: 20 } }));
    const flags = (fd: number) =>
      Number.parseInt(
        /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/${handle.pid}/fdinfo/${fd}`, 'utf8'))![1]!,
        8,
      );
    const O_APPEND = 0o2000;
    expect(flags(1) & O_APPEND).toBe(O_APPEND);
    expect(flags(2) & O_APPEND).toBe(O_APPEND);
    const stderr = join(handle.runDir, STDERR_LOG);
    await expect.poll(() => size(`${stderr}.1`), { timeout: 3000 }).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // A writer at its old offset would have made the file sparse and as long as everything written.
    expect(size(stderr)).toBeLessThan(1000);
    expect(handle.stderrTail(3)).toEqual(['tick', 'tick', 'tick']);
    await handle.stop(300);
    expect(await leftAfter(p.mark)).toEqual([]);
  });

  it('never rotates stdout before the handshake was read', async () => {
    // 40 KB of noise before the handshake, with a 1 KiB cap checked every 5 ms.
    const p = await plugin(
      'noisy',
      'i=0; while [ $i -lt 2000 ]; do echo "starting up, step $i"; i=$((i+1)); done\n' +
        'sleep 0.2\necho "$HANDSHAKE"\nexec sleep 1000',
    );
    const handle = await launchPlugin(options(p, { logs: { maxBytes: 1024, files: 1, checkMs: 5 } }));
    expect(handle.handshake.address).toBe('127.0.0.1:1');
    await expect.poll(() => size(join(handle.runDir, `${STDOUT_LOG}.1`))).toBeGreaterThan(0);
    await handle.stop(300);
    expect(await leftAfter(p.mark)).toEqual([]);
  });

  it('quotes the rotated copy when the live log was just truncated', async () => {
    const dir = join(root, 'tail');
    await mkdir(dir, { recursive: true });
    const log = join(dir, STDERR_LOG);
    writeFileSync(log, 'one\ntwo\nthree\nfour\n');
    expect(rotateLog(log, 8, 1)).toBe(true);
    expect(size(log)).toBe(0);
    expect(readFileSync(`${log}.1`, 'utf8')).toBe('four\n');
    writeFileSync(log, 'five\n', { flag: 'a' });
    expect(tailLog(log, 2)).toEqual(['four', 'five']);
    expect(rotateLog(log, 8, 1)).toBe(false);
  });
});
