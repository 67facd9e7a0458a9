import { describe, expect, it } from 'vitest';
import { canonicalJson, PluginReleaseSpec, revisionOf } from '../../../src/api/index.ts';
import { aRelease, DIGEST_B } from '../../support/builders.ts';

const revision = (b: ReturnType<typeof aRelease>) => revisionOf(PluginReleaseSpec.parse(b.specInput()));

describe('revisionOf', () => {
  it('is a 12-character hex name', () => {
    expect(revision(aRelease())).toMatch(/^[0-9a-f]{12}$/);
  });

  it('does not change when a default is written out explicitly', () => {
    const explicit = aRelease().withSpec({ handshake: { protocolVersions: [1], timeoutSeconds: 10 } });
    expect(revision(explicit)).toBe(revision(aRelease()));
  });

  const changes: { name: string; patch: Parameters<ReturnType<typeof aRelease>['withSpec']>[0] }[] = [
    { name: 'the version', patch: { version: '1.0.1' } },
    { name: 'the artifact digest', patch: { artifact: { digest: DIGEST_B } } },
    { name: 'the config', patch: { config: { path: '/staging/echo.json', digest: DIGEST_B } } },
    { name: 'the accepted protocol versions', patch: { handshake: { protocolVersions: [2] } } },
    { name: 'the serve address', patch: { serve: { address: 'tcp://127.0.0.1:9000' } } },
  ];
  it.each(changes)('changes with $name', ({ patch }) => {
    expect(revision(aRelease().withSpec(patch))).not.toBe(revision(aRelease()));
  });

  const keeps: typeof changes = [
    { name: 'the rollout', patch: { rollout: { maxUnavailable: '50%', paused: true } } },
    { name: 'the probes', patch: { health: { probes: [{ tcpSocket: {} }] } } },
    { name: 'the activation timings', patch: { activation: { drainSeconds: 30 } } },
    { name: 'dryRun', patch: { dryRun: true } },
  ];
  it.each(keeps)('stays the same across $name', ({ patch }) => {
    expect(revision(aRelease().withSpec(patch))).toBe(revision(aRelease()));
  });
});

describe('canonicalJson', () => {
  it('orders keys so equal objects serialise equally', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe(canonicalJson({ a: [{ c: 3, d: 2 }], b: 1 }));
  });
});
