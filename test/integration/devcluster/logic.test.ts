// Table tests for the dev cluster's pure parts: selectors, structural schema defaulting and validation,
// patches, JSONPath and durations, Status rendering, the store's history, and the serving certificate.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { evaluateJsonPath } from '../../../dev/cluster/jsonpath.ts';
import {
  applyManagedFields,
  managerFromUserAgent,
  mergeApplied,
  type OwnershipContext,
  updateManagedFields,
} from '../../../dev/cluster/managedfields.ts';
import {
  applyJsonPatch,
  JsonPatchError,
  mergePatch,
  strategicMergePatch,
} from '../../../dev/cluster/patch.ts';
import { applyDefaults, validate } from '../../../dev/cluster/schema.ts';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
} from '../../../dev/cluster/selectors.ts';
import { ApiError, errors, field, fieldErrorString } from '../../../dev/cluster/status.ts';
import { CompactedError, Store } from '../../../dev/cluster/store.ts';
import { createServingCertificate } from '../../../dev/cluster/tls.ts';
import type { Schema } from '../../../src/api/prune.ts';

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'front', n: '5' };
  it.each([
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['missing!=x', true],
    ['app in (db, web)', true],
    ['app notin (web)', false],
    ['tier', true],
    ['!tier', false],
    ['!missing', true],
    ['n>4', true],
    ['n<5', false],
    ['app=web,tier=back', false],
    ['pluginrelease.io/node=node-1', false],
  ])('%j matches %j', (selector, expected) => {
    expect(matchesLabels(parseLabelSelector(selector), labels)).toBe(expected);
  });

  it.each([['app in web'], ['app=('], ['=x'], ['app in (a'], ['bad key!=x'], ['a=b c']])(
    'rejects %j with 400',
    (s) => {
      const error = (() => {
        try {
          parseLabelSelector(s);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).code).toBe(400);
    },
  );
});

describe('field selectors', () => {
  const fields: Record<string, string> = { 'metadata.name': 'a,b', 'metadata.namespace': 'ns' };
  it.each([
    ['metadata.name=a\\,b', true],
    ['metadata.name==a\\,b', true],
    ['metadata.name!=a\\,b', false],
    ['metadata.namespace=ns,metadata.name!=x', true],
  ])('%j matches %j', (selector, expected) => {
    const parsed = parseFieldSelector(selector, Object.keys(fields));
    expect(matchesFields(parsed, (f) => fields[f])).toBe(expected);
  });

  it('refuses an unsupported field label', () => {
    expect(() => parseFieldSelector('spec.x=1', ['metadata.name'])).toThrow(
      'field label not supported: spec.x',
    );
  });
});

