// Stage's pure pieces: what an artifact may be (checkArtifact) and the record `.complete` holds.
import { describe, expect, it } from 'vitest';
import { checkArtifact, releaseRecord } from '../../../src/agent/actions/stage.ts';
import { ActivationError } from '../../../src/agent/errors.ts';
import { PluginActivationSpec, type PluginActivationSpecInput } from '../../../src/api/index.ts';
import { DIGEST_A, DIGEST_B } from '../../support/builders.ts';

type Kind = 'file' | 'directory' | 'fifo' | 'socket' | 'charDevice';
const statOf = (kind: Kind) => ({
  isFile: () => kind === 'file',
  isDirectory: () => kind === 'directory',
  isFIFO: () => kind === 'fifo',
  isSocket: () => kind === 'socket',
  isCharacterDevice: () => kind === 'charDevice',
  isBlockDevice: () => false,
});

describe('checkArtifact', () => {
  // name, what the artifact is, its entrypoint, and the entrypoint checkArtifact returns or the reason it throws
  const cases: [string, Kind, string | undefined, string][] = [
    ['a file artifact is its own entrypoint', 'file', 'ignored', ''],
    ['a directory artifact names its entrypoint', 'directory', 'bin/echo', 'bin/echo'],
    ['a directory artifact without an entrypoint', 'directory', undefined, 'EntrypointNotFound'],
    ['an entrypoint that climbs out', 'directory', '../echo', 'EntrypointNotFound'],
    ['an absolute entrypoint', 'directory', '/bin/sh', 'EntrypointNotFound'],
    ['an entrypoint with a "." segment', 'directory', './echo', 'EntrypointNotFound'],
    ['a FIFO', 'fifo', undefined, 'UnsupportedFileType'],
    ['a socket', 'socket', undefined, 'UnsupportedFileType'],
    ['a character device', 'charDevice', undefined, 'UnsupportedFileType'],
  ];
  /** What checkArtifact returns, or the reason of the ActivationError it throws. */
  const outcome = (kind: Kind, entrypoint: string | undefined): string => {
    const artifact = { path: '/staging/echo', ...(entrypoint ? { entrypoint } : {}) };
    try {
      return checkArtifact(statOf(kind), artifact);
    } catch (error) {
      if (error instanceof ActivationError) return error.reason;
      throw error;
    }
  };
  it.each(cases)('%s', (_, kind, entrypoint, want) => {
    expect(outcome(kind, entrypoint)).toBe(want);
  });
});

describe('releaseRecord', () => {
  const specWith = (overrides: Partial<PluginActivationSpecInput> = {}) =>
    PluginActivationSpec.parse({
      release: { name: 'echo' },
      nodeName: 'node-1',
      plugin: 'echo',
      version: '2.0.0',
      revision: 'rev-a',
      artifact: { path: '/staging/echo', digest: DIGEST_A, entrypoint: 'bin/echo', args: ['serve'] },
      ...overrides,
    });
  const at = {
    revision: 'rev-a',
    dir: '/root/rev-a',
    entrypoint: '/root/rev-a/artifact/bin/echo',
    now: new Date(0),
  };
  const recordOf = (spec: PluginActivationSpec) =>
    releaseRecord(spec, spec.artifact ?? { path: '', digest: '', args: [] }, at);

  it('names the entrypoint, args, digest and the node the plugin serves', () => {
    const record = recordOf(specWith());
    expect(record).toMatchObject({
      revision: 'rev-a',
      entrypoint: at.entrypoint,
      args: ['serve'],
      artifactDigest: DIGEST_A,
      env: { PLUGIN_RELEASE_NODE: 'node-1' },
      stagedAt: '1970-01-01T00:00:00.000Z',
    });
    expect(record.configPath).toBeUndefined();
  });

  it('lets spec.process.env override the node name', () => {
    const spec = specWith({ process: { env: [{ name: 'PLUGIN_RELEASE_NODE', value: 'edge' }] } });
    expect(recordOf(spec).env.PLUGIN_RELEASE_NODE).toBe('edge');
  });

  it('puts the config in the release directory, with its digest', () => {
    const record = recordOf(specWith({ config: { path: '/staging/echo.conf', digest: DIGEST_B } }));
    expect(record).toMatchObject({ configPath: '/root/rev-a/config', configDigest: DIGEST_B });
  });

  it('carries the identity the plugin runs as', () => {
    const record = recordOf(specWith({ process: { runAsUser: 1000, runAsGroup: 1000 } }));
    expect(record).toMatchObject({ runAsUser: 1000, runAsGroup: 1000 });
  });
});
