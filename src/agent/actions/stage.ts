// Stage: copy the candidate's artifact and config beside the active version and verify them.
// Success: the release directory holds artifact/, config and `.complete` (written last); the agent
// reports phase Staged. Failure (ActivationError, nothing active touched; a partial copy has no
// `.complete` and is swept): InvalidRevision, PathOutsideRoot, ArtifactOutsideStagingRoot,
// ArtifactNotFound, ArtifactUnreadable, UnsafeSymlink, HardLinkRefused, UnsupportedFileType,
// EntrypointNotFound, DigestMismatch, ConfigNotFound, ConfigDigestMismatch, ManifestInvalid,
// SnapshotMissing, SnapshotCorrupt, StageFailed.
//
// The staging tree belongs to whoever ships artifacts, not to the agent, so the copy trusts nothing
// in it (docs/security.md): it walks names as raw bytes, opens every file with O_NOFOLLOW and checks
// the descriptor it reads (a regular file with one link), refuses devices, FIFOs and sockets, keeps
// only relative symlinks that stay inside the artifact (absolute ones are refused, never rewritten,
// so `plugin-release digest` of the staged tree is the digest of the copy), drops setuid, setgid and
// sticky bits, and checks after the copy that every link in it resolves inside the copy.
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import {
  chmod,
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  utimes,
} from 'node:fs/promises';
import { join, relative } from 'node:path';
import { z } from 'zod';
import {
  DNS_LABEL_PATTERN,
  formatIssues,
  NodeReason,
  type PluginActivationSpec,
  RELATIVE_PATH_PATTERN,
  REVISION_PATTERN,
} from '../../api/index.ts';
import {
  DIGEST_FORMAT,
  digestPath,
  digestPathV1,
  displayPath,
  fileTypeName,
  UnhashableFileError,
} from '../digest.ts';
import { ActivationError } from '../errors.ts';
import {
  COMPLETE_MARKER,
  fsyncDir,
  isInside,
  loadReleaseRecord,
  type ReleaseRecord,
  releaseDir,
  releasesDir,
  verifyRelease,
  writeFileAtomic,
} from '../store.ts';

/** An optional `plugin.json` at the root of a directory artifact. */
export const PluginManifest = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  capabilities: z.array(z.string()).optional(),
});
export const MANIFEST_FILE = 'plugin.json';

export function ioError(error: unknown, what: string, path: string): ActivationError {
  if (error instanceof ActivationError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return new ActivationError(
      NodeReason.ArtifactNotFound,
      `${what} ${path} does not exist on this node; stage it before applying the release.`,
    );
  if (code === 'EACCES' || code === 'EPERM') {
    return new ActivationError(
      NodeReason.ArtifactUnreadable,
      `${what} ${path} is not readable by the agent (${code}); fix its permissions.`,
    );
  }
  return new ActivationError(
    NodeReason.StageFailed,
    `Staging ${what} ${path} failed: ${(error as Error).message}.`,
  );
}

const SLASH = 0x2f;
const joinBytes = (dir: Buffer, name: Buffer) => Buffer.concat([dir, Buffer.from('/'), name]);
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** Whether a relative link at depth `depth` below the artifact root climbs above the root lexically. */
function climbsOut(target: Buffer, depth: number): boolean {
  let level = depth;
  let start = 0;
  for (let i = 0; i <= target.length; i++) {
    if (i < target.length && target[i] !== SLASH) continue;
    const part = target.subarray(start, i);
    start = i + 1;
    if (part.length === 0 || part.equals(DOT)) continue;
    level += part.equals(DOTDOT) ? -1 : 1;
    if (level < 0) return true;
  }
  return false;
}

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Mode bits a copy keeps: permissions only. A root-owned setuid copy of a user's file is a root shell. */
const MODE_BITS = 0o777;

function unsupported(what: string, path: string, type: string): ActivationError {
  return new ActivationError(
    NodeReason.UnsupportedFileType,
    `The ${what} ${path} is ${type}; artifacts may hold only regular files, directories and symlinks.`,
  );
}

/**
 * Copies one regular file through a descriptor opened without following links, after checking that
 * descriptor: a regular file (UnsupportedFileType otherwise) with exactly one link (HardLinkRefused
 * otherwise: a second name can be anywhere on the filesystem, outside the staging root).
 */
export async function copyRegularFile(src: Buffer, dst: Buffer, what: string, shown: string): Promise<void> {
  let input: FileHandle;
  try {
    input = await open(src, READ_FLAGS);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new ActivationError(
        NodeReason.UnsafeSymlink,
        `The ${what} ${shown} became a symlink while it was staged; stage artifacts that nobody is changing.`,
      );
    }
    throw ioError(error, what, shown);
  }
  try {
    const st = await input.stat();
    if (!st.isFile()) throw unsupported(what, shown, fileTypeName(st));
    if (st.nlink > 1) {
      throw new ActivationError(
        NodeReason.HardLinkRefused,
        `The ${what} ${shown} is a hard link (${st.nlink} names for one file); its other names may be outside the staging root, so stage a copy instead.`,
      );
    }
    const output = await open(dst, WRITE_FLAGS, 0o600);
    try {
      const buffer = Buffer.allocUnsafe(1 << 20);
      for (let position = 0; ; ) {
        const { bytesRead } = await input.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        await output.write(buffer, 0, bytesRead);
        position += bytesRead;
      }
      await output.chmod(st.mode & MODE_BITS);
      await output.utimes(st.atime, st.mtime);
      await output.sync();
    } finally {
      await output.close();
    }
  } catch (error) {
    throw ioError(error, what, shown);
  } finally {
    await input.close();
  }
}