describe('structural schema', () => {
  const schema: Schema = {
    type: 'object',
    required: ['spec'],
    properties: {
      spec: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 5, pattern: '^[a-z]+$' },
          count: { type: 'integer', minimum: 1, maximum: 3, default: 1 },
          mode: { type: 'string', enum: ['A', 'B'], default: 'A' },
          nested: { type: 'object', default: {}, properties: { flag: { type: 'boolean', default: true } } },
          items: {
            type: 'array',
            maxItems: 2,
            items: { type: 'object', properties: { k: { type: 'string' } } },
          },
          map: { type: 'object', additionalProperties: { type: 'string' } },
          when: { type: 'string', format: 'date-time' },
          port: { 'x-kubernetes-int-or-string': true },
          conditions: {
            type: 'array',
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['type'],
            items: { type: 'object', properties: { type: { type: 'string' } } },
          },
          probe: {
            type: 'object',
            properties: { a: { type: 'object' }, b: { type: 'object' } },
            oneOf: [{ required: ['a'] }, { required: ['b'] }],
          },
        },
      },
    },
  };

  it.each([
    [{ name: 'ok' }, []],
    [{}, ['spec.name: Required value']],
    [{ name: 'ABC' }, [`spec.name: Invalid value: "ABC": spec.name in body should match '^[a-z]+$'`]],
    [
      { name: '' },
      [
        'spec.name: Invalid value: "": spec.name in body should be at least 1 chars long',
        `spec.name: Invalid value: "": spec.name in body should match '^[a-z]+$'`,
      ],
    ],
    [{ name: 'abcdef' }, ['spec.name: Too long: may not be more than 5 bytes']],
    [
      { name: 'a', count: 0 },
      ['spec.count: Invalid value: 0: spec.count in body should be greater than or equal to 1'],
    ],
    [
      { name: 'a', count: 4 },
      ['spec.count: Invalid value: 4: spec.count in body should be less than or equal to 3'],
    ],
    [
      { name: 'a', count: 1.5 },
      ['spec.count: Invalid value: "number": spec.count in body must be of type integer: "number"'],
    ],
    [{ name: 'a', mode: 'C' }, ['spec.mode: Unsupported value: "C": supported values: "A", "B"']],
    [{ name: 'a', items: [{}, {}, {}] }, ['spec.items: Too many: 3: must have at most 2 items']],
    [
      { name: 'a', map: { x: 1 } },
      ['spec.map.x: Invalid value: "integer": spec.map.x in body must be of type string: "integer"'],
    ],
    [
      { name: 'a', when: 'yesterday' },
      ['spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"'],
    ],
    [{ name: 'a', port: 'http' }, []],
    [
      { name: 'a', port: true },
      ['spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"'],
    ],
    [
      { name: 'a', conditions: [{ type: 'Ready' }, { type: 'Ready' }] },
      ['spec.conditions[1]: Duplicate value: map[string]interface {}{"type":"Ready"}'],
    ],
    [
      { name: 'a', probe: {} },
      [
        '<nil>: Invalid value: "": "spec.probe" must validate one and only one schema (oneOf). Found none valid',
        'spec.probe.a: Required value',
      ],
    ],
    [
      { name: 'a', probe: { a: {}, b: {} } },
      [
        '<nil>: Invalid value: "": "spec.probe" must validate one and only one schema (oneOf). Found 2 valid alternatives',
      ],
    ],
  ])('validates spec %j', (spec, expected) => {
    expect(validate({ spec }, schema).map(fieldErrorString)).toEqual(expected);
  });

  it('applies defaults top-down, into defaulted objects, and replaces non-nullable nulls', () => {
    const value = { spec: { name: 'a', mode: null } };
    applyDefaults(value as never, schema);
    expect(value.spec).toEqual({ name: 'a', mode: 'A', count: 1, nested: { flag: true } });
  });
});

describe('JSON merge patch (RFC 7386)', () => {
  it.each([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: ['b'] }, { a: ['c', 'd'] }, { a: ['c', 'd'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: 'b' }, ['c'], ['c']],
  ])('patches %j with %j', (target, patch, expected) => {
    expect(mergePatch(target, patch)).toEqual(expected);
  });
});

