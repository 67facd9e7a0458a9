// Discovery documents (/version, /api, /apis, APIResourceLists) and a minimal OpenAPI v3
// (/openapi/v3): enough for kubectl to resolve resources, send fieldValidation, and explain.
import { createHash } from 'node:crypto';
import type { Schema } from '../../src/api/prune.ts';
import { apiVersionOf, type ResourceRegistry, type ResourceType } from './resources.ts';

export const KUBERNETES_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-devcluster' };

export function versionInfo(): Record<string, string> {
  return {
    major: KUBERNETES_VERSION.major,
    minor: KUBERNETES_VERSION.minor,
    gitVersion: KUBERNETES_VERSION.gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2024-12-11T00:00:00Z',
    goVersion: 'go1.23.4',
    compiler: 'gc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}

export function apiVersions(serverAddress: string): Record<string, unknown> {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groupDoc(group: string, versions: string[]): Record<string, unknown> {
  const list = versions.map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return { name: group, versions: list, preferredVersion: list[0] };
}

export function apiGroupList(types: ResourceRegistry): Record<string, unknown> {
  const groups = [...types.groups()].filter(([g]) => g !== '').map(([g, versions]) => groupDoc(g, versions));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

export function apiGroup(types: ResourceRegistry, group: string): Record<string, unknown> | undefined {
  const versions = types.groups().get(group);
  if (!group || !versions) return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(group, versions) };
}

function storageVersionHash(type: ResourceType): string {
  return createHash('sha256')
    .update(`${type.group}/${type.version}/${type.kind}`)
    .digest()
    .subarray(0, 8)
    .toString('base64');
}

export function apiResourceList(
  types: ResourceRegistry,
  group: string,
  version: string,
): Record<string, unknown> | undefined {
  const inGv = types.inGroupVersion(group, version);
  if (inGv.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const t of inGv) {
    const resource: Record<string, unknown> = {
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: t.verbs,
    };
    if (t.shortNames.length) resource.shortNames = t.shortNames;
    if (t.categories.length) resource.categories = t.categories;
    resource.storageVersionHash = storageVersionHash(t);
    resources.push(resource);
    if (t.statusSubresource) {
      resources.push({
        name: `${t.plural}/status`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: t.readOnly ? ['get'] : ['get', 'patch', 'update'],
      });
    }
    if (t.plural === 'namespaces' && !t.group) {
      resources.push({
        name: 'namespaces/finalize',
        singularName: '',
        namespaced: false,
        kind: 'Namespace',
        verbs: ['update'],
      });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: apiVersionOf({ group, version }),
    resources,
  };
}

// ---- OpenAPI v3 -------------------------------------------------------------------------------------

/** `api/v1` or `apis/<group>/<version>`: the key of a group-version in /openapi/v3. */
export function openApiPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

/** The definition name the real server uses for a type (io.k8s.api.core.v1.Node, io.pluginrelease.v1alpha1.X). */
export function definitionName(
  type: Pick<ResourceType, 'group' | 'version' | 'kind' | 'custom'>,
  kind = type.kind,
): string {
  if (type.custom) return `${type.group.split('.').reverse().join('.')}.${type.version}.${kind}`;
  if (type.group === 'apiextensions.k8s.io')
    return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${type.version}.${kind}`;
  const short = type.group ? type.group.replace(/\.k8s\.io$/, '').replace(/\./g, '_') : 'core';
  return `io.k8s.api.${short}.${type.version}.${kind}`;
}

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const metaSchemas: Record<string, unknown> = {
  [`${META}.ObjectMeta`]: {
    description:
      'ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.',
    type: 'object',
    properties: {
      annotations: { type: 'object', additionalProperties: { type: 'string', default: '' } },
      creationTimestamp: { type: 'string', format: 'date-time' },
      deletionGracePeriodSeconds: { type: 'integer', format: 'int64' },
      deletionTimestamp: { type: 'string', format: 'date-time' },
      finalizers: { type: 'array', items: { type: 'string', default: '' }, 'x-kubernetes-list-type': 'set' },
      generateName: { type: 'string' },
      generation: { type: 'integer', format: 'int64' },
      labels: { type: 'object', additionalProperties: { type: 'string', default: '' } },
      managedFields: { type: 'array', items: { type: 'object' } },
      name: { type: 'string' },
      namespace: { type: 'string' },
      ownerReferences: {
        type: 'array',
        items: ref(`${META}.OwnerReference`),
        'x-kubernetes-list-map-keys': ['uid'],
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-patch-merge-key': 'uid',
        'x-kubernetes-patch-strategy': 'merge',
      },
      resourceVersion: { type: 'string' },
      selfLink: { type: 'string' },
      uid: { type: 'string' },
    },
  },
  [`${META}.OwnerReference`]: {
    type: 'object',
    required: ['apiVersion', 'kind', 'name', 'uid'],
    properties: {
      apiVersion: { type: 'string', default: '' },
      blockOwnerDeletion: { type: 'boolean' },
      controller: { type: 'boolean' },
      kind: { type: 'string', default: '' },
      name: { type: 'string', default: '' },
      uid: { type: 'string', default: '' },
    },
    'x-kubernetes-map-type': 'atomic',
  },
  [`${META}.ListMeta`]: {
    type: 'object',
    properties: {
      continue: { type: 'string' },
      remainingItemCount: { type: 'integer', format: 'int64' },
      resourceVersion: { type: 'string' },
      selfLink: { type: 'string' },
    },
  },
  [`${META}.Status`]: {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      code: { type: 'integer', format: 'int32' },
      details: { type: 'object' },
      kind: { type: 'string' },
      message: { type: 'string' },
      metadata: { allOf: [ref(`${META}.ListMeta`)], default: {} },
      reason: { type: 'string' },
      status: { type: 'string' },
    },
    'x-kubernetes-group-version-kind': [{ group: '', kind: 'Status', version: 'v1' }],
  },
  [`${META}.Patch`]: {
    type: 'object',
    description: 'Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.',
  },
  [`${META}.DeleteOptions`]: {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      dryRun: { type: 'array', items: { type: 'string', default: '' } },
      gracePeriodSeconds: { type: 'integer', format: 'int64' },
      kind: { type: 'string' },
      propagationPolicy: { type: 'string' },
    },
  },
};

/** Published schemas spell int-or-string as anyOf integer/string, as the real server's OpenAPI does. */
function publish(schema: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...schema };
  if (out['x-kubernetes-int-or-string']) out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  if (out.properties) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties as Record<string, Record<string, unknown>>).map(([k, v]) => [
        k,
        publish(v),
      ]),
    );
  }
  if (out.items && typeof out.items === 'object') out.items = publish(out.items as Record<string, unknown>);
  if (out.additionalProperties && typeof out.additionalProperties === 'object')
    out.additionalProperties = publish(out.additionalProperties as Record<string, unknown>);
  return out;
}

/** The type's schema as an OpenAPI component: metadata by reference, GVK extension. */
function typeSchema(type: ResourceType): Record<string, unknown> {
  const schema = publish(structuredClone(type.schema) as Record<string, unknown>) as Schema &
    Record<string, unknown>;
  const properties = { ...(schema.properties ?? {}) } as Record<string, unknown>;
  properties.metadata = {
    allOf: [ref(`${META}.ObjectMeta`)],
    default: {},
    description: 'Standard object metadata.',
  };
  return {
    ...schema,
    type: 'object',
    properties,
    'x-kubernetes-group-version-kind': [{ group: type.group, kind: type.kind, version: type.version }],
  };
}

function listSchema(type: ResourceType): Record<string, unknown> {
  return {
    type: 'object',
    required: ['items'],
    properties: {
      apiVersion: { type: 'string' },
      items: { type: 'array', items: ref(definitionName(type)) },
      kind: { type: 'string' },
      metadata: { allOf: [ref(`${META}.ListMeta`)], default: {} },
    },
    'x-kubernetes-group-version-kind': [{ group: type.group, kind: type.listKind, version: type.version }],
  };
}

const query = (name: string, description: string, schemaType = 'string') => ({
  name,
  in: 'query',
  description,
  schema: { type: schemaType, uniqueItems: true },
});

const writeParameters = [
  query('dryRun', 'When present, indicates that modifications should not be persisted.'),
  query(
    'fieldManager',
    'fieldManager is a name associated with the actor or entity that is making these changes.',
  ),
  query(
    'fieldValidation',
    'fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict.',
  ),
];

function operation(
  type: ResourceType,
  action: string,
  operationId: string,
  response: unknown,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    description: `${action} ${type.kind}`,
    operationId,
    responses: { '200': { description: 'OK', content: { 'application/json': { schema: response } } } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': { group: type.group, kind: type.kind, version: type.version },
    ...extra,
  };
}

const namespaceParameter = {
  name: 'namespace',
  in: 'path',
  required: true,
  description: 'object name and auth scope',
  schema: { type: 'string' },
};

const body = (schema: unknown) => ({ content: { '*/*': { schema } }, required: true });

const patchBody = {
  content: Object.fromEntries(
    ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml'].map(
      (t) => [t, { schema: ref(`${META}.Patch`) }],
    ),
  ),
  required: true,
};

/** The list, create and deletecollection operations of a type's collection path. */
function collectionPath(type: ResourceType, pathParams: unknown[]): Record<string, unknown> {
  const id = type.kind;
  const path: Record<string, unknown> = {
    get: operation(type, 'list', `list${id}`, ref(definitionName(type, type.listKind))),
    parameters: pathParams,
  };
  if (type.readOnly) return path;
  const object = ref(definitionName(type));
  path.post = operation(type, 'post', `create${id}`, object, {
    parameters: writeParameters,
    requestBody: body(object),
  });
  path.delete = operation(type, 'deletecollection', `deletecollection${id}`, ref(`${META}.Status`));
  return path;
}

/** The read, replace and patch operations of one object's path, or of its status (`suffix` 'Status'). */
function objectPath(
  type: ResourceType,
  suffix: '' | 'Status',
  pathParams: unknown[],
  patchParameters: unknown[],
): Record<string, unknown> {
  const id = `${type.kind}${suffix}`;
  const object = ref(definitionName(type));
  const nameParameter = {
    name: 'name',
    in: 'path',
    required: true,
    description: `name of the ${type.kind}`,
    schema: { type: 'string' },
  };
  const path: Record<string, unknown> = {
    get: operation(type, 'get', `read${id}`, object),
    parameters: [nameParameter, ...pathParams],
  };
  if (type.readOnly) return path;
  path.put = operation(type, 'put', `replace${id}`, object, {
    parameters: writeParameters,
    requestBody: body(object),
  });
  path.patch = operation(type, 'patch', `patch${id}`, object, {
    parameters: patchParameters,
    requestBody: patchBody,
  });
  return path;
}

/** The OpenAPI paths of one type: its collection, its objects and, when it has one, their status. */
function pathsFor(type: ResourceType): Record<string, unknown> {
  const prefix = `/${openApiPath(type.group, type.version)}${type.namespaced ? '/namespaces/{namespace}' : ''}/${type.plural}`;
  const pathParams = type.namespaced ? [namespaceParameter] : [];
  const item = objectPath(type, '', pathParams, [
    ...writeParameters,
    query('force', 'Force is going to "force" Apply requests.', 'boolean'),
  ]);
  if (!type.readOnly) {
    item.delete = operation(type, 'delete', `delete${type.kind}`, ref(`${META}.Status`), {
      requestBody: body(ref(`${META}.DeleteOptions`)),
    });
  }
  const out: Record<string, unknown> = {
    [prefix]: collectionPath(type, pathParams),
    [`${prefix}/{name}`]: item,
  };
  if (type.statusSubresource)
    out[`${prefix}/{name}/status`] = objectPath(type, 'Status', pathParams, writeParameters);
  return out;
}

/** The OpenAPI v3 document of one group-version, from the types it serves. */
export function openApiDocument(served: ResourceType[]): Record<string, unknown> {
  const schemas: Record<string, unknown> = { ...metaSchemas };
  let paths: Record<string, unknown> = {};
  for (const t of served) {
    schemas[definitionName(t)] = typeSchema(t);
    schemas[definitionName(t, t.listKind)] = listSchema(t);
    paths = { ...paths, ...pathsFor(t) };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: KUBERNETES_VERSION.gitVersion },
    paths,
    components: { schemas },
  };
}

/** The /openapi/v3 index: each group-version with a content hash, as kubectl caches by it. */
export function openApiIndex(
  types: ResourceRegistry,
  documents: Map<string, string>,
): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const [group, versions] of types.groups()) {
    for (const version of versions) {
      const key = openApiPath(group, version);
      const doc = documents.get(key);
      if (!doc) continue;
      const hash = createHash('sha512').update(doc).digest('hex').slice(0, 128).toUpperCase();
      paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
    }
  }
  return { paths };
}
