// Conformance: schema validation (422 Invalid naming the field), defaulting, pruning of unknown
// fields, and server-side field validation (Strict → 400, Warn → Warning header).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aFailure, aRelease, openTarget, type Target, uniqueName } from './target.ts';
import { byVersion } from './version.ts';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
});
afterAll(async () => {
  await t?.close();
});

async function create(body: unknown, query = '') {
  return t.call('POST', `${t.path('pluginreleases')}${query}`, { body });
}

describe('schema validation', () => {
  it('answers 422 Invalid with a Status naming the field for a pattern violation', async () => {
    const name = uniqueName('v');
    const res = await create(aRelease(name, { plugin: 'Not_Valid' }));
    expect(res.status).toBe(422);
    expect(res.body).toEqual(
      aFailure(
        422,
        'Invalid',
        `PluginRelease.pluginrelease.io "${name}" is invalid: spec.plugin: Invalid value: "Not_Valid": spec.plugin in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'`,
        {
          name,
          group: 'pluginrelease.io',
          kind: 'PluginRelease',
          causes: [
            {
              reason: 'FieldValueInvalid',
              message: `Invalid value: "Not_Valid": spec.plugin in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'`,
              field: 'spec.plugin',
            },
          ],
        },
      ),
    );
  });

  it('reports a missing required field as FieldValueRequired', async () => {
    const body = aRelease(uniqueName('v'));
    delete (body.spec as Record<string, unknown>).version;
    const res = await create(body);
    expect(res.status).toBe(422);
    expect(res.body.details.causes).toContainEqual({
      reason: 'FieldValueRequired',
      message: 'Required value',
      field: 'spec.version',
    });
  });

  it('reports a value outside an enum as FieldValueNotSupported with the supported values', async () => {
    const res = await create(aRelease(uniqueName('v'), { activation: { strategy: 'Sometimes' } }));
    expect(res.status).toBe(422);
    expect(res.body.details.causes).toContainEqual({
      reason: 'FieldValueNotSupported',
      message: 'Unsupported value: "Sometimes": supported values: "TryActivate", "Recreate"',
      field: 'spec.activation.strategy',
    });
  });

  it('reports a wrong JSON type as an invalid type', async () => {
    const res = await create(aRelease(uniqueName('v'), { version: 3 }));
    expect(res.status).toBe(422);
    // Custom resource validation maps kube-openapi's type errors to FieldValueTypeInvalid since 1.24.
    expect(res.body.details.causes).toContainEqual({
      reason: byVersion(t.version, '1.24', { before: 'FieldValueInvalid', from: 'FieldValueTypeInvalid' }),
      message: 'Invalid value: "integer": spec.version in body must be of type string: "integer"',
      field: 'spec.version',
    });
  });

  it('reports a number below its minimum', async () => {
    const res = await create(aRelease(uniqueName('v'), { handshake: { timeoutSeconds: 0 } }));
    expect(res.status).toBe(422);
    expect(res.body.details.causes).toContainEqual({
      reason: 'FieldValueInvalid',
      message: 'Invalid value: 0: spec.handshake.timeoutSeconds in body should be greater than or equal to 1',
      field: 'spec.handshake.timeoutSeconds',
    });
  });

  it('reports a too long string as FieldValueTooLong', async () => {
    const value = 'a'.repeat(64);
    const res = await create(aRelease(uniqueName('v'), { plugin: value }));
    expect(res.status).toBe(422);
    // Mapped to FieldValueTooLong since 1.24; field.TooLong's wording changed in 1.32.
    const tooLong = byVersion(t.version, '1.32', {
      before: { reason: 'FieldValueTooLong', message: 'Too long: must have at most 63 bytes' },
      from: { reason: 'FieldValueTooLong', message: 'Too long: may not be more than 63 bytes' },
    });
    const cause = byVersion(t.version, '1.24', {
      before: {
        reason: 'FieldValueInvalid',
        message: `Invalid value: "${value}": spec.plugin in body should be at most 63 chars long`,
      },
      from: tooLong,
    });
    expect(res.body.details.causes).toContainEqual({ ...cause, field: 'spec.plugin' });
  });

  it('rejects a name that is not a DNS subdomain', async () => {
    const res = await create(aRelease('Bad_Name'));
    expect(res.status).toBe(422);
    expect(res.body.details.causes[0]).toMatchObject({ reason: 'FieldValueInvalid', field: 'metadata.name' });
  });

  it('rejects an invalid label value', async () => {
    const res = await create(aRelease(uniqueName('v'), {}, { labels: { app: 'not valid!' } }));
    expect(res.status).toBe(422);
    expect(res.body.details.causes[0]).toMatchObject({
      reason: 'FieldValueInvalid',
      field: 'metadata.labels',
    });
  });
});

describe('defaulting', () => {
  it('applies schema defaults, including defaults inside defaulted objects', async () => {
    const res = await create(aRelease(uniqueName('d')));
    expect(res.status).toBe(201);
    expect(res.body.spec.activation).toEqual({ strategy: 'TryActivate', drainSeconds: 5, verifySeconds: 5 });
    expect(res.body.spec.handshake.protocolVersions).toEqual([1]);
    expect(res.body.spec.rollout.canary).toEqual({ nodes: 0, pauseAfter: false });
  });

  it('defaults inside array items', async () => {
    const res = await create(aRelease(uniqueName('d'), { health: { probes: [{ grpc: {} }] } }));
    expect(res.body.spec.health.probes[0]).toEqual({
      grpc: { service: 'plugin' },
      periodSeconds: 2,
      timeoutSeconds: 2,
      successThreshold: 1,
      failureThreshold: 3,
    });
  });
});

describe('unknown fields', () => {
  it('prunes unknown fields', async () => {
    const res = await create(aRelease(uniqueName('p'), { surprise: true }));
    expect(res.status).toBe(201);
    expect(res.body.spec.surprise).toBeUndefined();
  });

  it('warns about unknown fields by default', async (ctx) => {
    t.needs(ctx, 'server-side field validation (Warning headers)', '1.25');
    const res = await create(aRelease(uniqueName('p'), { surprise: true }));
    expect(res.status).toBe(201);
    expect(String(res.headers.warning)).toContain('unknown field \\"spec.surprise\\"');
  });

  it('refuses unknown fields with 400 under fieldValidation=Strict', async (ctx) => {
    t.needs(ctx, 'fieldValidation', '1.25');
    const res = await create(aRelease(uniqueName('p'), { surprise: true }), '?fieldValidation=Strict');
    expect(res.status).toBe(400);
    expect(res.body.reason).toBe('BadRequest');
    expect(res.body.message).toContain('strict decoding error: unknown field "spec.surprise"');
  });

  it('accepts unknown fields silently under fieldValidation=Ignore', async () => {
    const res = await create(aRelease(uniqueName('p'), { surprise: true }), '?fieldValidation=Ignore');
    expect(res.status).toBe(201);
    expect(res.headers.warning).toBeUndefined();
  });
});

describe('dry run', () => {
  it('validates and answers without storing anything', async () => {
    const name = uniqueName('dry');
    const res = await create(aRelease(name), '?dryRun=All');
    expect(res.status).toBe(201);
    expect(res.body.metadata.name).toBe(name);
    expect((await t.call('GET', t.path('pluginreleases', name))).status).toBe(404);
  });
});
