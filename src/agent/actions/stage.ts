// Stage: copy the candidate's artifact and config beside the active version and verify them.
// Success: the release directory holds artifact/, config and `.complete` (written last); the agent
// reports phase Staged. Failure (ActivationError, nothing active touched; a partial copy has no
// `.complete` and is swept): ArtifactOutsideStagingRoot, ArtifactNotFound, ArtifactUnreadable,
// UnsafeSymlink, EntrypointNotFound, DigestMismatch, ConfigNotFound, ConfigDigestMismatch,
// ManifestInvalid, SnapshotMissing, StageFailed.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, cp, lstat, mkdir, readdir, readFile, realpath, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { z } from 'zod';
import {
  formatIssues,
  NodeReason,
  type PluginActivationSpec,
  RELATIVE_PATH_PATTERN,
} from '../../api/index.ts';
import { digestPath } from '../digest.ts';
import { ActivationError } from '../errors.ts';
import {
  COMPLETE_MARKER,
  fsyncDir,
  isComplete,
  type ReleaseRecord,
  readReleaseRecord,
  releaseDir,
  releasesDir,
  writeFileAtomic,
} from '../store.ts';

/** An optional `plugin.json` at the root of a directory artifact. */
export const PluginManifest = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  capabilities: z.array(z.string()).optional(),
});
export const MANIFEST_FILE = 'plugin.json';

const inside = (parent: string, child: string) => {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
};

function ioError(error: unknown, what: string, path: string): ActivationError {
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

/** Rejects symlinks inside a directory artifact that resolve outside it. */
async function checkSymlinks(root: string, dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = await realpath(path);
      } catch {
        throw new ActivationError(
          NodeReason.UnsafeSymlink,
          `The artifact's symlink ${relative(root, path)} is dangling; artifacts may only link inside themselves.`,
        );
      }
      if (!inside(root, target)) {
        throw new ActivationError(
          NodeReason.UnsafeSymlink,
          `The artifact's symlink ${relative(root, path)} points outside the artifact (to ${target}); artifacts may only link inside themselves.`,
        );
      }
    } else if (st.isDirectory()) {
      await checkSymlinks(root, path);
    }
  }
}

/** Reads every file once, so an unreadable one fails here with a clear reason, not mid-copy. */
async function checkReadable(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    if (st.isDirectory()) await checkReadable(path);
    else if (st.isFile()) {
      try {
        await access(path, constants.R_OK);
      } catch (error) {
        throw ioError(error, 'artifact file', path);
      }
    }
  }
}

async function fsyncTree(path: string): Promise<void> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) for (const name of await readdir(path)) await fsyncTree(join(path, name));
  const { open } = await import('node:fs/promises');
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface StageInput {
  root: string;
  stagingRoot: string;
  spec: PluginActivationSpec;
  now: Date;
}

/**
 * Stages `spec` (or, with `spec.rollbackTo`, checks its kept snapshot) and returns the release record.
 * Idempotent: a revision already staged completely is returned as it is. Throws ActivationError.
 */
