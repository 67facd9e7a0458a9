// The agent's on-disk layout, and the durable file operations everything else builds on.
//
//   <root>/plugins/<plugin>/
//     releases/<revision>/      a staged copy: artifact/, config (optional), .complete (written last)
//     current -> releases/<r>   the active release; swapped with rename(2)
//     previous -> releases/<r>  the release before it, kept for rollback
//     journal.json              the write-ahead journal (src/agent/journal.ts)
//     run/<id>/                 one directory per plugin process: stdout.log, stderr.log, pid.json, process.json
//
// Every path here is derived from a plugin name and a revision that arrive in a PluginActivation,
// which anyone allowed to write one controls. So each helper takes them only as single safe path
// components and checks that the path it builds stays under the root; `.complete` records are read
// only from the agent's own releases directory and their paths must resolve inside their release
// (docs/security.md).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readlink, realpath, rename, rm, stat, symlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { Handshake, Health, NodeReason } from '../api/index.ts';
import { DIGEST_FORMAT, digestPath, digestPathV1 } from './digest.ts';
import { ActivationError } from './errors.ts';

export const COMPLETE_MARKER = '.complete';

/** Whether `child` is `parent` or below it, lexically (both are resolved first). */
export const isInside = (parent: string, child: string): boolean => {
  const rel = relative(resolve(parent), resolve(child));
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
};

/** A name that is one path component: not empty, `.` or `..`, no `/` or NUL, at most 255 bytes. */
export function isSafeSegment(name: string): boolean {
  return (
    typeof name === 'string' &&
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\0') &&
    Buffer.byteLength(name) <= 255
  );
}

function pluginSegment(plugin: string): string {
  if (!isSafeSegment(plugin)) {
    throw new ActivationError(
      NodeReason.PathOutsideRoot,
      `The plugin name ${JSON.stringify(plugin)} is not a single path component, so its directory would not stay under the agent root; plugin names are RFC 1123 labels.`,
    );
  }
  return plugin;
}

function revisionSegment(revision: string): string {
  if (!isSafeSegment(revision)) {
    throw new ActivationError(
      NodeReason.InvalidRevision,
      `The revision ${JSON.stringify(revision)} is not a single path component, so its release directory would not stay under the agent root; revisions are lowercase labels such as 3f2a9c0d1e4b.`,
    );
  }
  return revision;
}

/** `path`, after checking that it lies under `root`: the second line of defence after the segments. */
function confined(root: string, path: string): string {
  if (!isInside(join(root, 'plugins'), path)) {
    throw new ActivationError(
      NodeReason.PathOutsideRoot,
      `The path ${path} is outside the agent root ${root}; the agent refuses to touch it.`,
    );
  }
  return path;
}

/** Throws ActivationError(PathOutsideRoot) unless `plugin` is one safe path component. */
export const pluginDir = (root: string, plugin: string) =>
  confined(root, join(root, 'plugins', pluginSegment(plugin)));
export const releasesDir = (root: string, plugin: string) => join(pluginDir(root, plugin), 'releases');
/** Throws ActivationError(InvalidRevision) unless `revision` is one safe path component. */
export const releaseDir = (root: string, plugin: string, revision: string) =>
  confined(root, join(releasesDir(root, plugin), revisionSegment(revision)));
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
  /** The release's health probes, so a restart after an agent restart probes as the activation did. */
  health: Health.optional(),
  runAsUser: z.int().optional(),
  runAsGroup: z.int().optional(),
  /** spec.process.resources: cgroup limits for the process and its descendants. */
  resources: z.object({ memoryMax: z.string().optional(), cpuMax: z.string().optional() }).optional(),
  stagedAt: z.string(),
  /** The digest format `artifactDigest` was verified with: 2 (docs/security.md); absent means v1. */
  digestFormat: z.literal(DIGEST_FORMAT).optional(),
  /** The config's digest, re-checked before a kept release runs again; absent in pre-v2 records. */
  configDigest: z.string().optional(),
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
  try {
    const handle = await open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    // A full disk or a read-only root must not leave a half-written temp file behind.
    await rm(tmp, { force: true }).catch(() => {});
    throw error;
  }
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

/** Whether the release has its `.complete` marker; false, too, for a revision that is not a safe name. */
export async function isComplete(root: string, plugin: string, revision: string): Promise<boolean> {
  try {
    return (await stat(join(releaseDir(root, plugin, revision), COMPLETE_MARKER))).isFile();
  } catch {
    return false;
  }
}

const corrupt = (revision: string, why: string) =>
  new ActivationError(
    NodeReason.SnapshotCorrupt,
    `The kept release ${revision} on this node cannot be trusted: ${why}. Apply that version again to re-stage it.`,
  );

/** realpath, or undefined when the path does not resolve. */
const resolved = (path: string) => realpath(path).catch(() => undefined);

