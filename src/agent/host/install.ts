// Install: put a verified plugin into the host's plugins directory by molecule-core #114's sequence,
// and take it back out. Success: <dir>/<plugin> holds the release's artifact with `.complete` (written
// last) and the previous content is kept under <dir>/.previous. Failure: ActivationError
// HostPluginDirRefused (the directory is not one the agent may manage; nothing touched) or
// PluginInstallFailed (the live directory was put back as it was before the error).
//
//   <dir>/.plugin-release-managed     the host's (or operator's) consent: the agent writes nowhere else
//   <dir>/.staging/<plugin>.<rev>/    the candidate copy, validated before the live dir is touched
//   <dir>/<plugin>/                   live; its .complete ({plugin, revision, digest}) written last
//   <dir>/.previous/<plugin>.<id>/    snapshots of what was live, swept down to `retention.keepSnapshots`
//
// A directory cannot be renamed over a non-empty one, so the swap is two renames: live → snapshot, then
// staged → live. A crash between them leaves no live directory and a journal naming the snapshot, so
// recovery's `restorePlugin` can always end on exactly one of the two contents, never on half of each.
import { cp, lstat, mkdir, readdir, realpath, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeReason } from '../../api/index.ts';
import { digestPath } from '../digest.ts';
import { ActivationError } from '../errors.ts';
import { COMPLETE_MARKER, fsyncDir, writeFileAtomic } from '../store.ts';

export const MANAGED_MARKER = '.plugin-release-managed';
const STAGING = '.staging';
const PREVIOUS = '.previous';

const refused = (dir: string, why: string) =>
  new ActivationError(
    NodeReason.HostPluginDirRefused,
    `The host plugins directory ${dir} ${why}. The agent installs only into a directory that is itself (no symlinks on its path) and holds a ${MANAGED_MARKER} file; create it there to let the agent manage plugins.`,
  );

/** Checks that `dir` is a real directory the host opted in to; throws HostPluginDirRefused otherwise. */
export async function checkPluginsDir(dir: string): Promise<void> {
  const real = await realpath(dir).catch(() => undefined);
  if (!real) throw refused(dir, 'does not exist');
  if (real !== dir) throw refused(dir, `resolves to ${real}`);
  if (!(await lstat(dir)).isDirectory()) throw refused(dir, 'is not a directory');
  const marker = await lstat(join(dir, MANAGED_MARKER)).catch(() => undefined);
  if (!marker?.isFile()) throw refused(dir, `has no ${MANAGED_MARKER} file`);
}

const livePath = (dir: string, plugin: string) => join(dir, plugin);
const stamp = (now: Date) => now.toISOString().replaceAll(/[:.]/g, '');

/** The snapshot name a swap of `plugin` would keep what is live under, or null when nothing is live. */
export async function snapshotName(dir: string, plugin: string, now: Date): Promise<string | null> {
  const live = await lstat(livePath(dir, plugin)).catch(() => undefined);
  return live ? `${plugin}.${stamp(now)}` : null;
}

/**
 * Stage and validate: copies the verified artifact copy `source` into <dir>/.staging and checks its
 * digest there. Touches nothing live. Throws PluginInstallFailed.
 */
export async function stagePlugin(
  dir: string,
  plugin: string,
  revision: string,
  source: string,
  digest: string,
): Promise<string> {
  const staged = join(dir, STAGING, `${plugin}.${revision}`);
  try {
    await rm(staged, { recursive: true, force: true });
    await mkdir(join(dir, STAGING), { recursive: true });
    await cp(source, staged, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  } catch (cause) {
    await rm(staged, { recursive: true, force: true }).catch(() => {});
    throw new ActivationError(
      NodeReason.PluginInstallFailed,
      `Copying the plugin into ${join(dir, STAGING)} failed (${(cause as Error).message}); the live plugin was not touched.`,
      { cause },
    );
  }
  const got = await digestPath(staged).catch((e: Error) => `unreadable (${e.message})`);
  if (got !== digest) {
    await rm(staged, { recursive: true, force: true });
    throw new ActivationError(
      NodeReason.PluginInstallFailed,
      `The plugin staged in ${staged} has digest ${got}, not ${digest}; the live plugin was not touched.`,
    );
  }
  return staged;
}

/**
 * Snapshot and swap: moves what is live to <dir>/.previous/<snapshot>, the staged copy into place, then
 * writes `.complete`. On any error puts the snapshot back (restorePlugin) and throws PluginInstallFailed.
 */
export async function swapPlugin(
  dir: string,
  plugin: string,
  staged: string,
  snapshot: string | null,
  record: { revision: string; digest: string; at: Date },
): Promise<void> {
  const live = livePath(dir, plugin);
  try {
    if (snapshot) {
      await mkdir(join(dir, PREVIOUS), { recursive: true });
      await rename(live, join(dir, PREVIOUS, snapshot));
    }
    await rename(staged, live);
    await fsyncDir(dir);
    const marker = {
      plugin,
      revision: record.revision,
      digest: record.digest,
      installedAt: record.at.toISOString(),
    };
    await writeFileAtomic(join(live, COMPLETE_MARKER), `${JSON.stringify(marker)}\n`);
  } catch (cause) {
    await restorePlugin(dir, plugin, snapshot);
    throw new ActivationError(
      NodeReason.PluginInstallFailed,
      `Swapping the plugin into ${live} failed (${(cause as Error).message}); what was there before was put back.`,
      { cause },
    );
  }
}

/**
 * Rollback: makes <dir>/<plugin> what it was before the swap that kept `snapshot` (null: nothing was
 * there, so nothing is). Idempotent, so recovery may run it after a crash at any point of the swap or of
 * an earlier restore: a snapshot that is gone was already put back. Also clears <dir>/.staging of it.
 */
export async function restorePlugin(dir: string, plugin: string, snapshot: string | null): Promise<void> {
  const live = livePath(dir, plugin);
  const kept = snapshot ? join(dir, PREVIOUS, snapshot) : undefined;
  const keptExists = kept ? Boolean(await lstat(kept).catch(() => undefined)) : false;
  if (!snapshot || keptExists) {
    // Out of the way first (a rename), so the live name is never half-deleted.
    const discarded = join(dir, STAGING, `${plugin}.discarded-${stamp(new Date())}`);
    await mkdir(join(dir, STAGING), { recursive: true });
    await rename(live, discarded).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    if (kept) await rename(kept, live);
    await fsyncDir(dir);
  }
  for (const name of await readdir(join(dir, STAGING)).catch(() => [])) {
    if (name.startsWith(`${plugin}.`)) await rm(join(dir, STAGING, name), { recursive: true, force: true });
  }
}

/** GC: removes all but the newest `keep` snapshots of `plugin`; returns the names removed. */
export async function sweepPluginSnapshots(dir: string, plugin: string, keep: number): Promise<string[]> {
  const mine = (await readdir(join(dir, PREVIOUS)).catch(() => []))
    .filter((n) => n.startsWith(`${plugin}.`))
    .sort()
    .reverse();
  const removed = mine.slice(keep);
  for (const name of removed) await rm(join(dir, PREVIOUS, name), { recursive: true, force: true });
  return removed;
}
