// `plugin-release try-activate` exits after printing its result even when an exec probe left a background
// child behind (the child held the probe's stderr pipe and once kept the command from ever exiting).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { aShellPlugin, ESCAPE, killMarked, leftAfter } from '../../../support/contained-plugins.ts';
import { stageFixture } from '../../../support/plugins.ts';

const REPO = join(import.meta.dirname, '../../../..');
let base: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'pr-try-exec-'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

it('exits after printing probe_ok when an exec probe left a background child, and kills that child', async () => {
  const staging = join(base, 'staging');
  const fixture = await stageFixture(staging, { network: 'unix', version: '4.0.0' });
  const probe = await aShellPlugin(join(base, 'probes'), 'probe', `${ESCAPE}\nsleep 1000 &\nexit 0`);
  const file = join(base, 'release.yaml');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'pluginrelease.io/v1alpha1',
      kind: 'PluginRelease',
      metadata: { name: 'echo' },
      spec: {
        plugin: 'echo',
        version: '4.0.0',
        artifact: { path: fixture.path, digest: fixture.digest, entrypoint: fixture.entrypoint },
        handshake: { timeoutSeconds: 3 },
        health: {
          probes: [{ exec: { command: [probe.entrypoint] }, periodSeconds: 1, timeoutSeconds: 2 }],
          soakSeconds: 0,
        },
      },
    }),
  );
  try {
    const cli = spawn(
      process.execPath,
      [
        join(REPO, 'bin/plugin-release.js'),
        'try-activate',
        '--release',
        file,
        '--staging-root',
        staging,
        '--root',
        join(base, 'root'),
      ],
      { env: { PATH: process.env.PATH ?? '', HOME: tmpdir() }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    cli.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    const started = Date.now();
    const code = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => {
        cli.kill('SIGKILL');
        resolve('still running after 20 s');
      }, 20_000);
      cli.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c ?? -1);
      });
    });
    expect(code).toBe(0);
    expect(JSON.parse(stdout.trim())).toMatchObject({ status: 'probe_ok' });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await leftAfter(probe.mark)).toEqual([]);
  } finally {
    killMarked(probe.mark);
  }
}, 30_000);
