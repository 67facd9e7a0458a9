// Conformance: discovery documents (/version, /api, /apis, group and resource lists) and /openapi/v3.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Body, HAS_KUBECTL, openTarget, type Target } from './target.ts';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
});
afterAll(async () => {
  await t?.close();
});

describe('discovery', () => {
  it('serves /version with major, minor and gitVersion', async () => {
    const res = await t.call('GET', '/version');
    expect(res.status).toBe(200);
    expect(res.body.major).toMatch(/^\d+$/);
    expect(res.body.minor).toMatch(/^\d+/);
    expect(res.body.gitVersion).toMatch(/^v\d+\.\d+\.\d+/);
  });

  it('serves /api as APIVersions with v1', async () => {
    const res = await t.call('GET', '/api');
    expect(res.body.kind).toBe('APIVersions');
    expect(res.body.versions).toContain('v1');
  });

  it('lists pluginrelease.io with v1alpha1 preferred in /apis', async () => {
    const res = await t.call('GET', '/apis');
    expect(res.body.kind).toBe('APIGroupList');
    const group = res.body.groups.find((g: Body) => g.name === 'pluginrelease.io');
    expect(group.preferredVersion).toEqual({
      groupVersion: 'pluginrelease.io/v1alpha1',
      version: 'v1alpha1',
    });
    for (const name of ['coordination.k8s.io', 'events.k8s.io', 'apiextensions.k8s.io'])
      expect(res.body.groups.map((g: Body) => g.name)).toContain(name);
  });

  it('serves the group document at /apis/pluginrelease.io', async () => {
    const res = await t.call('GET', '/apis/pluginrelease.io');
    expect(res.body.kind).toBe('APIGroup');
    expect(res.body.name).toBe('pluginrelease.io');
  });

  it('describes pluginreleases with short names, categories, scope, verbs and the status subresource', async () => {
    const res = await t.call('GET', '/apis/pluginrelease.io/v1alpha1');
    expect(res.body.kind).toBe('APIResourceList');
    expect(res.body.groupVersion).toBe('pluginrelease.io/v1alpha1');
    const plr = res.body.resources.find((r: Body) => r.name === 'pluginreleases');
    expect(plr).toMatchObject({
      singularName: 'pluginrelease',
      namespaced: true,
      kind: 'PluginRelease',
      shortNames: ['plr'],
    });
    expect(plr.categories).toContain('pluginreleases-all');
    expect([...plr.verbs].sort()).toEqual([
      'create',
      'delete',
      'deletecollection',
      'get',
      'list',
      'patch',
      'update',
      'watch',
    ]);
    const status = res.body.resources.find((r: Body) => r.name === 'pluginreleases/status');
    expect([...status.verbs].sort()).toEqual(['get', 'patch', 'update']);
    expect(res.body.resources.find((r: Body) => r.name === 'pluginactivations').shortNames).toEqual(['pla']);
  });

  it('describes core v1 nodes, namespaces and events', async () => {
    const res = await t.call('GET', '/api/v1');
    const byName = new Map(res.body.resources.map((r: Body) => [r.name, r]));
    expect(byName.get('nodes')).toMatchObject({ namespaced: false, kind: 'Node' });
    expect(byName.get('namespaces')).toMatchObject({ namespaced: false, kind: 'Namespace' });
    expect(byName.get('events')).toMatchObject({ namespaced: true, kind: 'Event' });
  });

  it('answers 404 for an unknown group version', async () => {
    const res = await t.call('GET', '/apis/nothing.example.com/v1');
    expect(res.status).toBe(404);
  });

  it('indexes OpenAPI v3 by group-version, with the CRD schema under its GVK', async (ctx) => {
    t.needs(ctx, 'OpenAPI v3 (/openapi/v3)', '1.24');
    const index = await t.call('GET', '/openapi/v3');
    const entry = index.body.paths['apis/pluginrelease.io/v1alpha1'];
    expect(entry.serverRelativeURL).toMatch(/^\/openapi\/v3\/apis\/pluginrelease\.io\/v1alpha1\?hash=/);
    const doc = await t.call('GET', entry.serverRelativeURL);
    const schema = doc.body.components.schemas['io.pluginrelease.v1alpha1.PluginRelease'];
    expect(schema['x-kubernetes-group-version-kind']).toEqual([
      { group: 'pluginrelease.io', kind: 'PluginRelease', version: 'v1alpha1' },
    ]);
    expect(schema.properties.spec.properties.plugin.pattern).toBe('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$');
  });
});

describe.skipIf(!HAS_KUBECTL)('kubectl discovery', () => {
  it('lists the pluginrelease.io resources in api-resources', async () => {
    const res = await t.kubectl(['api-resources', '--api-group=pluginrelease.io', '--no-headers']);
    const rows = res.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/));
    expect(rows).toEqual([
      ['pluginactivations', 'pla', 'pluginrelease.io/v1alpha1', 'true', 'PluginActivation'],
      ['pluginreleases', 'plr', 'pluginrelease.io/v1alpha1', 'true', 'PluginRelease'],
    ]);
  });
});
