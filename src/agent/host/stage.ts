import { lstat, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { NodeReason, type PluginActivationSpec } from '../../api/index.ts';
import {
  checkCopiedSymlinks,
  checkManifest,
  checkNames,
  copyDirectory,
  copyRegularFile,
  ioError,
  realStagingRoot,
  snapshotMissing,
  stageRevision,
} from '../actions/stage.ts';
import { digestPath, fileTypeName } from '../digest.ts';
import { ActivationError } from '../errors.ts';
import { isInside } from '../store.ts';
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
  const { host } = spec;
  if (!host)
    throw new ActivationError(NodeReason.StageFailed, 'Runtime Host needs spec.host; none was given.');
  const stagingReal = await realStagingRoot(stagingRoot);
  const final = hostReleaseDir(root, spec.plugin, revision);
  return stageRevision(hostReleasesDir(root, spec.plugin), final, revision, async (tmp) => {
    const config = spec.config ? await stageHostConfig(stagingReal, spec.config, tmp, final) : undefined;
    const artifact = spec.artifact
      ? await stageHostPlugin(stagingReal, spec, spec.artifact, tmp, final)
      : undefined;
    const record: HostRecord = {
      runtime: 'Host',
      revision,
      version: spec.version,
      node: spec.nodeName,
      host,
      ...(config ? { config } : {}),
      ...(artifact ? { artifact } : {}),
      stagedAt: now.toISOString(),
    };
    return record;
  });
}

/** The candidate config, copied into `tmp` and checked against its digest; its record names `final`. */
async function stageHostConfig(
  stagingReal: string,
  config: NonNullable<PluginActivationSpec['config']>,
  tmp: string,
  final: string,
): Promise<NonNullable<HostRecord['config']>> {
  const source = await inStagingRoot(stagingReal, config.path, 'config');
  const { size } = await lstat(source);
  if (size > MAX_CONFIG_BYTES) {
    throw new ActivationError(
      NodeReason.StageFailed,
      `The config ${config.path} is ${size} bytes; a host config may have at most ${MAX_CONFIG_BYTES}.`,
    );
  }
  await copyRegularFile(Buffer.from(source), Buffer.from(join(tmp, 'config')), 'config', config.path);
  const got = await digestOrWhy(join(tmp, 'config'));
  if (got !== config.digest) {
    throw new ActivationError(
      NodeReason.ConfigDigestMismatch,
      `The config ${config.path} has digest ${got}, not the ${config.digest} the release names.`,
    );
  }
  return { path: join(final, 'config'), digest: got, contentType: configContentType(config.path) };
}

/** The plugin to install into the host, copied into `tmp` and checked against its digest. */
async function stageHostPlugin(
  stagingReal: string,
  spec: PluginActivationSpec,
  artifact: NonNullable<PluginActivationSpec['artifact']>,
  tmp: string,
  final: string,
): Promise<NonNullable<HostRecord['artifact']>> {
  const source = await inStagingRoot(stagingReal, artifact.path, 'artifact');
  const copy = join(tmp, 'artifact');
  const st = await lstat(source);
  if (st.isDirectory()) {
    await copyDirectory(Buffer.from(source), Buffer.from(copy), 0, st.mode);
    await checkCopiedSymlinks(Buffer.from(copy), Buffer.from(copy), Buffer.from(source));
    await checkManifest(copy, spec);
  } else if (st.isFile()) {
    await copyRegularFile(Buffer.from(source), Buffer.from(copy), 'artifact', artifact.path);
  } else {
    throw new ActivationError(
      NodeReason.UnsupportedFileType,
      `The artifact ${artifact.path} is ${fileTypeName(st)}; a plugin is a file or a directory.`,
    );
  }
  const got = await digestOrWhy(copy);
  if (got !== artifact.digest) {
    throw new ActivationError(
      NodeReason.DigestMismatch,
      `The artifact ${artifact.path} has digest ${got}, not the ${artifact.digest} the release names; stage the right artifact or fix the digest.`,
    );
  }
  return { path: join(final, 'artifact'), digest: got };
}