/** Copies directory `src` (at `depth` below the artifact root) to `dst`, refusing what it must. */
export async function copyDirectory(src: Buffer, dst: Buffer, depth: number, mode: number): Promise<void> {
  await mkdir(dst, { mode: 0o700 });
  let names: Buffer[];
  try {
    names = await readdir(src, { encoding: 'buffer' });
  } catch (error) {
    throw ioError(error, 'artifact directory', displayPath(src));
  }
  for (const name of names) {
    const from = joinBytes(src, name);
    const to = joinBytes(dst, name);
    const shown = displayPath(from);
    const st = await lstat(from).catch((error) => {
      throw ioError(error, 'artifact file', shown);
    });
    if (st.isSymbolicLink()) {
      const target = await readlink(from, { encoding: 'buffer' });
      if (target[0] === SLASH) {
        throw new ActivationError(
          NodeReason.UnsafeSymlink,
          `The artifact's symlink ${shown} is absolute (to ${displayPath(target)}); in the staged copy it would lead back to the staging tree or elsewhere. Use a relative link that stays inside the artifact.`,
        );
      }
      if (climbsOut(target, depth)) {
        throw new ActivationError(
          NodeReason.UnsafeSymlink,
          `The artifact's symlink ${shown} points outside the artifact (to ${displayPath(target)}); artifacts may only link inside themselves.`,
        );
      }
      await symlink(target, to);
    } else if (st.isDirectory()) {
      await copyDirectory(from, to, depth + 1, st.mode);
    } else if (st.isFile()) {
      await copyRegularFile(from, to, 'artifact file', shown);
    } else {
      throw unsupported('artifact file', shown, fileTypeName(st));
    }
  }
  await chmod(dst, mode & MODE_BITS);
  const st = await stat(src);
  await utimes(dst, st.atime, st.mtime);
  const handle = await open(dst, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync(); // the names in it survive a power loss
  } finally {
    await handle.close();
  }
}

/** After the copy: every symlink in it resolves (it is not dangling) to somewhere inside it. */
export async function checkCopiedSymlinks(copyRoot: Buffer, dir: Buffer, sourceRoot: Buffer): Promise<void> {
  for (const name of await readdir(dir, { encoding: 'buffer' })) {
    const path = joinBytes(dir, name);
    const st = await lstat(path);
    if (st.isDirectory()) await checkCopiedSymlinks(copyRoot, path, sourceRoot);
    if (!st.isSymbolicLink()) continue;
    const shown = displayPath(Buffer.concat([sourceRoot, path.subarray(copyRoot.length)]));
    const real = await realpath(path, { encoding: 'buffer' }).catch(() => undefined);
    if (!real) {
      throw new ActivationError(
        NodeReason.UnsafeSymlink,
        `The artifact's symlink ${shown} is dangling; artifacts may only link inside themselves.`,
      );
    }
    const insideCopy =
      real.equals(copyRoot) ||
      (real.length > copyRoot.length &&
        real[copyRoot.length] === SLASH &&
        real.subarray(0, copyRoot.length).equals(copyRoot));
    if (!insideCopy) {
      throw new ActivationError(
        NodeReason.UnsafeSymlink,
        `The artifact's symlink ${shown} resolves outside the artifact; artifacts may only link inside themselves.`,
      );
    }
  }
}

