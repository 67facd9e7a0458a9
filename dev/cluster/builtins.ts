// The built-in resources the dev cluster serves: core/v1 Namespaces, Nodes and Events,
// events.k8s.io/v1 Events (same storage as core Events), coordination.k8s.io/v1 Leases and
// apiextensions.k8s.io/v1 CustomResourceDefinitions (read-only).

import type { Schema } from '../../src/api/prune.ts';
import type { MergeStrategies } from './patch.ts';
import type { KubeObject, ResourceType } from './resources.ts';
import { qualifiedNameProblems } from './selectors.ts';
import { type FieldError, field } from './status.ts';
import { ageColumn, column, nameColumn, since } from './table.ts';

const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const bool: Schema = { type: 'boolean' };
const time: Schema = { type: 'string', format: 'date-time' };
const preserve: Schema = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
const obj = (properties: Record<string, Schema>): Schema => ({ type: 'object', properties });
const arr = (items: Schema): Schema => ({ type: 'array', items });
const _stringMap: Schema = { type: 'object', additionalProperties: str };
const quantityMap: Schema = { type: 'object', additionalProperties: { 'x-kubernetes-int-or-string': true } };

/** Builds a resource's top-level schema: TypeMeta and ObjectMeta plus the type's own fields. */
function root(fields: Record<string, Schema>): Schema {
  return obj({ apiVersion: str, kind: str, metadata: { type: 'object' }, ...fields });
}

const objectMetaStrategies: MergeStrategies = {
  'metadata.finalizers': { primitive: true },
  'metadata.ownerReferences': { key: 'uid' },
};

const conditionSchema = arr(
  obj({
    type: str,
    status: str,
    lastHeartbeatTime: time,
    lastTransitionTime: time,
    lastProbeTime: time,
    reason: str,
    message: str,
  }),
);

function base(
  partial: Pick<
    ResourceType,
    'group' | 'version' | 'kind' | 'plural' | 'singular' | 'namespaced' | 'schema'
  > &
    Partial<ResourceType>,
): ResourceType {
  return {
    listKind: `${partial.kind}List`,
    shortNames: [],
    categories: [],
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    statusSubresource: false,
    storage: `${partial.group}/${partial.plural}`,
    custom: false,
    columns: [nameColumn, ageColumn],
    fieldLabels: {},
    mergeStrategies: objectMetaStrategies,
    tracksGeneration: false,
    allowCreateOnUpdate: false,
    allowUnconditionalUpdate: true,
    returnDeletedObject: false,
    nameFormat: 'subdomain',
    ...partial,
  };
}

export const namespaces = base({
  group: '',
  version: 'v1',
  kind: 'Namespace',
  plural: 'namespaces',
  singular: 'namespace',
  shortNames: ['ns'],
  namespaced: false,
  verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
  statusSubresource: true,
  returnDeletedObject: true,
  nameFormat: 'label',
  schema: root({
    spec: obj({ finalizers: arr(str) }),
    status: obj({ phase: str, conditions: conditionSchema }),
  }),
  columns: [nameColumn, column('Status', (o) => (o.status as { phase?: string })?.phase ?? ''), ageColumn],
  fieldLabels: { 'status.phase': (o) => (o.status as { phase?: string } | undefined)?.phase },
  prepareForCreate(o) {
    // NamespaceStrategy.PrepareForCreate: the kubernetes finalizer and the Active phase.
    const spec = (o.spec ?? {}) as { finalizers?: string[] };
    const finalizers = new Set(spec.finalizers ?? []);
    finalizers.add('kubernetes');
    o.spec = { ...spec, finalizers: [...finalizers] };
    o.status = { phase: 'Active' };
  },
  prepareForUpdate(o, old) {
    // Spec finalizers change only through /finalize; status only through /status.
    o.spec = old.spec;
    o.status = old.status;
  },
});

function nodeReady(o: KubeObject): string {
  const status = o.status as { conditions?: Array<{ type: string; status: string }> } | undefined;
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  let text = !ready
    ? 'Unknown'
    : ready.status === 'True'
      ? 'Ready'
      : ready.status === 'False'
        ? 'NotReady'
        : 'Unknown';
  if ((o.spec as { unschedulable?: boolean } | undefined)?.unschedulable) text += ',SchedulingDisabled';
  return text;
}

function nodeRoles(o: KubeObject): string {
  const roles = new Set<string>();
  for (const [key, value] of Object.entries(o.metadata.labels ?? {})) {
    if (key.startsWith('node-role.kubernetes.io/')) roles.add(key.slice('node-role.kubernetes.io/'.length));
    else if (key === 'kubernetes.io/role' && value) roles.add(value);
  }
  return roles.size ? [...roles].sort().join(',') : '<none>';
}