export async function stage({ root, stagingRoot, spec, now }: StageInput): Promise<ReleaseRecord> {
  const revision = spec.rollbackTo?.revision ?? spec.revision;
  const existing = await readReleaseRecord(root, spec.plugin, revision);
  if (existing) return existing;
  if (spec.rollbackTo) {
    throw new ActivationError(
      NodeReason.SnapshotMissing,
      `Revision ${revision} is not kept on this node, so it cannot be restored; apply that version again instead.`,
    );
  }

  // Confinement: the artifact must resolve, after symlinks, inside the staging root.
  const stagingReal = await realpath(stagingRoot).catch((e) => {
    throw new ActivationError(
      NodeReason.StageFailed,
      `The agent's staging root ${stagingRoot} is unusable: ${(e as Error).message}.`,
    );
  });
  let artifactReal: string;
  try {
    artifactReal = await realpath(spec.artifact.path);
  } catch (error) {
    throw ioError(error, 'artifact', spec.artifact.path);
  }
  if (!inside(stagingReal, artifactReal)) {
    throw new ActivationError(
      NodeReason.ArtifactOutsideStagingRoot,
      `The artifact ${spec.artifact.path} resolves to ${artifactReal}, outside the staging root ${stagingReal}; stage artifacts under the staging root.`,
    );
  }
  const artifactStat = await stat(artifactReal);
  const isDir = artifactStat.isDirectory();
  if (isDir) {
    await checkSymlinks(artifactReal, artifactReal);
    await checkReadable(artifactReal);
  } else {
    try {
      await access(artifactReal, constants.R_OK);
    } catch (error) {
      throw ioError(error, 'artifact', spec.artifact.path);
    }
  }

  // The entrypoint: the file itself, or a confined relative path inside the directory.
  let entrypointRel = '';
  if (isDir) {
    const ep = spec.artifact.entrypoint;
    if (!ep || !RELATIVE_PATH_PATTERN.test(ep)) {
      throw new ActivationError(
        NodeReason.EntrypointNotFound,
        `A directory artifact needs spec.artifact.entrypoint: a relative path inside it without "." or ".." segments (got ${JSON.stringify(ep)}).`,
      );
    }
    entrypointRel = ep;
  }

  let configReal: string | undefined;
  if (spec.config) {
    try {
      configReal = await realpath(spec.config.path);
      await access(configReal, constants.R_OK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new ActivationError(
          NodeReason.ConfigNotFound,
          `The config ${spec.config.path} does not exist on this node; stage it before applying the release.`,
        );
      }
      throw ioError(error, 'config', spec.config.path);
    }
    if (!inside(stagingReal, configReal)) {
      throw new ActivationError(
        NodeReason.ArtifactOutsideStagingRoot,
        `The config ${spec.config.path} resolves outside the staging root ${stagingReal}.`,
      );
    }
  }

  // Copy into a hidden temporary directory; only a verified, complete copy gets the revision's name.
  const releases = releasesDir(root, spec.plugin);
  await mkdir(releases, { recursive: true });
  const tmp = join(releases, `.${revision}.staging-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(tmp);
    const artifactCopy = join(tmp, 'artifact');
    try {
      await cp(artifactReal, artifactCopy, {
        recursive: true,
        verbatimSymlinks: true,
        preserveTimestamps: true,
      });
    } catch (error) {
      throw ioError(error, 'artifact', spec.artifact.path);
    }
    const got = await digestPath(artifactCopy);
    if (got !== spec.artifact.digest) {
      throw new ActivationError(
        NodeReason.DigestMismatch,
        `The artifact ${spec.artifact.path} has digest ${got}, not the ${spec.artifact.digest} the release names; stage the right artifact or fix the digest.`,
      );
    }
    const entrypoint = isDir ? join(artifactCopy, entrypointRel) : artifactCopy;
    const epStat = await stat(entrypoint).catch(() => undefined);
    if (!epStat?.isFile()) {
      throw new ActivationError(
        NodeReason.EntrypointNotFound,
        `The entrypoint ${entrypointRel || spec.artifact.path} is not a file in the artifact.`,
      );
    }
    if (!(epStat.mode & 0o111)) {
      throw new ActivationError(
        NodeReason.EntrypointNotFound,
        `The entrypoint ${entrypointRel || spec.artifact.path} is not executable; set its execute bit where it is staged.`,
      );
    }
    if (isDir) await checkManifest(artifactCopy, spec);
    let configPath: string | undefined;
    if (spec.config && configReal) {
      configPath = join(tmp, 'config');
      await cp(configReal, configPath);
      const configDigest = await digestPath(configPath);
      if (configDigest !== spec.config.digest) {
        throw new ActivationError(
          NodeReason.ConfigDigestMismatch,
          `The config ${spec.config.path} has digest ${configDigest}, not the ${spec.config.digest} the release names.`,
        );
      }
    }
    await fsyncTree(tmp);
    const final = releaseDir(root, spec.plugin, revision);
    await rm(final, { recursive: true, force: true }); // an earlier incomplete attempt
    await rename(tmp, final);
    await fsyncDir(releases);
    const record: ReleaseRecord = {
      revision,
      version: spec.version,
      artifactDigest: spec.artifact.digest,
      entrypoint: join(final, relative(tmp, entrypoint)),
      args: spec.artifact.args,
      // The node's name, so a plugin can tell which node it serves (spec.process.env may override it).
      env: {
        PLUGIN_RELEASE_NODE: spec.nodeName,
        ...Object.fromEntries(spec.process.env.map((e) => [e.name, e.value])),
      },
      ...(configPath ? { configPath: join(final, 'config') } : {}),
      handshake: spec.handshake,
      ...(spec.process.runAsUser !== undefined ? { runAsUser: spec.process.runAsUser } : {}),
      ...(spec.process.runAsGroup !== undefined ? { runAsGroup: spec.process.runAsGroup } : {}),
      stagedAt: now.toISOString(),
    };
    await writeFileAtomic(join(final, COMPLETE_MARKER), `${JSON.stringify(record, null, 2)}\n`);
    return record;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function checkManifest(artifact: string, spec: PluginActivationSpec): Promise<void> {
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

export { isComplete };
