// Conformance: Events (core/v1 and events.k8s.io/v1 are one resource seen through two APIs) and
// coordination.k8s.io Leases as leader election uses them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aLease, type Body, openTarget, type Target, uniqueName } from './target.ts';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
});
afterAll(async () => {
  await t?.close();
});

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const micro = () => new Date().toISOString().replace(/Z$/, '000Z');

describe('events', () => {
  it('shows an events.k8s.io/v1 Event through core/v1 with the fields converted', async () => {
    const name = uniqueName('ev');
    const body = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name },
      eventTime: micro(),
      reportingController: 'pluginrelease.io/controller',
      reportingInstance: 'controller-0',
      action: 'Rollout',
      reason: 'RolloutStarted',
      note: 'Rolling out 1.0.0.',
      type: 'Normal',
      regarding: {
        apiVersion: 'pluginrelease.io/v1alpha1',
        kind: 'PluginRelease',
        name: 'echo',
        namespace: t.namespace,
      },
    };
    const created = await t.call('POST', t.path('events', undefined, '/apis/events.k8s.io/v1'), {
      body,
    });
    expect(created.status).toBe(201);
    expect(created.body.note).toBe('Rolling out 1.0.0.');
    const core = await t.call('GET', `/api/v1/namespaces/${t.namespace}/events/${name}`);
    expect(core.status).toBe(200);
    expect(core.body.message).toBe('Rolling out 1.0.0.');
    expect(core.body.involvedObject).toMatchObject({ kind: 'PluginRelease', name: 'echo' });
    expect(core.body.reportingComponent).toBe('pluginrelease.io/controller');
    expect(core.body.metadata.uid).toBe(created.body.metadata.uid);
  });

  it('refuses an events.k8s.io/v1 Event without its required reporting fields', async () => {
    const res = await t.call('POST', t.path('events', undefined, '/apis/events.k8s.io/v1'), {
      body: {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: uniqueName('ev') },
        eventTime: micro(),
        regarding: { kind: 'PluginRelease', name: 'echo', namespace: t.namespace },
        note: 'x',
        type: 'Normal',
      },
    });
    expect(res.status).toBe(422);
    // An empty reportingController is also reported twice as an invalid qualified name.
    expect(res.body.details.causes.map((c: Body) => [c.field, c.reason])).toEqual([
      ['reportingController', 'FieldValueRequired'],
      ['reportingController', 'FieldValueInvalid'],
      ['reportingController', 'FieldValueInvalid'],
      ['reportingInstance', 'FieldValueRequired'],
      ['action', 'FieldValueRequired'],
      ['reason', 'FieldValueRequired'],
    ]);
  });

  it('refuses an events.k8s.io/v1 Event without eventTime, checking only what an old-style Event needs', async () => {
    const res = await t.call('POST', t.path('events', undefined, '/apis/events.k8s.io/v1'), {
      body: {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: uniqueName('ev') },
        note: 'x',
        type: 'Normal',
      },
    });
    expect(res.status).toBe(422);
    // Without eventTime the legacy checks skip the reporting fields; the strict ones want eventTime.
    expect(res.body.details.causes).toEqual([
      {
        reason: 'FieldValueInvalid',
        message: 'Invalid value: "": does not match event.namespace',
        field: 'involvedObject.namespace',
      },
      { reason: 'FieldValueRequired', message: 'Required value', field: 'eventTime' },
    ]);
  });

  it('creates a core/v1 Event and selects it by involvedObject.name', async () => {
    const name = uniqueName('ev');
    const subject = uniqueName('subject');
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name },
      involvedObject: { kind: 'PluginRelease', name: subject, namespace: t.namespace },
      reason: 'Stalled',
      message: 'Retries exhausted.',
      type: 'Warning',
      firstTimestamp: now(),
      lastTimestamp: now(),
      count: 1,
      source: { component: 'plugin-release' },
    };
    expect((await t.call('POST', `/api/v1/namespaces/${t.namespace}/events`, { body })).status).toBe(201);
    const res = await t.call(
      'GET',
      `/api/v1/namespaces/${t.namespace}/events?fieldSelector=involvedObject.name%3D${subject}`,
    );
    expect(res.body.items.map((e: Body) => e.metadata.name)).toEqual([name]);
  });
});

describe('leases', () => {
  const leases = () => t.path('leases', undefined, '/apis/coordination.k8s.io/v1');

  it('lets only one of two racing updates with the same resourceVersion win', async () => {
    const name = uniqueName('lease');
    const created = await t.call('POST', leases(), { body: aLease(name, 'a') });
    const take = (holder: string) =>
      t.call('PUT', `${leases()}/${name}`, {
        body: { ...created.body, spec: { ...created.body.spec, holderIdentity: holder, renewTime: micro() } },
      });
    const results = await Promise.all([take('b'), take('c')]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
  });

  it('refuses a non-positive leaseDurationSeconds with 422', async () => {
    const body = aLease(uniqueName('lease'));
    body.spec.leaseDurationSeconds = 0;
    const res = await t.call('POST', leases(), { body });
    expect(res.status).toBe(422);
    expect(res.body.details.causes[0].field).toBe('spec.leaseDurationSeconds');
  });

  it('refuses a wrongly typed field of a built-in type with 400', async () => {
    const body = aLease(uniqueName('lease')) as Body;
    body.spec.leaseDurationSeconds = 'fifteen';
    const res = await t.call('POST', leases(), { body });
    expect(res.status).toBe(400);
    expect(res.body.reason).toBe('BadRequest');
  });
});