function nodeAddress(o: KubeObject, type: string): string {
  const status = o.status as { addresses?: Array<{ type: string; address: string }> } | undefined;
  return status?.addresses?.find((a) => a.type === type)?.address ?? '<none>';
}

function nodeInfo(o: KubeObject, key: string): string {
  const info = (o.status as { nodeInfo?: Record<string, string> } | undefined)?.nodeInfo;
  return info?.[key] || '<unknown>';
}

export const nodes = base({
  group: '',
  version: 'v1',
  kind: 'Node',
  plural: 'nodes',
  singular: 'node',
  shortNames: ['no'],
  namespaced: false,
  statusSubresource: true,
  schema: root({
    spec: obj({
      podCIDR: str,
      podCIDRs: arr(str),
      providerID: str,
      unschedulable: bool,
      taints: arr(obj({ key: str, value: str, effect: str, timeAdded: time })),
      configSource: preserve,
      externalID: str,
    }),
    status: obj({
      capacity: quantityMap,
      allocatable: quantityMap,
      phase: str,
      conditions: conditionSchema,
      addresses: arr(obj({ type: str, address: str })),
      daemonEndpoints: preserve,
      nodeInfo: obj({
        machineID: str,
        systemUUID: str,
        bootID: str,
        kernelVersion: str,
        osImage: str,
        containerRuntimeVersion: str,
        kubeletVersion: str,
        kubeProxyVersion: str,
        operatingSystem: str,
        architecture: str,
      }),
      images: arr(preserve),
      volumesInUse: arr(str),
      volumesAttached: arr(preserve),
      config: preserve,
      runtimeHandlers: arr(preserve),
      features: preserve,
    }),
  }),
  mergeStrategies: {
    ...objectMetaStrategies,
    'status.conditions': { key: 'type' },
    'status.addresses': { key: 'type' },
    'status.images': { key: 'names' },
  },
  columns: [
    nameColumn,
    column('Status', nodeReady, { description: 'The status of the node' }),
    column('Roles', nodeRoles, { description: 'The roles of the node' }),
    ageColumn,
    column('Version', (o) => nodeInfo(o, 'kubeletVersion'), {
      description: 'Kubelet Version reported by the node.',
    }),
    column('Internal-IP', (o) => nodeAddress(o, 'InternalIP'), { priority: 1 }),
    column('External-IP', (o) => nodeAddress(o, 'ExternalIP'), { priority: 1 }),
    column('OS-Image', (o) => nodeInfo(o, 'osImage'), { priority: 1 }),
    column('Kernel-Version', (o) => nodeInfo(o, 'kernelVersion'), { priority: 1 }),
    column('Container-Runtime', (o) => nodeInfo(o, 'containerRuntimeVersion'), { priority: 1 }),
  ],
  fieldLabels: {
    'spec.unschedulable': (o) =>
      String((o.spec as { unschedulable?: boolean } | undefined)?.unschedulable ?? false),
  },
  // Nodes may carry status on create (the kubelet registers itself with it); updates keep it.
  prepareForUpdate(o, old) {
    o.status = old.status;
  },
  validate(o) {
    const errs: FieldError[] = [];
    const taints =
      (o.spec as { taints?: Array<{ key?: string; effect?: string }> } | undefined)?.taints ?? [];
    taints.forEach((t, i) => {
      if (!t.key) errs.push(field.required(`spec.taints[${i}].key`));
      if (!['NoSchedule', 'PreferNoSchedule', 'NoExecute'].includes(t.effect ?? ''))
        errs.push(
          field.notSupported(`spec.taints[${i}].effect`, t.effect ?? '', [
            'NoSchedule',
            'PreferNoSchedule',
            'NoExecute',
          ]),
        );
    });
    return errs;
  },
});

const objectReference = obj({
  kind: str,
  namespace: str,
  name: str,
  uid: str,
  apiVersion: str,
  resourceVersion: str,
  fieldPath: str,
});
const eventSeries = obj({ count: int, lastObservedTime: str });
const eventSource = obj({ component: str, host: str });

/** The shared Event storage is in core/v1 shape; events.k8s.io/v1 converts these field names. */
const EVENT_FIELD_MAP: Array<[string, string]> = [
  ['regarding', 'involvedObject'],
  ['related', 'related'],
  ['note', 'message'],
  ['reason', 'reason'],
  ['type', 'type'],
  ['action', 'action'],
  ['eventTime', 'eventTime'],
  ['series', 'series'],
  ['reportingController', 'reportingComponent'],
  ['reportingInstance', 'reportingInstance'],
  ['deprecatedSource', 'source'],
  ['deprecatedFirstTimestamp', 'firstTimestamp'],
  ['deprecatedLastTimestamp', 'lastTimestamp'],
  ['deprecatedCount', 'count'],
];