describe('JSON patch (RFC 6902)', () => {
  const doc = { spec: { v: '1', list: ['a', 'b'] } };
  it.each([
    [[{ op: 'add', path: '/spec/x', value: 1 }], { spec: { v: '1', list: ['a', 'b'], x: 1 } }],
    [[{ op: 'add', path: '/spec/list/-', value: 'c' }], { spec: { v: '1', list: ['a', 'b', 'c'] } }],
    [[{ op: 'add', path: '/spec/list/0', value: 'z' }], { spec: { v: '1', list: ['z', 'a', 'b'] } }],
    [[{ op: 'remove', path: '/spec/list/0' }], { spec: { v: '1', list: ['b'] } }],
    [[{ op: 'replace', path: '/spec/v', value: '2' }], { spec: { v: '2', list: ['a', 'b'] } }],
    [[{ op: 'move', from: '/spec/v', path: '/spec/w' }], { spec: { w: '1', list: ['a', 'b'] } }],
    [[{ op: 'copy', from: '/spec/v', path: '/spec/w' }], { spec: { v: '1', w: '1', list: ['a', 'b'] } }],
    [[{ op: 'test', path: '/spec/list', value: ['a', 'b'] }], doc],
  ])('applies %j', (ops, expected) => {
    expect(applyJsonPatch(doc, ops)).toEqual(expected);
  });

  it.each([
    [[{ op: 'test', path: '/spec/v', value: '2' }], 'testing value /spec/v failed: test failed'],
    [
      [{ op: 'replace', path: '/spec/nope', value: 1 }],
      'replace operation does not apply: doc is missing key: /spec/nope: missing value',
    ],
    [
      [{ op: 'remove', path: '/spec/nope' }],
      "error in remove for path: '/spec/nope': Unable to remove nonexistent key: nope: missing value",
    ],
    [
      [{ op: 'add', path: '/a/b/c', value: 1 }],
      'add operation does not apply: doc is missing path: "/a/b/c": missing value',
    ],
    [[{ op: 'jump', path: '/spec' }], 'Unexpected kind: jump'],
  ])('fails %j with the evanphx message', (ops, message) => {
    expect(() => applyJsonPatch(doc, ops)).toThrow(new JsonPatchError(message));
  });

  it('leaves the input document untouched', () => {
    applyJsonPatch(doc, [{ op: 'replace', path: '/spec/v', value: '9' }]);
    expect(doc.spec.v).toBe('1');
  });
});

describe('strategic merge patch', () => {
  const strategies = {
    'metadata.finalizers': { primitive: true as const },
    'status.conditions': { key: 'type' },
  };
  const target = {
    metadata: { finalizers: ['a'], labels: { x: '1' } },
    status: {
      conditions: [
        { type: 'Ready', status: 'False' },
        { type: 'Other', status: 'True' },
      ],
    },
    spec: { taints: [{ key: 'k' }] },
  };
  it.each([
    // normalizeElementOrder: what the server lacks comes first, what the patch names in its order.
    [{ metadata: { finalizers: ['b'] } }, 'metadata', { finalizers: ['b', 'a'], labels: { x: '1' } }],
    [{ metadata: { finalizers: ['a', 'b'] } }, 'metadata', { finalizers: ['a', 'b'], labels: { x: '1' } }],
    [
      { status: { conditions: [{ type: 'New', status: 'True' }] } },
      'status',
      {
        conditions: [
          { type: 'New', status: 'True' },
          { type: 'Ready', status: 'False' },
          { type: 'Other', status: 'True' },
        ],
      },
    ],
    [
      { status: { conditions: [{ type: 'Other' }, { type: 'Ready' }] } },
      'status',
      {
        conditions: [
          { type: 'Other', status: 'True' },
          { type: 'Ready', status: 'False' },
        ],
      },
    ],
    [
      { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } },
      'metadata',
      { finalizers: [], labels: { x: '1' } },
    ],
    [
      { status: { conditions: [{ type: 'Ready', status: 'True' }] } },
      'status',
      {
        conditions: [
          { type: 'Ready', status: 'True' },
          { type: 'Other', status: 'True' },
        ],
      },
    ],
    [
      { status: { conditions: [{ type: 'Other', $patch: 'delete' }] } },
      'status',
      { conditions: [{ type: 'Ready', status: 'False' }] },
    ],
    [{ spec: { taints: [{ key: 'new' }] } }, 'spec', { taints: [{ key: 'new' }] }],
    [{ metadata: { $patch: 'replace', name: 'n' } }, 'metadata', { name: 'n' }],
  ])('patches %j', (patch, key, expected) => {
    expect((strategicMergePatch(target, patch, strategies) as Record<string, unknown>)[key]).toEqual(
      expected,
    );
  });
});

describe('JSONPath for printer columns', () => {
  const object = {
    status: {
      conditions: [
        { type: 'A', status: 'x' },
        { type: 'Ready', status: 'True' },
      ],
      n: 0,
    },
  };
  it.each([
    ['.status.n', [0]],
    ['.status.conditions[1].type', ['Ready']],
    ['.status.conditions[-1].status', ['True']],
    ['.status.conditions[*].type', ['A', 'Ready']],
    ['.status.conditions[?(@.type=="Ready")].status', ['True']],
    ['{.status.missing}', []],
  ])('evaluates %s', (path, expected) => {
    expect(evaluateJsonPath(path, object)).toEqual(expected);
  });
});