/** The error for a rollback target that is not kept on this node. */
export const snapshotMissing = (revision: string) =>
  new ActivationError(
    NodeReason.SnapshotMissing,
    `Revision ${revision} is not kept on this node, so it cannot be restored; apply that version again instead.`,
  );

export interface StageInput {
  root: string;
  stagingRoot: string;
  spec: PluginActivationSpec;
  now: Date;
}

export function checkNames(spec: PluginActivationSpec): void {
  for (const revision of [spec.revision, spec.rollbackTo?.revision]) {
    if (revision !== undefined && !(REVISION_PATTERN.test(revision) && revision.length <= 63)) {
      throw new ActivationError(
        NodeReason.InvalidRevision,
        `The revision ${JSON.stringify(revision)} is not a lowercase RFC 1123 label, so it cannot name a release directory; the agent refuses it.`,
      );
    }
  }
  if (!(DNS_LABEL_PATTERN.test(spec.plugin) && spec.plugin.length <= 63)) {
    throw new ActivationError(
      NodeReason.PathOutsideRoot,
      `The plugin name ${JSON.stringify(spec.plugin)} is not a lowercase RFC 1123 label, so it cannot name a directory under the agent root; the agent refuses it.`,
    );
  }
}

type Artifact = NonNullable<PluginActivationSpec['artifact']>;

/** The artifact where it really is: confined to the staging root, a file or a directory. */
interface ResolvedArtifact {
  /** The artifact's path after symlinks. */
  real: string;
  isDirectory: boolean;
  mode: number;
  /** The entrypoint relative to a directory artifact; '' for a file artifact (the file itself). */
  entrypoint: string;
}

/**
 * Stages `spec` (or, with `spec.rollbackTo`, checks its kept snapshot) and returns the release record.
 * Idempotent: a revision already staged completely is returned as it is, once its copy still has the
 * digests its record names. Throws ActivationError.
 */
export async function stage({ root, stagingRoot, spec, now }: StageInput): Promise<ReleaseRecord> {
  // Names first: they become paths under the root (the API checks them as well; so does the store).
  checkNames(spec);
  const revision = spec.rollbackTo?.revision ?? spec.revision;
  const existing = await loadReleaseRecord(root, spec.plugin, revision);
  if (existing) {
    await verifyRelease(root, spec.plugin, existing);
    return existing;
  }
  if (spec.rollbackTo) throw snapshotMissing(revision);
  const { artifact } = spec;
  if (!artifact) {
    throw new ActivationError(
      NodeReason.ArtifactNotFound,
      'Runtime Process needs spec.artifact; none was given.',
    );
  }

  // Resolve and check the sources, then copy into a hidden temporary directory and verify the copy.
  const stagingReal = await realStagingRoot(stagingRoot);
  const source = await resolveArtifact(artifact, stagingReal);
  const configReal = spec.config ? await resolveConfig(spec.config.path, stagingReal) : undefined;
  const final = releaseDir(root, spec.plugin, revision);
  return stageRevision(releasesDir(root, spec.plugin), final, revision, async (tmp) => {
    const artifactCopy = join(tmp, 'artifact');
    await copyArtifact(source, artifactCopy, artifact.path);
    const entrypoint = await verifyArtifact(artifactCopy, source, artifact, spec);
    if (spec.config && configReal) await stageConfig(configReal, join(tmp, 'config'), spec.config);
    return releaseRecord(spec, artifact, {
      revision,
      dir: final,
      entrypoint: join(final, relative(tmp, entrypoint)),
      now,
    });
  });
}

/** The staging root after symlinks; a root that cannot be resolved fails the stage (StageFailed). */
export function realStagingRoot(stagingRoot: string): Promise<string> {
  return realpath(stagingRoot).catch((e: Error) => {
    throw new ActivationError(
      NodeReason.StageFailed,
      `The agent's staging root ${stagingRoot} is unusable: ${e.message}.`,
    );
  });
}

/**
 * Stages one revision as a transaction: `fill` writes a hidden temporary directory beside `final` and
 * returns the record; only a complete copy gets the revision's name (rename, fsynced), and its record
 * (`.complete`) is written last, so a crash at any point leaves either nothing or the whole revision.
 */
