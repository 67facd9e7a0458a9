// The #114 plugin install into a host's plugins directory, on real files: every point a crash can stop
// the swap at is restored to exactly what was live before, and a swap that fails restores by itself.
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkPluginsDir,
  MANAGED_MARKER,
  restorePlugin,
  snapshotName,
  stagePlugin,
  swapPlugin,
  sweepPluginSnapshots,
} from '../../../src/agent/host/install.ts';
import { hostPlugin, treeOf } from '../../support/reference-host.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function aPluginsDir() {
  const base = await mkdtemp(join(tmpdir(), 'plr-install-'));
  dirs.push(base);
  const dir = join(base, 'plugins');
  await mkdir(dir);
  await writeFile(join(dir, MANAGED_MARKER), '');
  const old = await hostPlugin(join(dir, 'cache'), { name: 'cache', version: 'v1' });
  const candidate = await hostPlugin(join(base, 'release', 'artifact'), { name: 'cache', version: 'v2' });
  return { dir, before: await treeOf(old.path), candidate };
}

describe('the plugin install', () => {
  // Each step of the swap, done by hand, then a crash: recovery's restorePlugin must undo it.
  const crashes: { name: string; steps: number }[] = [
    { name: 'after staging, before the snapshot rename', steps: 0 },
    { name: 'between the snapshot rename and the swap rename (no live directory)', steps: 1 },
    { name: 'after the swap rename, before .complete', steps: 2 },
    { name: 'after .complete', steps: 3 },
  ];
  it.each(crashes)('restores the live plugin byte for byte after a crash $name', async ({ steps }) => {
    const { dir, before, candidate } = await aPluginsDir();
    const staged = await stagePlugin(dir, 'cache', 'r2', candidate.path, candidate.digest);
    const snapshot = await snapshotName(dir, 'cache', new Date());
    if (!snapshot) throw new Error('a live plugin has a snapshot name');
    if (steps >= 1) {
      await mkdir(join(dir, '.previous'), { recursive: true });
      await rename(join(dir, 'cache'), join(dir, '.previous', snapshot));
    }
    if (steps >= 2) await rename(staged, join(dir, 'cache'));
    if (steps >= 3) await writeFile(join(dir, 'cache', '.complete'), '{}');
    await restorePlugin(dir, 'cache', snapshot);
    expect(await treeOf(join(dir, 'cache'))).toEqual(before);
    expect(await treeOf(join(dir, '.staging'))).toEqual({});
    // Idempotent: recovery may run it again after a crash of its own.
    await restorePlugin(dir, 'cache', snapshot);
    expect(await treeOf(join(dir, 'cache'))).toEqual(before);
  });

  it('swaps with .complete written last, keeping what was live as a snapshot', async () => {
    const { dir, before, candidate } = await aPluginsDir();
    const staged = await stagePlugin(dir, 'cache', 'r2', candidate.path, candidate.digest);
    const snapshot = await snapshotName(dir, 'cache', new Date());
    await swapPlugin(dir, 'cache', staged, snapshot, {
      revision: 'r2',
      digest: candidate.digest,
      at: new Date(),
    });
    const { '.complete': marker, ...live } = await treeOf(join(dir, 'cache'));
    expect(live).toEqual(await treeOf(candidate.path));
    expect(marker).toMatch(/^file /);
    expect(await treeOf(join(dir, '.previous', snapshot ?? ''))).toEqual(before);
  });

  it('removes a first install entirely when it is rolled back (nothing was live)', async () => {
    const { dir, candidate } = await aPluginsDir();
    await rm(join(dir, 'cache'), { recursive: true });
    const staged = await stagePlugin(dir, 'cache', 'r2', candidate.path, candidate.digest);
    const snapshot = await snapshotName(dir, 'cache', new Date());
    expect(snapshot).toBeNull();
    await swapPlugin(dir, 'cache', staged, snapshot, {
      revision: 'r2',
      digest: candidate.digest,
      at: new Date(),
    });
    await restorePlugin(dir, 'cache', snapshot);
    expect(Object.keys(await treeOf(dir)).sort()).toEqual(['.plugin-release-managed', '.staging']);
  });

  it('refuses a staged copy whose digest is not the release’s, leaving the live plugin alone', async () => {
    const { dir, before, candidate } = await aPluginsDir();
    const wrong = `sha256:${'0'.repeat(64)}`;
    await expect(stagePlugin(dir, 'cache', 'r2', candidate.path, wrong)).rejects.toMatchObject({
      reason: 'PluginInstallFailed',
    });
    expect(await treeOf(join(dir, 'cache'))).toEqual(before);
    expect(await treeOf(join(dir, '.staging'))).toEqual({});
  });

  it('keeps only the newest retention.keepSnapshots snapshots', async () => {
    const { dir } = await aPluginsDir();
    for (const t of ['20260101T000000000Z', '20260102T000000000Z', '20260103T000000000Z'])
      await mkdir(join(dir, '.previous', `cache.${t}`), { recursive: true });
    await mkdir(join(dir, '.previous', 'other.20260101T000000000Z'));
    expect(await sweepPluginSnapshots(dir, 'cache', 1)).toEqual([
      'cache.20260102T000000000Z',
      'cache.20260101T000000000Z',
    ]);
    expect(Object.keys(await treeOf(join(dir, '.previous'))).sort()).toEqual([
      'cache.20260103T000000000Z',
      'other.20260101T000000000Z',
    ]);
  });

  it.each([
    [
      'a directory without the managed marker',
      async (dir: string) => rm(join(dir, MANAGED_MARKER)),
      /no \.plugin-release-managed/,
    ],
    ['a directory reached through a symlink', async () => undefined, /resolves to/],
    ['a missing directory', async (dir: string) => rm(dir, { recursive: true }), /does not exist/],
  ])('refuses %s', async (name, prepare, says) => {
    const { dir } = await aPluginsDir();
    await prepare(dir);
    let target = dir;
    if (name.includes('symlink')) {
      target = `${dir}-link`;
      await (await import('node:fs/promises')).symlink(dir, target);
    }
    await expect(checkPluginsDir(target)).rejects.toMatchObject({
      reason: 'HostPluginDirRefused',
      message: expect.stringMatching(says),
    });
  });
});
