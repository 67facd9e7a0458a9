// Stage (runtime Host): copy the candidate config and plugin artifact beside the active release and
// verify their digests. Success: hosts/<plugin>/releases/<revision>/ holds them and `.complete` (written
// last); phase Staged. Failure (ActivationError, the host not contacted): InvalidRevision,
// PathOutsideRoot, ArtifactOutsideStagingRoot, ArtifactNotFound, ArtifactUnreadable, UnsafeSymlink,
// HardLinkRefused, UnsupportedFileType, DigestMismatch, ConfigNotFound, ConfigDigestMismatch,
// ManifestInvalid, SnapshotMissing, SnapshotCorrupt, StageFailed.
//
// The copy is the Process runtime's (actions/stage.ts), which trusts nothing in the staging tree; only
// what is copied differs: a config and an optional artifact, which need no entrypoint.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, realpath, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeReason, type PluginActivationSpec } from '../../api/index.ts';
import {
  checkCopiedSymlinks,
  checkManifest,
  checkNames,
  copyDirectory,
  copyRegularFile,
  ioError,
  snapshotMissing,
} from '../actions/stage.ts';
import { digestPath, fileTypeName } from '../digest.ts';
import { ActivationError } from '../errors.ts';
import { COMPLETE_MARKER, fsyncDir, isInside, writeFileAtomic } from '../store.ts';
import { configContentType } from './client.ts';
import { type HostRecord, hostReleaseDir, hostReleasesDir, readHostRecord } from './layout.ts';

/** Largest config sent to a host: it is read into memory for every request that carries it. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

export interface HostStageInput {
  root: string;
  stagingRoot: string;
  spec: PluginActivationSpec;
  now: Date;
}

/** The digest of `path`, or a sentence saying why it has none. */
const digestOrWhy = (path: string) => digestPath(path).catch((e: Error) => `unreadable (${e.message})`);

/** Re-checks a kept host release's copies against its record; throws SnapshotCorrupt. */
async function verifyHostRelease(record: HostRecord): Promise<void> {
  for (const copy of [record.config, record.artifact]) {
    if (!copy) continue;
    const got = await digestOrWhy(copy.path);
    if (got !== copy.digest) {
      throw new ActivationError(
        NodeReason.SnapshotCorrupt,
        `The kept host release ${record.revision} has ${copy.path} with digest ${got}, not the ${copy.digest} it was staged with; apply that version again to re-stage it.`,
      );
    }
  }
}

/** `path` resolved, after checking it lies inside the staging root. */
async function inStagingRoot(
  stagingReal: string,
  path: string,
  what: 'artifact' | 'config',
): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    if (what === 'config' && (error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ActivationError(
        NodeReason.ConfigNotFound,
        `The config ${path} does not exist on this node; stage it before applying the release.`,
      );
    }
    throw ioError(error, what, path);
  }
  if (!isInside(stagingReal, real)) {
    throw new ActivationError(
      NodeReason.ArtifactOutsideStagingRoot,
      `The ${what} ${path} resolves to ${real}, outside the staging root ${stagingReal}; stage it under the staging root.`,
    );
  }
  return real;
}

/**
 * Stages a Host release (or, with `spec.rollbackTo`, checks its kept copy) and returns its record.
 * Idempotent: a complete copy whose digests still match is returned as it is. Throws ActivationError.
 */
export async function stageHostRelease({
  root,
  stagingRoot,
  spec,
  now,
}: HostStageInput): Promise<HostRecord> {
  checkNames(spec);
  const revision = spec.rollbackTo?.revision ?? spec.revision;
  const existing = await readHostRecord(root, spec.plugin, revision);
  if (existing) {
    await verifyHostRelease(existing);
    return existing;
  }
  if (spec.rollbackTo) throw snapshotMissing(revision);
  if (!spec.host)
    throw new ActivationError(NodeReason.StageFailed, 'Runtime Host needs spec.host; none was given.');
  const stagingReal = await realpath(stagingRoot).catch((e: Error) => {
    throw new ActivationError(
      NodeReason.StageFailed,
      `The agent's staging root ${stagingRoot} is unusable: ${e.message}.`,
    );
  });

  const releases = hostReleasesDir(root, spec.plugin);
  const final = hostReleaseDir(root, spec.plugin, revision);
  await mkdir(releases, { recursive: true });
  const tmp = join(releases, `.${revision}.staging-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(tmp);
    let config: HostRecord['config'];
    if (spec.config) {
      const source = await inStagingRoot(stagingReal, spec.config.path, 'config');
      const { size } = await lstat(source);
      if (size > MAX_CONFIG_BYTES) {
        throw new ActivationError(
          NodeReason.StageFailed,
          `The config ${spec.config.path} is ${size} bytes; a host config may have at most ${MAX_CONFIG_BYTES}.`,
        );
      }
      await copyRegularFile(
        Buffer.from(source),
        Buffer.from(join(tmp, 'config')),
        'config',
        spec.config.path,
      );
      const got = await digestOrWhy(join(tmp, 'config'));
      if (got !== spec.config.digest) {
        throw new ActivationError(
          NodeReason.ConfigDigestMismatch,
          `The config ${spec.config.path} has digest ${got}, not the ${spec.config.digest} the release names.`,
        );
      }
      config = { path: join(final, 'config'), digest: got, contentType: configContentType(spec.config.path) };
    }
    let artifact: HostRecord['artifact'];
    if (spec.artifact) {
      const source = await inStagingRoot(stagingReal, spec.artifact.path, 'artifact');
      const copy = join(tmp, 'artifact');
      const st = await lstat(source);
      if (st.isDirectory()) {
        await copyDirectory(Buffer.from(source), Buffer.from(copy), 0, st.mode);
        await checkCopiedSymlinks(Buffer.from(copy), Buffer.from(copy), Buffer.from(source));
        await checkManifest(copy, spec);
      } else if (st.isFile()) {
        await copyRegularFile(Buffer.from(source), Buffer.from(copy), 'artifact', spec.artifact.path);
      } else {
        throw new ActivationError(
          NodeReason.UnsupportedFileType,
          `The artifact ${spec.artifact.path} is ${fileTypeName(st)}; a plugin is a file or a directory.`,
        );
      }
      const got = await digestOrWhy(copy);
      if (got !== spec.artifact.digest) {
        throw new ActivationError(
          NodeReason.DigestMismatch,
          `The artifact ${spec.artifact.path} has digest ${got}, not the ${spec.artifact.digest} the release names; stage the right artifact or fix the digest.`,
        );
      }
      artifact = { path: join(final, 'artifact'), digest: got };
    }
    await fsyncDir(tmp);
    await rm(final, { recursive: true, force: true }); // an earlier incomplete attempt
    await rename(tmp, final);
    await fsyncDir(releases);
    const record: HostRecord = {
      runtime: 'Host',
      revision,
      version: spec.version,
      node: spec.nodeName,
      host: spec.host,
      ...(config ? { config } : {}),
      ...(artifact ? { artifact } : {}),
      stagedAt: now.toISOString(),
    };
    await writeFileAtomic(join(final, COMPLETE_MARKER), `${JSON.stringify(record, null, 2)}\n`);
    return record;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
