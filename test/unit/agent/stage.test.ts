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
  const cases: { name: string; kind: Kind; entrypoint?: string; want: string }[] = [
    { name: 'a file artifact is its own entrypoint', kind: 'file', entrypoint: 'ignored', want: '' },
    {
      name: 'a directory artifact names its entrypoint',
      kind: 'directory',
      entrypoint: 'bin/echo',
      want: 'bin/echo',
    },
    { name: 'a directory artifact without an entrypoint', kind: 'directory', want: 'EntrypointNotFound' },
    {
      name: 'an entrypoint that climbs out',
      kind: 'directory',
      entrypoint: '../echo',
      want: 'EntrypointNotFound',
    },
    { name: 'an absolute entrypoint', kind: 'directory', entrypoint: '/bin/sh', want: 'EntrypointNotFound' },
    {
      name: 'an entrypoint with a "." segment',
      kind: 'directory',
      entrypoint: './echo',
      want: 'EntrypointNotFound',
    },
    { name: 'a FIFO', kind: 'fifo', want: 'UnsupportedFileType' },
    { name: 'a socket', kind: 'socket', want: 'UnsupportedFileType' },
    { name: 'a character device', kind: 'charDevice', want: 'UnsupportedFileType' },
  ];
  it.each(cases)('$name: $want', ({ kind, entrypoint, want }) => {
    const artifact = { path: '/staging/echo', ...(entrypoint ? { entrypoint } : {}) };
    let got: string;
    try {
      got = checkArtifact(statOf(kind), artifact);
    } catch (error) {
      expect(error).toBeInstanceOf(ActivationError);
      got = (error as ActivationError).reason;
    }
    expect(got).toBe(want);
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