export async function stageRevision<R>(
  releases: string,
  final: string,
  revision: string,
  fill: (tmp: string) => Promise<R>,
): Promise<R> {
  await mkdir(releases, { recursive: true });
  const tmp = join(releases, `.${revision}.staging-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(tmp);
    const record = await fill(tmp);
    await fsyncDir(tmp);
    await rm(final, { recursive: true, force: true }); // an earlier incomplete attempt
    await rename(tmp, final);
    await fsyncDir(releases);
    await writeFileAtomic(join(final, COMPLETE_MARKER), `${JSON.stringify(record, null, 2)}\n`);
    return record;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Resolve: the artifact after symlinks, which must lie inside the staging root (confinement); then
 * check it is a regular file or a directory with a confined relative entrypoint.
 */
async function resolveArtifact(artifact: Artifact, stagingReal: string): Promise<ResolvedArtifact> {
  let real: string;
  try {
    real = await realpath(artifact.path);
  } catch (error) {
    throw ioError(error, 'artifact', artifact.path);
  }
  if (!isInside(stagingReal, real)) {
    throw new ActivationError(
      NodeReason.ArtifactOutsideStagingRoot,
      `The artifact ${artifact.path} resolves to ${real}, outside the staging root ${stagingReal}; stage artifacts under the staging root.`,
    );
  }
  const st = await lstat(real);
  return { real, isDirectory: st.isDirectory(), mode: st.mode, entrypoint: checkArtifact(st, artifact) };
}

/**
 * Check: what an artifact may be, from its lstat and spec: a regular file (its own entrypoint, '') or a
 * directory with `artifact.entrypoint`, a relative path inside it. Throws UnsupportedFileType or
 * EntrypointNotFound.
 */
export function checkArtifact(
  st: Pick<Stats, 'isDirectory' | 'isFile' | 'isBlockDevice' | 'isCharacterDevice' | 'isFIFO' | 'isSocket'>,
  artifact: Pick<Artifact, 'path' | 'entrypoint'>,
): string {
  if (!st.isDirectory() && !st.isFile()) throw unsupported('artifact', artifact.path, fileTypeName(st));
  if (!st.isDirectory()) return '';
  const ep = artifact.entrypoint;
  if (!ep || !RELATIVE_PATH_PATTERN.test(ep)) {
    throw new ActivationError(
      NodeReason.EntrypointNotFound,
      `A directory artifact needs artifact.entrypoint: a relative path inside it without "." or ".." segments (got ${JSON.stringify(ep)}).`,
    );
  }
  return ep;
}

/** Resolve: the config after symlinks, inside the staging root. Throws ConfigNotFound or as ioError. */
async function resolveConfig(path: string, stagingReal: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ActivationError(
        NodeReason.ConfigNotFound,
        `The config ${path} does not exist on this node; stage it before applying the release.`,
      );
    }
    throw ioError(error, 'config', path);
  }
  if (!isInside(stagingReal, real)) {
    throw new ActivationError(
      NodeReason.ArtifactOutsideStagingRoot,
      `The config ${path} resolves outside the staging root ${stagingReal}.`,
    );
  }
  return real;
}

/** Copy: the artifact to `copy`, trusting nothing in the staging tree (see the header). */
async function copyArtifact(source: ResolvedArtifact, copy: string, shown: string): Promise<void> {
  if (!source.isDirectory) {
    await copyRegularFile(Buffer.from(source.real), Buffer.from(copy), 'artifact', shown);
    return;
  }
  const from = Buffer.from(source.real);
  const to = Buffer.from(copy);
  await copyDirectory(from, to, 0, source.mode);
  await checkCopiedSymlinks(to, to, from);
}

/**
 * Verify: the copy has the digest the release names, an executable entrypoint inside it and (for a
 * directory) a manifest that agrees with the release. Returns the entrypoint's path in the copy.
 * Throws DigestMismatch, EntrypointNotFound, ManifestInvalid or UnsupportedFileType.
 */
async function verifyArtifact(
  copy: string,
  source: ResolvedArtifact,
  artifact: Artifact,
  spec: PluginActivationSpec,
): Promise<string> {
  const got = await digestPath(copy).catch((error) => {
    if (error instanceof UnhashableFileError) throw unsupported('artifact file', error.path, 'unhashable');
    throw ioError(error, 'artifact', artifact.path);
  });
  if (got !== artifact.digest) {
    // Say so when the release still names a digest in the old, non-injective format (v1).
    const legacy = await digestPathV1(copy).catch(() => undefined);
    const hint =
      legacy === artifact.digest
        ? ' That digest is in the retired v1 directory format; recompute it with `plugin-release digest` (docs/security.md, migration).'
        : '';
    throw new ActivationError(
      NodeReason.DigestMismatch,
      `The artifact ${artifact.path} has digest ${got}, not the ${artifact.digest} the release names; stage the right artifact or fix the digest.${hint}`,
    );
  }
  const entrypoint = source.isDirectory ? join(copy, source.entrypoint) : copy;
  const epStat = await stat(entrypoint).catch(() => undefined);
  const epReal = epStat ? await realpath(entrypoint).catch(() => undefined) : undefined;
  const shown = source.entrypoint || artifact.path;
  if (!epStat?.isFile() || !epReal || !isInside(copy, epReal)) {
    throw new ActivationError(
      NodeReason.EntrypointNotFound,
      `The entrypoint ${shown} is not a file in the artifact.`,
    );
  }
  if (!(epStat.mode & 0o111)) {
    throw new ActivationError(
      NodeReason.EntrypointNotFound,
      `The entrypoint ${shown} is not executable; set its execute bit where it is staged.`,
    );
  }
  if (source.isDirectory) await checkManifest(copy, spec);
  return entrypoint;
}

/** Copy and verify the config. Throws ConfigDigestMismatch, or as copyRegularFile. */
async function stageConfig(
  real: string,
  copy: string,
  config: NonNullable<PluginActivationSpec['config']>,
): Promise<void> {
  await copyRegularFile(Buffer.from(real), Buffer.from(copy), 'config', config.path);
  const digest = await digestPath(copy);
  if (digest !== config.digest) {
    throw new ActivationError(
      NodeReason.ConfigDigestMismatch,
      `The config ${config.path} has digest ${digest}, not the ${config.digest} the release names.`,
    );
  }
}

/** Where and when a revision was staged: its release directory and the entrypoint's path in it. */
interface Staged {
  revision: string;
  dir: string;
  entrypoint: string;
  now: Date;
}

/** The record `.complete` holds for `spec` staged as `at` says: what the launch and recovery read. */
export function releaseRecord(spec: PluginActivationSpec, artifact: Artifact, at: Staged): ReleaseRecord {
  return {
    revision: at.revision,
    version: spec.version,
    artifactDigest: artifact.digest,
    digestFormat: DIGEST_FORMAT,
    entrypoint: at.entrypoint,
    args: artifact.args,
    // The node's name, so a plugin can tell which node it serves (spec.process.env may override it).
    env: {
      PLUGIN_RELEASE_NODE: spec.nodeName,
      ...Object.fromEntries(spec.process.env.map((e) => [e.name, e.value])),
    },
    ...(spec.config ? { configPath: join(at.dir, 'config'), configDigest: spec.config.digest } : {}),
    handshake: spec.handshake,
    health: spec.health,
    ...(spec.process.runAsUser !== undefined ? { runAsUser: spec.process.runAsUser } : {}),
    ...(spec.process.runAsGroup !== undefined ? { runAsGroup: spec.process.runAsGroup } : {}),
    ...(spec.process.resources ? { resources: spec.process.resources } : {}),
    stagedAt: at.now.toISOString(),
  };
}

export async function checkManifest(artifact: string, spec: PluginActivationSpec): Promise<void> {
  let raw: string;
  try {
    raw = await readFile(join(artifact, MANIFEST_FILE), 'utf8');
  } catch {
    return; // the manifest is optional
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new ActivationError(
      NodeReason.ManifestInvalid,
      `The artifact's ${MANIFEST_FILE} is not JSON: ${(error as Error).message}.`,
    );
  }
  const result = PluginManifest.safeParse(parsed);
  if (!result.success) {
    throw new ActivationError(
      NodeReason.ManifestInvalid,
      `The artifact's ${MANIFEST_FILE} is invalid: ${formatIssues(result.error)}.`,
    );
  }
  if (result.data.name !== spec.plugin || result.data.version !== spec.version) {
    throw new ActivationError(
      NodeReason.ManifestInvalid,
      `The artifact's ${MANIFEST_FILE} says ${result.data.name} ${result.data.version}, but the release is ${spec.plugin} ${spec.version}.`,
    );
  }
}