/**
 * The text of `dir`'s `.complete` marker, or undefined when there is none. Refuses, with `refuse(why)`,
 * a marker that is a symlink (O_NOFOLLOW: it is not the agent's record) or not a regular file (a FIFO
 * would block the read). Shared by both runtimes' records.
 */
export async function readCompleteMarker(
  dir: string,
  refuse: (why: string) => Error,
): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(
      join(dir, COMPLETE_MARKER),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') throw refuse('its .complete is a symlink');
    throw error;
  }
  try {
    if (!(await handle.stat()).isFile()) throw refuse('its .complete is not a regular file');
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * The `.complete` record of a release, trusted: undefined when the release has no record; throws
 * ActivationError when it has one that must not be used: InvalidRevision or PathOutsideRoot (the
 * names or the release directory lead outside the agent's releases directory, or the record's
 * entrypoint or config resolve outside its release), SnapshotCorrupt (not a valid record of this
 * revision). Reads only; digests are re-checked by `verifyRelease`.
 */
export async function loadReleaseRecord(
  root: string,
  plugin: string,
  revision: string,
): Promise<ReleaseRecord | undefined> {
  const dir = releaseDir(root, plugin, revision);
  const raw = await readCompleteMarker(dir, (why) => corrupt(revision, why));
  if (raw === undefined) return undefined;
  // Only the agent's own releases directory: neither it nor the release may be a link elsewhere.
  const rootReal = await resolved(root);
  const releasesReal = await resolved(releasesDir(root, plugin));
  const dirReal = await resolved(dir);
  if (
    !rootReal ||
    !releasesReal ||
    !isInside(rootReal, releasesReal) ||
    dirReal !== join(releasesReal, revision)
  ) {
    throw new ActivationError(
      NodeReason.PathOutsideRoot,
      `The release directory ${dir} resolves to ${dirReal ?? 'nothing'}, not into the agent's own releases directory; the agent does not trust records elsewhere.`,
    );
  }
  let record: ReleaseRecord;
  try {
    record = ReleaseRecord.parse(JSON.parse(raw));
  } catch {
    throw corrupt(revision, 'its .complete is not a valid release record');
  }
  if (record.revision !== revision) {
    throw corrupt(revision, `its .complete names revision ${JSON.stringify(record.revision)}`);
  }
  for (const [what, path] of [
    ['entrypoint', record.entrypoint],
    ['config', record.configPath],
  ] as const) {
    if (path === undefined) continue;
    const real = isAbsolute(path) ? await resolved(path) : undefined;
    if (!real) throw corrupt(revision, `its ${what} ${path} does not exist`);
    if (!isInside(dirReal, real) || real === dirReal) {
      throw new ActivationError(
        NodeReason.PathOutsideRoot,
        `The kept release ${revision} names the ${what} ${path}, which resolves to ${real}, outside its release directory; the agent runs only what it staged.`,
      );
    }
  }
  return record;
}

/** The trusted `.complete` record, or undefined when there is none or it must not be used. */
export async function readReleaseRecord(
  root: string,
  plugin: string,
  revision: string,
): Promise<ReleaseRecord | undefined> {
  return loadReleaseRecord(root, plugin, revision).catch(() => undefined);
}

/**
 * Re-checks a kept release against its record before it runs again: the artifact copy's digest (in
 * the format the record was verified with) and the config's, when the record names one. Throws
 * ActivationError(SnapshotCorrupt) on any difference; reads only.
 */
export async function verifyRelease(root: string, plugin: string, record: ReleaseRecord): Promise<void> {
  const dir = releaseDir(root, plugin, record.revision);
  const artifact = join(dir, 'artifact');
  const digestOf = record.digestFormat === DIGEST_FORMAT ? digestPath : digestPathV1;
  const got = await digestOf(artifact).catch((e: Error) => `unreadable (${e.message})`);
  if (got !== record.artifactDigest) {
    throw corrupt(
      record.revision,
      `its artifact copy has digest ${got}, not the ${record.artifactDigest} it was staged with`,
    );
  }
  if (record.configPath !== undefined && record.configDigest !== undefined) {
    const config = await digestPath(record.configPath).catch((e: Error) => `unreadable (${e.message})`);
    if (config !== record.configDigest) {
      throw corrupt(
        record.revision,
        `its config copy has digest ${config}, not the ${record.configDigest} it was staged with`,
      );
    }
  }
}

/** A fresh, unique directory for one plugin process's logs and identity, under the plugin's run/. */
export async function newRunDir(root: string, plugin: string, revision: string): Promise<string> {
  const dir = confined(
    root,
    join(
      runRoot(root, plugin),
      `${revisionSegment(revision)}-${Date.now()}-${randomBytes(3).toString('hex')}`,
    ),
  );
  await mkdir(dir, { recursive: true });
  return dir;
}
