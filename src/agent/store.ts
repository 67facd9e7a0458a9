// The agent's on-disk layout, and the durable file operations everything else builds on.
//
//   <root>/plugins/<plugin>/
//     releases/<revision>/      a staged copy: artifact/, config (optional), .complete (written last)
//     current -> releases/<r>   the active release; swapped with rename(2)
//     previous -> releases/<r>  the release before it, kept for rollback
//     journal.json              the write-ahead journal (src/agent/journal.ts)
//     run/<id>/                 one directory per plugin process: stdout.log, stderr.log, pid.json, process.json
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { Handshake } from '../api/index.ts';

export const COMPLETE_MARKER = '.complete';

export const pluginDir = (root: string, plugin: string) => join(root, 'plugins', plugin);
export const releasesDir = (root: string, plugin: string) => join(pluginDir(root, plugin), 'releases');
export const releaseDir = (root: string, plugin: string, revision: string) =>
  join(releasesDir(root, plugin), revision);
export const runRoot = (root: string, plugin: string) => join(pluginDir(root, plugin), 'run');
export const defaultFrontAddress = (root: string, plugin: string) =>
  `unix://${join(pluginDir(root, plugin), 'front.sock')}`;

/** What `.complete` records: everything needed to start this release again after a restart. */
export const ReleaseRecord = z.object({
  revision: z.string(),
  version: z.string(),
  artifactDigest: z.string(),
  /** Absolute path of the executable inside this release directory. */
  entrypoint: z.string(),
  args: z.array(z.string()),
  env: z.record(z.string(), z.string()),
  configPath: z.string().optional(),
  handshake: Handshake,
  runAsUser: z.int().optional(),
  runAsGroup: z.int().optional(),
  stagedAt: z.string(),
});
export type ReleaseRecord = z.infer<typeof ReleaseRecord>;

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync a directory so a rename or create inside it survives a power loss. */
export const fsyncDir = fsyncPath;

/** Writes `data` to `path` atomically: temp file, fsync, rename over, fsync the directory. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(tmp, 'w', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}

/** Points symlink `dir/name` at `target` atomically (a temp link renamed over), or removes it. */
export async function setLink(dir: string, name: string, target: string | undefined): Promise<void> {
  const path = join(dir, name);
  if (target === undefined) {
    await rm(path, { force: true });
  } else {
    const tmp = join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    await symlink(target, tmp);
    await rename(tmp, path);
  }
  await fsyncDir(dir);
}

/** The revision a `current`/`previous` link points at, or undefined when there is none. */
export async function readLinkRevision(
  dir: string,
  name: 'current' | 'previous',
): Promise<string | undefined> {
  try {
    return basename(await readlink(join(dir, name)));
  } catch {
    return undefined;
  }
}

/** The relative symlink target for a revision, so the tree can move as a whole. */
export const linkTarget = (revision: string) => join('releases', revision);

export async function isComplete(root: string, plugin: string, revision: string): Promise<boolean> {
  try {
    return (await stat(join(releaseDir(root, plugin, revision), COMPLETE_MARKER))).isFile();
  } catch {
    return false;
  }
}

export async function readReleaseRecord(
  root: string,
  plugin: string,
  revision: string,
): Promise<ReleaseRecord | undefined> {
  try {
    const raw = await readFile(join(releaseDir(root, plugin, revision), COMPLETE_MARKER), 'utf8');
    return ReleaseRecord.parse(JSON.parse(raw));
  } catch {
    return undefined;
  }
}

/** A fresh, unique directory for one plugin process's logs and identity. */
export async function newRunDir(root: string, plugin: string, revision: string): Promise<string> {
  const dir = join(runRoot(root, plugin), `${revision}-${Date.now()}-${randomBytes(3).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  return dir;
}
