// The PluginActivation names the agent turns into paths (revision, rollbackTo.revision) and the names
// beside them are refused when hostile, both by the zod schema and by the committed CRD the API server
// enforces (docs/security.md). A revision the controller computes always passes.
import { describe, expect, it } from 'vitest';
import { readCrds } from '../../../dev/cluster/crds.ts';
import { validate } from '../../../dev/cluster/schema.ts';
import {
  PluginActivationSpec,
  type PluginActivationSpecInput,
  PluginReleaseSpec,
  revisionOf,
} from '../../../src/api/index.ts';
import type { Schema } from '../../../src/api/prune.ts';

const anActivation = (overrides: Partial<PluginActivationSpecInput> = {}): PluginActivationSpecInput => ({
  release: { name: 'echo' },
  nodeName: 'node-1',
  plugin: 'echo',
  version: '2.0.0',
  revision: '3f2a9c0d1e4b',
  artifact: { path: '/var/lib/plugin-release/staging/echo', digest: `sha256:${'a'.repeat(64)}` },
  ...overrides,
});

const crd = readCrds().find((c) => c.spec.names.kind === 'PluginActivation')!;
const specSchema = (crd.spec.versions[0] as { schema: { openAPIV3Schema: Schema } }).schema.openAPIV3Schema
  .properties!.spec!;

/** Both doors: the zod schema (controller, agent, try-activate) and the CRD (the API server). */
function accepted(spec: PluginActivationSpecInput): { zod: boolean; crd: boolean } {
  return {
    zod: PluginActivationSpec.safeParse(spec).success,
    crd: validate(spec, specSchema, 'spec').length === 0,
  };
}

const HOSTILE_REVISIONS = [
  '../../../victim',
  '../../../../victim',
  '..',
  '.',
  'a/b',
  '/abs',
  'Rev',
  'rev_1',
  'rev.1',
  '-rev',
  'rev-',
  'rev\n',
  '',
  'r'.repeat(64),
];

describe('PluginActivation revisions', () => {
  it.each(HOSTILE_REVISIONS)('refuses spec.revision %j at the schema and the CRD', (revision) => {
    expect(accepted(anActivation({ revision }))).toEqual({ zod: false, crd: false });
  });

  it.each(HOSTILE_REVISIONS)('refuses spec.rollbackTo.revision %j at the schema and the CRD', (revision) => {
    expect(accepted(anActivation({ rollbackTo: { revision } }))).toEqual({ zod: false, crd: false });
  });

  it.each(['3f2a9c0d1e4b', 'rev-new', 'r0123456789', 'a'])('accepts %j', (revision) => {
    expect(accepted(anActivation({ revision, rollbackTo: { revision } }))).toEqual({ zod: true, crd: true });
  });

  it('accepts every revision the controller computes', () => {
    for (let i = 0; i < 200; i++) {
      const spec = PluginReleaseSpec.parse({
        plugin: 'echo',
        version: `1.${i}.0`,
        artifact: { path: '/var/lib/plugin-release/staging/echo', digest: `sha256:${'b'.repeat(64)}` },
      });
      const revision = revisionOf(spec);
      expect(revision).toMatch(/^[0-9a-f]{12}$/);
      expect(accepted(anActivation({ revision }))).toEqual({ zod: true, crd: true });
    }
  });
});

describe('PluginActivation names beside the revision, as strict as the release schema', () => {
  const cases: { name: string; overrides: Partial<PluginActivationSpecInput> }[] = [
    { name: 'a plugin name with a path in it', overrides: { plugin: '../etc' } },
    { name: 'an upper-case plugin name', overrides: { plugin: 'Echo' } },
    { name: 'a release name with a slash', overrides: { release: { name: 'a/b' } } },
    { name: 'an empty release name', overrides: { release: { name: '' } } },
    { name: 'a node name with a slash', overrides: { nodeName: 'node/../1' } },
    { name: 'a node name with spaces', overrides: { nodeName: 'node 1' } },
  ];
  it.each(cases)('refuses $name at the schema and the CRD', ({ overrides }) => {
    expect(accepted(anActivation(overrides))).toEqual({ zod: false, crd: false });
  });

  it('accepts node names that are DNS subdomains', () => {
    expect(accepted(anActivation({ nodeName: 'ip-10-0-1-17.eu-west-1.compute.internal' }))).toEqual({
      zod: true,
      crd: true,
    });
  });
});
