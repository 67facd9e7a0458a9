import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generatedCrds, renderCrd } from '../../../src/api/crd.ts';
import { renderReference } from '../../../src/api/reference.ts';

const crdDir = join(import.meta.dirname, '../../../crds');
const crds = Object.entries(generatedCrds());

type Node = Record<string, unknown>;

/** Walks every schema node, calling `visit` with its JSON path. */
function walk(node: Node, path: string, visit: (node: Node, path: string) => void) {
  visit(node, path);
  for (const [k, v] of Object.entries((node.properties as Record<string, Node>) ?? {}))
    walk(v, `${path}.${k}`, visit);
  if (node.items) walk(node.items as Node, `${path}[]`, visit);
  if (typeof node.additionalProperties === 'object')
    walk(node.additionalProperties as Node, `${path}{}`, visit);
}

describe.each(crds)('%s', (file, crd) => {
  it('matches the committed file byte for byte (run `npm run gen:crds` after changing src/api)', () => {
    expect(readFileSync(join(crdDir, file), 'utf8')).toBe(renderCrd(crd));
  });

  const schema = parse(renderCrd(crd)).spec.versions[0].schema.openAPIV3Schema as Node;

  it('is structural: a type on every node, no $schema, $ref, propertyNames or properties beside additionalProperties', () => {
    const problems: string[] = [];
    walk(schema, '', (node, path) => {
      for (const banned of ['$schema', '$ref', 'propertyNames', 'anyOf', 'allOf', 'not', 'nullable']) {
        if (banned in node) problems.push(`${path}: has ${banned}`);
      }
      if (!node.type && !node['x-kubernetes-int-or-string']) problems.push(`${path}: has no type`);
      if (node.properties && 'additionalProperties' in node)
        problems.push(`${path}: properties and additionalProperties`);
      if (node['x-kubernetes-int-or-string'] && node.type)
        problems.push(`${path}: int-or-string with a type`);
    });
    expect(problems).toEqual([]);
  });

  it('uses only patterns RE2 can compile (no lookaround or backreferences)', () => {
    const patterns: string[] = [];
    walk(schema, '', (node) => node.pattern && patterns.push(node.pattern as string));
    expect(patterns.length).toBeGreaterThan(0);
    for (const p of patterns) expect(p).not.toMatch(/\(\?[=!<]|\\[1-9]/);
  });

  it('has a status subresource and the printer columns kubectl shows', () => {
    const version = parse(renderCrd(crd)).spec.versions[0];
    expect(version.subresources).toEqual({ status: {} });
    expect(version.additionalPrinterColumns.length).toBeGreaterThanOrEqual(4);
  });
});

describe('PluginRelease CRD', () => {
  const plr = parse(renderCrd(generatedCrds()['pluginrelease.io_pluginreleases.yaml']!));
  const spec = plr.spec.versions[0].schema.openAPIV3Schema.properties.spec;
  const status = plr.spec.versions[0].schema.openAPIV3Schema.properties.status;

  it('shows PLUGIN, VERSION, READY, UP-TO-DATE, STATUS and AGE in kubectl get plr', () => {
    const columns = plr.spec.versions[0].additionalPrinterColumns
      .filter((c: Node) => !c.priority)
      .map((c: Node) => String(c.name).toUpperCase());
    expect(columns).toEqual(['PLUGIN', 'VERSION', 'READY', 'UP-TO-DATE', 'STATUS', 'AGE']);
    expect(plr.spec.names).toMatchObject({ shortNames: ['plr'], categories: ['pluginreleases-all'] });
  });

  it('declares maxUnavailable int-or-string and conditions a list-map keyed by type', () => {
    expect(spec.properties.rollout.properties.maxUnavailable['x-kubernetes-int-or-string']).toBe(true);
    // The controller's bounds, per branch: minimum constrains only integers, pattern only strings.
    expect(spec.properties.rollout.properties.maxUnavailable).toMatchObject({
      minimum: 1,
      pattern: '^(100|[1-9]?[0-9])%$',
    });
    expect(spec.properties.rollout.properties.maxUnavailable.anyOf).toBeUndefined();
    expect(status.properties.conditions['x-kubernetes-list-type']).toBe('map');
    expect(status.properties.conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
  });

  it('lets the API server enforce one probe kind per probe', () => {
    expect(spec.properties.health.properties.probes.items.oneOf).toHaveLength(4);
  });

  it('carries defaults so the API server fills them in as zod does', () => {
    expect(spec.properties.activation.properties.strategy.default).toBe('TryActivate');
    expect(spec.properties.rollout.default).toEqual({});
  });
});

describe('docs/api-reference.md', () => {
  it('matches what the generator renders (run `npm run gen:crds` after changing src/api)', () => {
    expect(readFileSync(join(crdDir, '../docs/api-reference.md'), 'utf8')).toBe(renderReference());
  });
});