function convertEvent(o: KubeObject, from: 0 | 1, apiVersion: string): KubeObject {
  const out: KubeObject = { apiVersion, kind: 'Event', metadata: o.metadata };
  for (const pair of EVENT_FIELD_MAP) {
    const value = o[pair[from]];
    if (value !== undefined && value !== null && value !== '' && value !== 0) out[pair[1 - from]!] = value;
  }
  return out;
}

function eventObject(o: KubeObject): string {
  const ref = (o.involvedObject ?? {}) as { kind?: string; name?: string };
  return `${(ref.kind ?? '').toLowerCase()}/${ref.name ?? ''}`;
}

function eventLastSeen(o: KubeObject, now: number): string {
  const ts = (o.lastTimestamp as string) || (o.eventTime as string) || o.metadata.creationTimestamp;
  return since(ts, now);
}

const coreEventFields = {
  involvedObject: objectReference,
  reason: str,
  message: str,
  source: eventSource,
  firstTimestamp: time,
  lastTimestamp: time,
  count: int,
  type: str,
  eventTime: { type: 'string' } as Schema,
  series: eventSeries,
  action: str,
  related: objectReference,
  reportingComponent: str,
  reportingInstance: str,
};

function eventFieldLabels(): ResourceType['fieldLabels'] {
  const ref = (o: KubeObject, k: string) => ((o.involvedObject ?? {}) as Record<string, string>)[k];
  return {
    'involvedObject.kind': (o) => ref(o, 'kind'),
    'involvedObject.namespace': (o) => ref(o, 'namespace'),
    'involvedObject.name': (o) => ref(o, 'name'),
    'involvedObject.uid': (o) => ref(o, 'uid'),
    'involvedObject.apiVersion': (o) => ref(o, 'apiVersion'),
    'involvedObject.resourceVersion': (o) => ref(o, 'resourceVersion'),
    'involvedObject.fieldPath': (o) => ref(o, 'fieldPath'),
    reason: (o) => o.reason as string | undefined,
    reportingComponent: (o) => o.reportingComponent as string | undefined,
    source: (o) => (o.source as { component?: string } | undefined)?.component,
    type: (o) => o.type as string | undefined,
  };
}

/**
 * legacyValidateEvent, on the stored (core/v1) shape: an Event without eventTime must agree with its
 * namespace; one with eventTime needs the reporting fields. `controllerField` is what the request's
 * API version calls reportingController.
 */
function legacyEventErrors(o: KubeObject, controllerField: string): FieldError[] {
  const errs: FieldError[] = [];
  const namespace = o.metadata.namespace ?? '';
  const regarding = ((o.involvedObject ?? {}) as { namespace?: string }).namespace ?? '';
  const mismatch = field.invalid('involvedObject.namespace', regarding, 'does not match event.namespace');
  if (!o.eventTime) {
    if (regarding ? namespace !== regarding : namespace !== '' && namespace !== 'default')
      errs.push(mismatch);
    return errs;
  }
  if (!regarding && namespace !== 'default' && namespace !== 'kube-system') errs.push(mismatch);
  const controller = (o.reportingComponent as string | undefined) ?? '';
  if (!controller) errs.push(field.required(controllerField));
  for (const problem of qualifiedNameProblems(controller))
    errs.push(field.invalid(controllerField, controller, problem));
  const limited: Array<[string, number, boolean]> = [
    ['reportingInstance', 128, true],
    ['action', 128, true],
    ['reason', 128, true],
    ['message', 1024, false],
  ];
  for (const [key, limit, required] of limited) {
    const value = (o[key] as string | undefined) ?? '';
    if (required && !value) errs.push(field.required(key));
    if (value.length > limit) errs.push(field.invalid(key, '', `can have at most ${limit} characters`));
  }
  return errs;
}

/** ValidateEventCreate's strict part for events.k8s.io/v1 (after the legacy checks). */
function strictEventErrors(o: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  const series = o.series as { count?: number; lastObservedTime?: string } | undefined;
  if (series) {
    if ((series.count ?? 0) < 2) errs.push(field.invalid('series.count', '', 'should be at least 2'));
    if (!series.lastObservedTime) errs.push(field.required('series.lastObservedTime'));
  }
  if (!o.eventTime) errs.push(field.required('eventTime'));
  if (o.type !== 'Normal' && o.type !== 'Warning')
    errs.push(field.invalid('type', '', `has invalid value: ${(o.type as string | undefined) ?? ''}`));
  for (const key of ['firstTimestamp', 'lastTimestamp', 'count'])
    if (o[key]) errs.push(field.invalid(key, '', 'needs to be unset'));
  const source = o.source as { component?: string; host?: string } | undefined;
  if (source?.component || source?.host) errs.push(field.invalid('source', '', 'needs to be unset'));
  return errs;
}