describe('Status bodies', () => {
  it('aggregates several field errors in brackets and keeps each as a cause', () => {
    const error = errors.invalid({ group: 'g.io', kind: 'K' }, 'n', [
      field.required('spec.a'),
      field.invalid('spec.b', 5, 'too big'),
    ]);
    expect(error.status.message).toBe(
      'K.g.io "n" is invalid: [spec.a: Required value, spec.b: Invalid value: 5: too big]',
    );
    expect(error.status.details!.causes).toEqual([
      { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.a' },
      { reason: 'FieldValueInvalid', message: 'Invalid value: 5: too big', field: 'spec.b' },
    ]);
  });

  it('leaves empty details out, as omitempty does', () => {
    expect(errors.notFound({ group: '', resource: 'nodes' }, 'x').status.details).toEqual({
      name: 'x',
      kind: 'nodes',
    });
    expect(errors.badRequest('nope').status).not.toHaveProperty('details');
  });
});

describe('store', () => {
  it('numbers every write with one global, increasing resourceVersion', () => {
    const store = new Store(10);
    const a = store.put('s1', 'a', { metadata: { name: 'a' } });
    const b = store.put('s2', 'b', { metadata: { name: 'b' } });
    const gone = store.remove('s1', 'a')!;
    expect([a.rv, b.rv, gone.rv]).toEqual([2, 3, 4]);
    expect(gone.object.metadata.resourceVersion).toBe('4');
  });

  it('keeps a bounded history and reports older resourceVersions as compacted', () => {
    const store = new Store(3);
    for (let i = 0; i < 5; i++) store.put('s', `k${i}`, { metadata: { name: `k${i}` } });
    expect(store.eventsAfter(3).map((e) => e.rv)).toEqual([4, 5, 6]);
    expect(() => store.eventsAfter(2)).toThrow(CompactedError);
    expect(store.compactedRv).toBe(3);
  });

  it('rebuilds an older snapshot by undoing newer events', () => {
    const store = new Store(10);
    store.put('s', 'a', { metadata: { name: 'a', labels: { v: '1' } } });
    const at = store.resourceVersion;
    store.put('s', 'a', { metadata: { name: 'a', labels: { v: '2' } } });
    store.put('s', 'b', { metadata: { name: 'b' } });
    store.remove('s', 'a');
    const snapshot = store.snapshot('s', at);
    expect([...snapshot.keys()]).toEqual(['a']);
    expect(snapshot.get('a')!.object.metadata.labels).toEqual({ v: '1' });
  });

  it('indexes dependents by owner uid', () => {
    const store = new Store(10);
    store.put('s', 'dep', {
      metadata: { name: 'dep', ownerReferences: [{ apiVersion: 'v1', kind: 'K', name: 'o', uid: 'u1' }] },
    });
    expect(store.dependentsOf('u1').map((e) => e.key)).toEqual(['dep']);
    store.remove('s', 'dep');
    expect(store.dependentsOf('u1')).toEqual([]);
  });
});

describe('managed fields', () => {
  const ctx: OwnershipContext = {
    schema: {
      type: 'object',
      properties: {
        spec: {
          type: 'object',
          properties: {
            a: { type: 'string' },
            m: { type: 'object', properties: { x: { type: 'string' } } },
            list: { type: 'array', items: { type: 'string' } },
            conds: {
              type: 'array',
              'x-kubernetes-list-type': 'map',
              'x-kubernetes-list-map-keys': ['type'],
              items: { type: 'object', properties: { type: { type: 'string' }, s: { type: 'string' } } },
            },
          },
        },
        status: { type: 'object', properties: { phase: { type: 'string' } } },
      },
    },
    statusSubresource: true,
  };
  const obj = (spec: Record<string, unknown>, managedFields?: unknown[]) =>
    ({
      apiVersion: 'g/v1',
      kind: 'K',
      metadata: { name: 'n', ...(managedFields ? { managedFields } : {}) },
      spec,
    }) as never;
  const who = 'g/v1';

  it('gives the creator every field it set, marking the maps it created with "."', () => {
    const entries = updateManagedFields(
      ctx,
      undefined,
      obj({ a: '1', m: { x: 'y' }, list: ['p'], conds: [{ type: 'R', s: 'T' }] }),
      'alice',
      who,
      undefined,
    );
    expect(entries).toHaveLength(1);
    expect(entries[0]!.fieldsV1).toEqual({
      'f:spec': {
        '.': {},
        'f:a': {},
        'f:conds': { '.': {}, 'k:{"type":"R"}': { '.': {}, 'f:s': {}, 'f:type': {} } },
        'f:list': {},
        'f:m': { '.': {}, 'f:x': {} },
      },
    });
  });

  it('moves a changed field to the manager that changed it and drops emptied entries', () => {
    const withFields = (spec: Record<string, unknown>, before: unknown, manager: string) => {
      const next = obj(spec) as { metadata: { managedFields: unknown } };
      next.metadata.managedFields = updateManagedFields(
        ctx,
        before as never,
        next as never,
        manager,
        who,
        undefined,
      );
      return next;
    };
    const created = withFields({ a: '1' }, undefined, 'alice');
    const carols = withFields({ a: '2' }, created, 'carol');
    const bobs = withFields({ a: '3' }, carols, 'bob') as {
      metadata: { managedFields: Array<{ manager: string; fieldsV1: unknown }> };
    };
    // alice keeps the spec map she created; carol's only field went to bob, so her entry is gone.
    expect(bobs.metadata.managedFields.map((e) => [e.manager, e.fieldsV1])).toEqual([
      ['alice', { 'f:spec': {} }],
      ['bob', { 'f:spec': { 'f:a': {} } }],
    ]);
  });

  it('reports every conflicting field in one message, grouped by manager', () => {
    const live = obj({ a: '1', m: { x: 'y' } });
    (live as { metadata: { managedFields: unknown } }).metadata.managedFields = updateManagedFields(
      ctx,
      undefined,
      live,
      'alice',
      who,
      undefined,
    );
    const applied = obj({ a: '2', m: { x: 'z' } });
    expect(() =>
      applyManagedFields(
        ctx,
        live,
        applied,
        mergeApplied(ctx, live, applied) as never,
        'bob',
        who,
        undefined,
        false,
        {
          group: 'g',
          resource: 'ks',
          name: 'n',
        },
      ),
    ).toThrow('Apply failed with 2 conflicts: conflicts with "alice" using g/v1:\n- .spec.a\n- .spec.m.x');
  });

  it('merges applied map lists by key and replaces atomic lists', () => {
    const live = {
      spec: {
        list: ['a'],
        conds: [
          { type: 'A', s: '1' },
          { type: 'B', s: '1' },
        ],
      },
    };
    const applied = { spec: { list: ['b'], conds: [{ type: 'B', s: '2' }] } };
    expect(mergeApplied(ctx, live, applied)).toEqual({
      spec: {
        list: ['b'],
        conds: [
          { type: 'A', s: '1' },
          { type: 'B', s: '2' },
        ],
      },
    });
  });

  it.each([
    ['kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07', 'kubectl'],
    ['', 'unknown'],
    [undefined, 'unknown'],
  ])('names the default manager of user agent %j %j', (ua, manager) => {
    expect(managerFromUserAgent(ua)).toBe(manager);
  });
});

describe('serving certificate', () => {
  it('is a self-signed CA certificate for 127.0.0.1 and localhost, valid for years', () => {
    const { cert } = createServingCertificate();
    const x509 = new X509Certificate(cert);
    expect(x509.ca).toBe(true);
    expect(x509.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(new Date(x509.validTo).getTime() - Date.now()).toBeGreaterThan(5 * 365 * 86400_000);
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });
});
