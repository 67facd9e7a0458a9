// Offline Kubernetes schema checks for manifests: types, required fields and formats from the
// OpenAPI schemas in `kubernetes-models`, and unknown fields (what `kubectl --validate=strict` refuses)
// from the attribute maps of `@kubernetes/client-node`'s models.
import * as k8s from '@kubernetes/client-node';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';

type Model = new (data: never) => { validate(): void };

/** Every kind deploy/ may hold; a manifest of any other kind fails the test until it is added here. */
const models: Record<string, { model: Model; clientType: string; clusterScoped: boolean }> = {
  'v1/Namespace': { model: Namespace, clientType: 'V1Namespace', clusterScoped: true },
  'v1/ServiceAccount': { model: ServiceAccount, clientType: 'V1ServiceAccount', clusterScoped: false },
  'v1/Service': { model: Service, clientType: 'V1Service', clusterScoped: false },
  'v1/ConfigMap': { model: ConfigMap, clientType: 'V1ConfigMap', clusterScoped: false },
  'apps/v1/Deployment': { model: Deployment, clientType: 'V1Deployment', clusterScoped: false },
  'apps/v1/DaemonSet': { model: DaemonSet, clientType: 'V1DaemonSet', clusterScoped: false },
  'policy/v1/PodDisruptionBudget': {
    model: PodDisruptionBudget,
    clientType: 'V1PodDisruptionBudget',
    clusterScoped: false,
  },
  'rbac.authorization.k8s.io/v1/ClusterRole': {
    model: ClusterRole,
    clientType: 'V1ClusterRole',
    clusterScoped: true,
  },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': {
    model: ClusterRoleBinding,
    clientType: 'V1ClusterRoleBinding',
    clusterScoped: true,
  },
  'rbac.authorization.k8s.io/v1/Role': { model: Role, clientType: 'V1Role', clusterScoped: false },
  'rbac.authorization.k8s.io/v1/RoleBinding': {
    model: RoleBinding,
    clientType: 'V1RoleBinding',
    clusterScoped: false,
  },
  'apiextensions.k8s.io/v1/CustomResourceDefinition': {
    model: CustomResourceDefinition,
    clientType: 'V1CustomResourceDefinition',
    clusterScoped: true,
  },
};

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

const typeKey = (o: { apiVersion: string; kind: string }) => `${o.apiVersion}/${o.kind}`;

export const isKnownKind = (o: KubeObject) => typeKey(o) in models;
export const isClusterScoped = (o: KubeObject) => models[typeKey(o)]?.clusterScoped === true;

interface Attribute {
  baseName: string;
  type: string;
}
const clientModels = k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attribute[] }>;

/** Paths of fields the Kubernetes API does not define, walking client-node's type maps. */
export function unknownFields(value: unknown, type: string, path = ''): string[] {
  if (value === null || value === undefined || typeof value !== 'object') return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1]!, `${path}[${i}]`)) : [];
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`));
  const attributes = clientModels[type]?.getAttributeTypeMap?.();
  if (!attributes) return []; // a scalar, IntOrString, or free-form (`any`) value
  const known = new Map(attributes.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const fieldType = known.get(k);
    return fieldType === undefined ? [`${path}.${k}`] : unknownFields(v, fieldType, `${path}.${k}`);
  });
}

/** Every schema problem of one manifest, as sentences; empty when the API server would accept it. */
export function schemaProblems(object: KubeObject): string[] {
  const entry = models[typeKey(object)];
  if (!entry) return [`${typeKey(object)} is not a kind this test knows; add it to k8s-schema.ts`];
  const problems: string[] = [];
  try {
    new entry.model(object as never).validate();
  } catch (error) {
    problems.push((error as Error).message);
  }
  for (const field of unknownFields(object, entry.clientType)) problems.push(`unknown field ${field}`);
  return problems;
}
