// Stages the example echo plugin as a release artifact (optionally with a payload) and builds the
// activation spec that names it, for benchmarks that drive the real node engine.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open } from 'node:fs/promises';
import { join } from 'node:path';
import { stageEcho } from '../../dev/demo/echo.ts';
import { PluginActivationSpec, type PluginActivationSpecInput } from '../../src/api/index.ts';

export const PLUGIN = 'echo';

export interface EchoArtifact {
  /** The artifact directory (spec.artifact.path), inside the staging root. */
  path: string;
  digest: string;
  version: string;
}

/**
 * Writes a file of `bytes` (a random 1 MiB block repeated: content does not change copy or sha256
 * cost, and writing it stays fast). Used as an artifact payload so staging copies and hashes real bytes.
 */
export async function writePayload(path: string, bytes: number): Promise<void> {
  const block = randomBytes(Math.min(bytes, 2 ** 20));
  const handle = await open(path, 'w');
  try {
    for (let written = 0; written < bytes; written += block.length)
      await handle.write(block, 0, Math.min(block.length, bytes - written));
  } finally {
    await handle.close();
  }
}

/** Stages the example plugin in a fresh `<stagingRoot>/echo-<version>-XXXXXX/`, with `payload` linked in. */
export async function stageEchoArtifact(
  stagingRoot: string,
  version: string,
  payload?: string,
): Promise<EchoArtifact> {
  await mkdir(stagingRoot, { recursive: true });
  const path = await mkdtemp(join(stagingRoot, `echo-${version}-`));
  const { digest } = await stageEcho(path, version, payload);
  return { path, digest, version };
}

/** The activation spec for `artifact` as revision `revision`, with `overrides` on top. */
export function echoSpec(
  artifact: EchoArtifact,
  revision: string,
  overrides: Partial<PluginActivationSpecInput> = {},
): PluginActivationSpec {
  return PluginActivationSpec.parse({
    release: { name: PLUGIN },
    nodeName: 'bench-node',
    plugin: PLUGIN,
    version: artifact.version,
    revision,
    artifact: { path: artifact.path, digest: artifact.digest, entrypoint: 'plugin' },
    handshake: { timeoutSeconds: 10 },
    ...overrides,
  });
}
