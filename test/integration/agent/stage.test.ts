// Stage against hostile and broken inputs on a real filesystem: each ends in its named reason, with
// no `.complete` written and the active release untouched.
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stage } from '../../../src/agent/actions/stage.ts';
import { digestPath } from '../../../src/agent/digest.ts';
import { ActivationError } from '../../../src/agent/errors.ts';
import { isComplete } from '../../../src/agent/store.ts';
import { PluginActivationSpec, type PluginActivationSpecInput } from '../../../src/api/index.ts';

interface World {
  base: string;
  staging: string;
  root: string;
  /** A well-formed artifact directory inside the staging root. */
  artifact: string;
  config: string;
}

async function aWorld(): Promise<World> {
  const base = await mkdtemp(join(tmpdir(), 'stage-'));
  const staging = join(base, 'staging');
  const artifact = join(staging, 'echo', '2.0.0');
  await mkdir(artifact, { recursive: true });
  await writeFile(join(artifact, 'plugin'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const config = join(staging, 'echo.conf');
  await writeFile(config, 'greeting: hello\n');
  return { base, staging, root: join(base, 'root'), artifact, config };
}

async function specFor(w: World, overrides: Partial<PluginActivationSpecInput> = {}) {
  return PluginActivationSpec.parse({
    release: { name: 'echo' },
    nodeName: 'node-1',
    plugin: 'echo',
    version: '2.0.0',
    revision: 'rev-hostile',
    artifact: { path: w.artifact, digest: await digestPath(w.artifact), entrypoint: 'plugin' },
    config: { path: w.config, digest: await digestPath(w.config) },
    ...overrides,
  });
}

const STAGE_PROCESS = join(import.meta.dirname, '../../support/stage-process.ts');
const WRONG_DIGEST = `sha256:${'0'.repeat(64)}`;

const cases: {
  name: string;
  arrange: (w: World) => Promise<Partial<PluginActivationSpecInput>>;
  reason: string;
}[] = [
  {
    name: 'an artifact path that leaves the staging root through a symlink',
    arrange: async (w) => {
      const outside = join(w.base, 'elsewhere');
      await mkdir(outside);
      await writeFile(join(outside, 'plugin'), '#!/bin/sh\n', { mode: 0o755 });
      await symlink(outside, join(w.staging, 'sneaky'));
      return {
        artifact: {
          path: join(w.staging, 'sneaky'),
          digest: await digestPath(outside),
          entrypoint: 'plugin',
        },
      };
    },
    reason: 'ArtifactOutsideStagingRoot',
  },
  {
    name: 'an artifact outside the staging root',
    arrange: async (w) => {
      const outside = join(w.base, 'outside');
      await mkdir(outside);
      await writeFile(join(outside, 'plugin'), '#!/bin/sh\n', { mode: 0o755 });
      return { artifact: { path: outside, digest: await digestPath(outside), entrypoint: 'plugin' } };
    },
    reason: 'ArtifactOutsideStagingRoot',
  },
  {
    name: 'a symlink inside the artifact that points out of it',
    arrange: async (w) => {
      await symlink('/etc/passwd', join(w.artifact, 'passwd'));
      return {};
    },
    reason: 'UnsafeSymlink',
  },
  {
    name: 'an artifact whose digest does not match',
    arrange: async (w) => ({ artifact: { path: w.artifact, digest: WRONG_DIGEST, entrypoint: 'plugin' } }),
    reason: 'DigestMismatch',
  },
  {
    name: 'an artifact that is not there',
    arrange: async (w) => ({
      artifact: { path: join(w.staging, 'echo', '9.9.9'), digest: WRONG_DIGEST, entrypoint: 'plugin' },
    }),
    reason: 'ArtifactNotFound',
  },
  {
    name: 'an entrypoint missing from the artifact',
    arrange: async (w) => ({
      artifact: { path: w.artifact, digest: await digestPath(w.artifact), entrypoint: 'bin/missing' },
    }),
    reason: 'EntrypointNotFound',
  },
  {
    name: 'an entrypoint that is not executable',
    arrange: async (w) => {
      await chmod(join(w.artifact, 'plugin'), 0o644);
      return {};
    },
    reason: 'EntrypointNotFound',
  },
  {
    name: 'a config that is not there',
    arrange: async (w) => ({ config: { path: join(w.staging, 'missing.conf'), digest: WRONG_DIGEST } }),
    reason: 'ConfigNotFound',
  },
  {
    name: 'a config whose digest does not match',
    arrange: async (w) => ({ config: { path: w.config, digest: WRONG_DIGEST } }),
    reason: 'ConfigDigestMismatch',
  },
  {
    name: 'a plugin manifest that is not valid',
    arrange: async (w) => {
      await writeFile(join(w.artifact, 'plugin.json'), '{"name": 42}');
      return {};
    },
    reason: 'ManifestInvalid',
  },
  {
    name: 'a rollback to a snapshot the node does not keep',
    arrange: async () => ({ rollbackTo: { revision: 'rev-gone' } }),
    reason: 'SnapshotMissing',
  },
];

describe('stage rejects', () => {
  it.each(cases)('$name', async ({ arrange, reason }) => {
    const w = await aWorld();
    const overrides = await arrange(w);
    const spec = await specFor(w, overrides);
    const error = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(ActivationError);
    expect((error as ActivationError).reason).toBe(reason);
    expect((error as ActivationError).message.length).toBeGreaterThan(20);
    expect(await isComplete(w.root, 'echo', spec.rollbackTo?.revision ?? spec.revision)).toBe(false);
  });
});

describe('stage as an unprivileged agent', () => {
  // Root reads any file, so the unreadable case runs stage() in a child process as nobody (65534).
  const asRoot = process.getuid?.() === 0;

  it('rejects an artifact file it cannot read with ArtifactUnreadable', async () => {
    const w = await aWorld();
    await writeFile(join(w.artifact, 'secret.bin'), 'x');
    const spec = await specFor(w);
    await chmod(join(w.artifact, 'secret.bin'), 0o000);
    let outcome: { staged: boolean; reason?: string; message?: string };
    if (asRoot) {
      await chmod(w.base, 0o755);
      await mkdir(w.root, { recursive: true, mode: 0o777 });
      await chmod(w.root, 0o777);
      // Started as root and dropped to 65534 inside, so it runs wherever the clone lives.
      const run = spawnSync(
        process.execPath,
        [STAGE_PROCESS, w.root, w.staging, JSON.stringify(spec), '65534'],
        { encoding: 'utf8', timeout: 120_000 },
      );
      outcome = JSON.parse(run.stdout || `{"staged":false,"message":${JSON.stringify(run.stderr)}}`);
    } else {
      outcome = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() }).then(
        () => ({ staged: true }),
        (e: ActivationError) => ({ staged: false, reason: e.reason, message: e.message }),
      );
    }
    expect(outcome).toMatchObject({ staged: false, reason: 'ArtifactUnreadable' });
    expect(outcome.message).toMatch(/secret\.bin is not readable by the agent/);
    expect(await isComplete(w.root, 'echo', spec.revision)).toBe(false);
  });
});

describe('stage', () => {
  it('copies a sound artifact and its config and marks the release complete', async () => {
    const w = await aWorld();
    const spec = await specFor(w);
    const record = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() });
    expect(record.revision).toBe('rev-hostile');
    expect(await isComplete(w.root, 'echo', 'rev-hostile')).toBe(true);
    expect(await readdir(join(w.root, 'plugins', 'echo', 'releases'))).toEqual(['rev-hostile']);
  });

  it('leaves a release already staged alone when the same revision is staged again', async () => {
    const w = await aWorld();
    const spec = await specFor(w);
    const first = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() });
    const again = await stage({
      root: w.root,
      stagingRoot: w.staging,
      spec,
      now: new Date(Date.now() + 1000),
    });
    expect(again).toEqual(first);
  });
});
