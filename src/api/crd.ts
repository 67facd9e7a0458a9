// CRD generation: zod schemas → structural openAPIV3Schema, as a Kubernetes 1.28+ API server accepts it.
import { stringify } from 'yaml';
import { z } from 'zod';
import { CATEGORY, GROUP, Kinds, VERSION } from './group.ts';
import { PluginActivationSpec, PluginActivationStatus } from './pluginactivation.ts';
import { PluginReleaseSpec, PluginReleaseStatus } from './pluginrelease.ts';

type JsonSchema = { [key: string]: unknown };

const SAFE_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

/**
 * Rewrites zod's JSON Schema into the structural subset Kubernetes requires: no `$schema`, no
 * `propertyNames`, no `additionalProperties` beside `properties`, int-or-string as the
 * `x-kubernetes-int-or-string` extension, and no regex on date-time strings (`format` says it).
 */
export function toStructural(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$schema' || key === 'propertyNames') continue;
    if ((key === 'minimum' || key === 'maximum') && SAFE_BOUNDS.has(value as number)) continue;
    out[key] = value;
  }
  if (out['x-kubernetes-int-or-string']) {
    // A structural schema allows no typed anyOf branches here, so each branch's bounds move up to the
    // node: `minimum` only constrains integers and `pattern` only strings, so they stay per branch.
    for (const branch of (out.anyOf as JsonSchema[] | undefined) ?? []) {
      const { type: _type, ...bounds } = toStructural(branch);
      Object.assign(out, bounds);
    }
    delete out.anyOf;
    delete out.type;
  }
  if (out.format === 'date-time') delete out.pattern;
  if (out.properties) {
    delete out.additionalProperties;
    out.properties = Object.fromEntries(
      Object.entries(out.properties as Record<string, JsonSchema>).map(([k, v]) => [k, toStructural(v)]),
    );
  }
  if (out.additionalProperties && typeof out.additionalProperties === 'object') {
    out.additionalProperties = toStructural(out.additionalProperties as JsonSchema);
  }
  if (out.items) out.items = toStructural(out.items as JsonSchema);
  return out;
}

function schemaOf(spec: z.ZodType, status: z.ZodType): JsonSchema {
  const convert = (s: z.ZodType) => toStructural(z.toJSONSchema(s, { target: 'openapi-3.0', io: 'input' }));
  return {
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: convert(spec),
      status: convert(status),
    },
  };
}

interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

function crd(
  names: { kind: string; plural: string; singular: string; shortNames: readonly string[] },
  schema: JsonSchema,
  columns: PrinterColumn[],
) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: names.kind,
        listKind: `${names.kind}List`,
        plural: names.plural,
        singular: names.singular,
        shortNames: [...names.shortNames],
        categories: [CATEGORY],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: columns,
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}

const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export function pluginReleaseCrd() {
  return crd(Kinds.PluginRelease, schemaOf(PluginReleaseSpec, PluginReleaseStatus), [
    { name: 'Plugin', type: 'string', jsonPath: '.spec.plugin' },
    { name: 'Version', type: 'string', jsonPath: '.spec.version' },
    {
      name: 'Ready',
      type: 'string',
      jsonPath: '.status.ready',
      description: 'Nodes where the plugin serves (any revision) / targeted nodes, as a DaemonSet READY',
    },
    {
      name: 'Up-to-date',
      type: 'integer',
      jsonPath: '.status.nodes.upToDate',
      description: 'Nodes serving the revision being rolled out',
    },
    { name: 'Status', type: 'string', jsonPath: '.status.phase' },
    AGE,
    { name: 'Revision', type: 'string', jsonPath: '.status.revision', priority: 1 },
  ]);
}

export function pluginActivationCrd() {
  return crd(Kinds.PluginActivation, schemaOf(PluginActivationSpec, PluginActivationStatus), [
    { name: 'Node', type: 'string', jsonPath: '.spec.nodeName' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Revision', type: 'string', jsonPath: '.spec.revision', description: 'The revision asked for' },
    // What serves, beside what is asked for: after a fleet rollback they differ.
    {
      name: 'Serving',
      type: 'string',
      jsonPath: '.status.activeRevision',
      description: 'The revision the node serves',
    },
    AGE,
    { name: 'Reason', type: 'string', jsonPath: '.status.reason', priority: 1 },
  ]);
}

/** File name → CRD object, in the `<group>_<plural>.yaml` convention of controller-gen. */
export function generatedCrds(): Record<string, object> {
  return {
    [`${GROUP}_${Kinds.PluginRelease.plural}.yaml`]: pluginReleaseCrd(),
    [`${GROUP}_${Kinds.PluginActivation.plural}.yaml`]: pluginActivationCrd(),
  };
}

/** The exact bytes written to crds/: a header saying where they come from, then YAML. */
export function renderCrd(crd: object): string {
  return `# Generated by \`npm run gen:crds\` from src/api. Do not edit.\n${stringify(crd, { lineWidth: 0 })}`;
}
