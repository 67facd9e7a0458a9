import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatIssues, PluginRelease, PluginReleaseSpec } from '../../../src/api/index.ts';
import { aRelease } from '../../support/builders.ts';

describe('PluginRelease spec validation', () => {
  const rejected: { name: string; patch: Record<string, unknown>; field: string; says: RegExp }[] = [
    {
      name: 'a digest without the sha256 prefix',
      patch: { artifact: { digest: 'a'.repeat(64) } },
      field: 'spec.artifact.digest',
      says: /sha256/,
    },
    {
      name: 'an upper-case digest',
      patch: { artifact: { digest: `sha256:${'A'.repeat(64)}` } },
      field: 'spec.artifact.digest',
      says: /lowercase hex/,
    },
    {
      name: 'a short config digest',
      patch: { config: { path: '/etc/echo.json', digest: 'sha256:abc' } },
      field: 'spec.config.digest',
      says: /64/,
    },
    {
      name: 'a negative failure threshold',
      patch: { health: { probes: [{ grpc: {}, failureThreshold: -1 }] } },
      field: 'spec.health.probes.0.failureThreshold',
      says: />=1/,
    },
    {
      name: 'a zero period',
      patch: { health: { probes: [{ tcpSocket: {}, periodSeconds: 0 }] } },
      field: 'spec.health.probes.0.periodSeconds',
      says: />=1/,
    },
    {
      name: 'a probe with two kinds',
      patch: { health: { probes: [{ grpc: {}, tcpSocket: {} }] } },
      field: 'spec.health.probes.0',
      says: /exactly one of grpc, httpGet, tcpSocket or exec/,
    },
    {
      name: 'a probe with no kind',
      patch: { health: { probes: [{ periodSeconds: 1 }] } },
      field: 'spec.health.probes.0',
      says: /exactly one/,
    },
    {
      name: 'an unknown strategy',
      patch: { activation: { strategy: 'BlueGreen' } },
      field: 'spec.activation.strategy',
      says: /TryActivate|Recreate/,
    },
    {
      name: 'an unknown failure policy',
      patch: { rollout: { failurePolicy: 'Ignore' } },
      field: 'spec.rollout.failurePolicy',
      says: /Halt|RollbackFleet/,
    },
    {
      name: 'a relative artifact path',
      patch: { artifact: { path: 'staging/echo' } },
      field: 'spec.artifact.path',
      says: /absolute path/,
    },
    {
      name: 'an artifact path with ..',
      patch: { artifact: { path: '/staging/../etc/passwd' } },
      field: 'spec.artifact.path',
      says: /"\.\."/,
    },
    {
      name: 'an entrypoint escaping the artifact with ..',
      patch: { artifact: { entrypoint: '../../bin/sh' } },
      field: 'spec.artifact.entrypoint',
      says: /inside the artifact/,
    },
    {
      name: 'an entrypoint with .. in the middle',
      patch: { artifact: { entrypoint: 'bin/../../sh' } },
      field: 'spec.artifact.entrypoint',
      says: /inside the artifact/,
    },
    {
      name: 'an absolute entrypoint',
      patch: { artifact: { entrypoint: '/bin/sh' } },
      field: 'spec.artifact.entrypoint',
      says: /relative path/,
    },
    {
      name: 'a plugin name that is not a DNS label',
      patch: { plugin: 'Echo_Plugin' },
      field: 'spec.plugin',
      says: /RFC 1123/,
    },
    {
      name: 'a percentage over 100',
      patch: { rollout: { maxUnavailable: '150%' } },
      field: 'spec.rollout.maxUnavailable',
      says: /percentage/,
    },
    {
      name: 'a zero maxUnavailable',
      patch: { rollout: { maxUnavailable: 0 } },
      field: 'spec.rollout.maxUnavailable',
      says: />=1|percentage/,
    },
    {
      name: 'a serve address that is not unix or tcp',
      patch: { serve: { address: 'http://localhost:80' } },
      field: 'spec.serve.address',
      says: /unix:\/\/\/|tcp:\/\//,
    },
    {
      name: 'a magic cookie key that is not an environment variable name',
      patch: { handshake: { magicCookie: { key: 'MY-COOKIE', value: 'x' } } },
      field: 'spec.handshake.magicCookie.key',
      says: /environment variable/,
    },
  ];

  it.each(rejected)('rejects $name, naming $field', ({ patch, field, says }) => {
    const result = PluginReleaseSpec.safeParse(aRelease().withSpec(patch).specInput());
    expect(result.success).toBe(false);
    const message = formatIssues(result.error!, 'spec');
    expect(message).toContain(`${field}:`);
    expect(message).toMatch(says);
  });

  it('accepts a relative entrypoint whose names merely start with dots', () => {
    const spec = aRelease()
      .withSpec({ artifact: { entrypoint: '.bin/..plugin' } })
      .specInput();
    expect(PluginReleaseSpec.safeParse(spec).success).toBe(true);
  });

  it('fills every documented default into a minimal spec', () => {
    const spec = PluginReleaseSpec.parse(aRelease().specInput());
    expect(spec).toMatchObject({
      handshake: {
        protocolVersions: [1],
        requiredCapabilities: [],
        timeoutSeconds: 10,
        magicCookie: { key: 'PLUGIN_RELEASE_MAGIC_COOKIE' },
      },
      health: { probes: [], soakSeconds: 0 },
      activation: { strategy: 'TryActivate', drainSeconds: 5, verifySeconds: 5 },
      rollout: {
        nodeSelector: {},
        maxUnavailable: 1,
        canary: { nodes: 0, pauseAfter: false },
        paused: false,
        failurePolicy: 'Halt',
        progressDeadlineSeconds: 600,
      },
      dryRun: false,
      retention: { keepSnapshots: 2 },
    });
  });

  it('fills probe defaults, including the go-plugin health service name', () => {
    const spec = PluginReleaseSpec.parse(
      aRelease()
        .withSpec({ health: { probes: [{ grpc: {} }] } })
        .specInput(),
    );
    expect(spec.health.probes[0]).toEqual({
      grpc: { service: 'plugin' },
      periodSeconds: 2,
      timeoutSeconds: 2,
      successThreshold: 1,
      failureThreshold: 3,
    });
  });
});

describe('examples', () => {
  const dir = join(import.meta.dirname, '../../../examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

  it('ships the minimal, canary, dry-run and Recreate examples', () => {
    expect(files.sort()).toEqual(
      expect.arrayContaining(['canary.yaml', 'dry-run.yaml', 'minimal.yaml', 'recreate.yaml']),
    );
  });

  it.each(files)('%s is a valid PluginRelease', (file) => {
    const doc = parse(readFileSync(join(dir, file), 'utf8'));
    const result = PluginRelease.safeParse(doc);
    expect(result.success ? '' : formatIssues(result.error)).toBe('');
  });
});
