// Structural-schema pruning, as the API server prunes custom resources: what is dropped, what is kept,
// and the paths reported for fieldValidation (try-activate refuses a release that has any).
import { describe, expect, it } from 'vitest';
import { type JsonObject, prune, type Schema } from '../../../src/api/prune.ts';

const schema: Schema = {
  type: 'object',
  properties: {
    spec: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        items: { type: 'array', items: { type: 'object', properties: { k: { type: 'string' } } } },
        map: { type: 'object', additionalProperties: { type: 'string' } },
        free: {
          type: 'object',
          properties: { known: { type: 'string' } },
          'x-kubernetes-preserve-unknown-fields': true,
        },
        closed: { type: 'object' },
        raw: {
          type: 'object',
          'x-kubernetes-embedded-resource': true,
          'x-kubernetes-preserve-unknown-fields': true,
        },
        template: {
          type: 'object',
          'x-kubernetes-embedded-resource': true,
          properties: { spec: { type: 'object', properties: { a: { type: 'string' } } } },
        },
      },
    },
  },
};

describe('prune', () => {
  it.each<{ name: string; given: JsonObject; dropped: string[]; kept: JsonObject }>([
    {
      name: 'keeps TypeMeta and the fields of ObjectMeta at the root, drops other metadata',
      given: { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'n', labels: { a: 'b' }, bogus: 1 } },
      dropped: ['metadata.bogus'],
      kept: { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'n', labels: { a: 'b' } } },
    },
    {
      name: 'drops undeclared fields at the root and in objects, naming their paths',
      given: { spec: { name: 'a', helth: {} }, top: true },
      dropped: ['spec.helth', 'top'],
      kept: { spec: { name: 'a' } },
    },
    {
      name: 'prunes inside array items, naming the index',
      given: { spec: { items: [{ k: 'v' }, { k: 'w', drop: 1 }] } },
      dropped: ['spec.items[1].drop'],
      kept: { spec: { items: [{ k: 'v' }, { k: 'w' }] } },
    },
    {
      name: 'keeps any key of a map (additionalProperties)',
      given: { spec: { map: { anything: 'kept' } } },
      dropped: [],
      kept: { spec: { map: { anything: 'kept' } } },
    },
    {
      name: 'keeps undeclared fields beside declared ones under x-kubernetes-preserve-unknown-fields',
      given: { spec: { free: { known: 'a', deep: { er: 1 } } } },
      dropped: [],
      kept: { spec: { free: { known: 'a', deep: { er: 1 } } } },
    },
    {
      name: 'drops every field of an object that declares none',
      given: { spec: { closed: { any: 1 } } },
      dropped: ['spec.closed.any'],
      kept: { spec: { closed: {} } },
    },
    {
      name: 'treats an embedded resource as a root: TypeMeta kept, its own unknown fields dropped',
      given: { spec: { template: { apiVersion: 'v1', kind: 'Y', spec: { a: 'x', b: 'y' } } } },
      dropped: ['spec.template.spec.b'],
      kept: { spec: { template: { apiVersion: 'v1', kind: 'Y', spec: { a: 'x' } } } },
    },
    {
      name: 'drops unknown metadata of an embedded resource whose other fields are free',
      given: {
        spec: { raw: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', x: 1 }, data: {} } },
      },
      dropped: ['spec.raw.metadata.x'],
      kept: { spec: { raw: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: {} } } },
    },
  ])('$name', ({ given, dropped, kept }) => {
    expect(prune(given, schema).sort()).toEqual(dropped);
    expect(given).toEqual(kept);
  });
});
