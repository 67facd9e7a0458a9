// Conformance: meta.k8s.io/v1 Table responses (what kubectl get asks for) and PartialObjectMetadata.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aRelease, type Body, openTarget, type Target, uniqueName } from './target.ts';

let t: Target;
let name: string;
beforeAll(async () => {
  t = await openTarget();
  name = uniqueName('tbl');
  await t.call('POST', t.path('pluginreleases'), { body: aRelease(name) });
  await t.call('PATCH', `${t.path('pluginreleases', name)}/status`, {
    body: JSON.stringify({
      status: { phase: 'Progressing', ready: '1/3', nodes: { upToDate: 1 }, revision: 'abc123' },
    }),
    contentType: 'application/merge-patch+json',
  });
});
afterAll(async () => {
  await t?.close();
});

const TABLE =
  'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

describe('Table output', () => {
  it('renders a custom resource with its additionalPrinterColumns after Name', async () => {
    const res = await t.call('GET', t.path('pluginreleases'), { accept: TABLE });
    expect(res.status).toBe(200);
    expect(res.body.kind).toBe('Table');
    expect(res.body.apiVersion).toBe('meta.k8s.io/v1');
    expect(res.body.columnDefinitions.map((c: Body) => [c.name, c.type, c.priority])).toEqual([
      ['Name', 'string', 0],
      ['Plugin', 'string', 0],
      ['Version', 'string', 0],
      ['Ready', 'string', 0],
      ['Up-to-date', 'integer', 0],
      ['Status', 'string', 0],
      ['Age', 'date', 0],
      ['Revision', 'string', 1],
    ]);
    expect(res.body.columnDefinitions[0].format).toBe('name');
    const row = res.body.rows.find((r: Body) => r.cells[0] === name);
    expect(row.cells.slice(0, 6)).toEqual([name, 'echo', '1.0.0', '1/3', 1, 'Progressing']);
    expect(row.cells[6]).toMatch(/^\d+s$/);
    expect(row.cells[7]).toBe('abc123');
    expect(row.object).toMatchObject({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1' });
    expect(row.object.metadata.name).toBe(name);
  });

  it('leaves a cell empty (null) when its path is missing', async () => {
    const other = uniqueName('tbl');
    await t.call('POST', t.path('pluginreleases'), { body: aRelease(other) });
    const res = await t.call('GET', t.path('pluginreleases', other), { accept: TABLE });
    expect(res.body.rows).toHaveLength(1);
    expect(res.body.rows[0].cells[3]).toBeNull();
  });

  it('embeds the whole object with includeObject=Object', async () => {
    const res = await t.call('GET', `${t.path('pluginreleases', name)}?includeObject=Object`, {
      accept: TABLE,
    });
    expect(res.body.rows[0].object.kind).toBe('PluginRelease');
    expect(res.body.rows[0].object.spec.plugin).toBe('echo');
  });

  it('renders built-in namespaces with Name, Status and Age', async () => {
    const res = await t.call('GET', `/api/v1/namespaces/${t.namespace}`, { accept: TABLE });
    expect(res.body.columnDefinitions.slice(0, 3).map((c: Body) => c.name)).toEqual([
      'Name',
      'Status',
      'Age',
    ]);
    expect(res.body.rows[0].cells.slice(0, 2)).toEqual([t.namespace, 'Active']);
  });

  it('answers a PartialObjectMetadataList when asked for metadata only', async () => {
    const res = await t.call('GET', t.path('pluginreleases'), {
      accept: 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io',
    });
    expect(res.body.kind).toBe('PartialObjectMetadataList');
    const item = res.body.items.find((i: Body) => i.metadata.name === name);
    expect(item.kind).toBe('PartialObjectMetadata');
    expect(item.spec).toBeUndefined();
  });

  it('answers 406 with a NotAcceptable Status when no offered media type is served', async () => {
    const res = await t.call('GET', t.path('pluginreleases'), { accept: 'text/html' });
    expect(res.status).toBe(406);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotAcceptable', code: 406 });
    // Real servers list protobuf too (they encode Status and metadata in it); the dev cluster
    // serves no protobuf (docs/devcluster.md).
    const served = t.real
      ? 'application/json, application/yaml, application/vnd.kubernetes.protobuf'
      : 'application/json, application/yaml';
    expect(res.body.message).toBe(`only the following media types are accepted: ${served}`);
  });

  it('answers 406 when a custom resource is asked for as protobuf only', async () => {
    const res = await t.call('GET', t.path('pluginreleases'), {
      accept: 'application/vnd.kubernetes.protobuf',
    });
    // The Status body comes in the one type the client accepts where the server can encode it.
    expect(res.status).toBe(406);
  });
});
