// Custom resources: reads CustomResourceDefinitions (the YAML in crds/) into served resource types,
// and the CRD objects themselves as the API server would show them once Established.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { Schema } from '../../src/api/prune.ts';
import { evaluateJsonPath } from './jsonpath.ts';
import type { KubeObject, ResourceType } from './resources.ts';
import { type PrinterColumnSpec, printerColumns } from './table.ts';

/** The repository's generated CRDs. */
export const DEFAULT_CRD_DIR = fileURLToPath(new URL('../../crds/', import.meta.url));

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: Schema };
  subresources?: { status?: object; scale?: object };
  additionalPrinterColumns?: PrinterColumnSpec[];
  selectableFields?: Array<{ jsonPath: string }>;
}

export interface CrdObject extends KubeObject {
  spec: {
    group: string;
    scope: 'Namespaced' | 'Cluster';
    names: {
      kind: string;
      listKind?: string;
      plural: string;
      singular?: string;
      shortNames?: string[];
      categories?: string[];
    };
    versions: CrdVersion[];
  };
}

/** Reads every CustomResourceDefinition document from the YAML files in `dir`. */
export function readCrds(dir: string = DEFAULT_CRD_DIR): CrdObject[] {
  const out: CrdObject[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(file)) continue;
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const value = doc.toJS() as CrdObject | null;
      if (value?.kind === 'CustomResourceDefinition') out.push(value);
    }
  }
  return out;
}

/** One served resource type per served version of the CRD. */
export function typesFromCrd(crd: CrdObject): ResourceType[] {
  const { group, names, scope } = crd.spec;
  return crd.spec.versions
    .filter((v) => v.served !== false)
    .map((v) => {
      const fieldLabels: ResourceType['fieldLabels'] = {};
      for (const selectable of v.selectableFields ?? []) {
        const path = selectable.jsonPath.replace(/^\./, '');
        fieldLabels[path] = (o) => {
          const value = evaluateJsonPath(selectable.jsonPath, o)[0];
          return value === undefined || value === null ? undefined : String(value);
        };
      }
      return {
        group,
        version: v.name,
        kind: names.kind,
        listKind: names.listKind ?? `${names.kind}List`,
        plural: names.plural,
        singular: names.singular ?? names.kind.toLowerCase(),
        shortNames: names.shortNames ?? [],
        categories: names.categories ?? [],
        namespaced: scope === 'Namespaced',
        verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
        statusSubresource: v.subresources?.status !== undefined,
        storage: `${group}/${names.plural}`,
        custom: true,
        schema: v.schema?.openAPIV3Schema ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        columns: printerColumns(v.additionalPrinterColumns),
        fieldLabels,
        tracksGeneration: true,
        allowCreateOnUpdate: false,
        allowUnconditionalUpdate: false,
        returnDeletedObject: false,
        nameFormat: 'subdomain',
      } satisfies ResourceType;
    });
}

/** The CRD as stored once the apiextensions controllers accepted it: names accepted, Established. */
export function establishedCrd(crd: CrdObject, now: string): KubeObject {
  const { names } = crd.spec;
  const acceptedNames = {
    kind: names.kind,
    listKind: names.listKind ?? `${names.kind}List`,
    plural: names.plural,
    singular: names.singular ?? names.kind.toLowerCase(),
    ...(names.shortNames ? { shortNames: names.shortNames } : {}),
    ...(names.categories ? { categories: names.categories } : {}),
  };
  const condition = (type: string, reason: string, message: string) => ({
    type,
    status: 'True',
    lastTransitionTime: now,
    reason,
    message,
  });
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { ...crd.metadata },
    spec: {
      conversion: { strategy: 'None' },
      ...crd.spec,
      names: acceptedNames,
    },
    status: {
      acceptedNames,
      conditions: [
        condition('NamesAccepted', 'NoConflicts', 'no conflicts found'),
        condition('Established', 'InitialNamesAccepted', 'the initial names have been accepted'),
      ],
      storedVersions: crd.spec.versions.filter((v) => v.storage).map((v) => v.name),
    },
  };
}