/** Events are one resource served in two groups: core/v1 and events.k8s.io/v1 share one storage. */
const eventResource = {
  version: 'v1',
  kind: 'Event',
  plural: 'events',
  singular: 'event',
  shortNames: ['ev'],
  namespaced: true,
  storage: 'events',
  allowCreateOnUpdate: true,
  fieldLabels: eventFieldLabels(),
};

export const coreEvents = base({
  ...eventResource,
  group: '',
  schema: root(coreEventFields),
  columns: [
    column('Last Seen', eventLastSeen),
    column('Type', (o) => (o.type as string) ?? ''),
    column('Reason', (o) => (o.reason as string) ?? ''),
    column('Object', eventObject),
    column('Subobject', (o) => (o.involvedObject as { fieldPath?: string } | undefined)?.fieldPath ?? '', {
      priority: 1,
    }),
    column('Source', (o) => (o.source as { component?: string } | undefined)?.component ?? '', {
      priority: 1,
    }),
    column('Message', (o) => (o.message as string) ?? ''),
    column(
      'First Seen',
      (o, now) => since((o.firstTimestamp as string) || o.metadata.creationTimestamp, now),
      {
        priority: 1,
      },
    ),
    column('Count', (o) => (o.count as number) ?? 1, { type: 'integer', priority: 1 }),
    column('Name', (o) => o.metadata.name ?? '', { priority: 1 }),
  ],
  // Through core/v1 only the legacy checks apply, for backwards compatibility.
  validate: (o) => legacyEventErrors(o, 'reportingComponent'),
});

export const eventsV1 = base({
  ...eventResource,
  group: 'events.k8s.io',
  schema: root({
    regarding: objectReference,
    related: objectReference,
    note: str,
    reason: str,
    type: str,
    action: str,
    eventTime: { type: 'string' },
    series: eventSeries,
    reportingController: str,
    reportingInstance: str,
    deprecatedSource: eventSource,
    deprecatedFirstTimestamp: time,
    deprecatedLastTimestamp: time,
    deprecatedCount: int,
  }),
  columns: coreEvents.columns,
  toStorage: (o) => convertEvent(o, 0, 'v1'),
  fromStorage: (o) => convertEvent(o, 1, 'events.k8s.io/v1'),
  validate: (o) => [...legacyEventErrors(o, 'reportingController'), ...strictEventErrors(o)],
});

export const leases = base({
  group: 'coordination.k8s.io',
  version: 'v1',
  kind: 'Lease',
  plural: 'leases',
  singular: 'lease',
  namespaced: true,
  // leaseStrategy: a PUT may create a Lease, but an update must carry a resourceVersion.
  allowCreateOnUpdate: true,
  allowUnconditionalUpdate: false,
  schema: root({
    spec: obj({
      holderIdentity: str,
      leaseDurationSeconds: int,
      acquireTime: str,
      renewTime: str,
      leaseTransitions: int,
      strategy: str,
      preferredHolder: str,
    }),
  }),
  columns: [
    nameColumn,
    column('Holder', (o) => (o.spec as { holderIdentity?: string } | undefined)?.holderIdentity ?? '', {
      description: 'The holder of the lease',
    }),
    ageColumn,
  ],
  validate(o) {
    const errs: FieldError[] = [];
    const spec = (o.spec ?? {}) as { leaseDurationSeconds?: number; leaseTransitions?: number };
    if (spec.leaseDurationSeconds !== undefined && spec.leaseDurationSeconds <= 0)
      errs.push(
        field.invalid('spec.leaseDurationSeconds', spec.leaseDurationSeconds, 'must be greater than 0'),
      );
    if (spec.leaseTransitions !== undefined && spec.leaseTransitions < 0)
      errs.push(
        field.invalid('spec.leaseTransitions', spec.leaseTransitions, 'must be greater than or equal to 0'),
      );
    for (const key of ['acquireTime', 'renewTime'] as const) {
      const value = (o.spec as Record<string, unknown> | undefined)?.[key];
      if (typeof value === 'string' && Number.isNaN(Date.parse(value)))
        errs.push(field.invalid(`spec.${key}`, value, 'must be an RFC3339 time with microseconds'));
    }
    return errs;
  },
});

const AGE_CREATED =
  'CreationTimestamp is a timestamp representing the server time when this object was created.';

export const customResourceDefinitions = base({
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  singular: 'customresourcedefinition',
  shortNames: ['crd', 'crds'],
  namespaced: false,
  statusSubresource: true,
  tracksGeneration: true,
  readOnly: true,
  verbs: ['get', 'list', 'watch'],
  schema: root({ spec: preserve, status: preserve }),
  columns: [
    nameColumn,
    column('Created At', (o) => o.metadata.creationTimestamp ?? '', {
      type: 'date',
      description: AGE_CREATED,
    }),
  ],
});

export function builtinTypes(): ResourceType[] {
  return [namespaces, nodes, coreEvents, eventsV1, leases, customResourceDefinitions];
}
