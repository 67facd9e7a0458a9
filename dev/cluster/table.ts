// meta.k8s.io/v1 Table rendering (what `kubectl get` asks for) and the column helpers resource types use.
import { humanDuration } from '../../src/runtime/duration.ts';
import { evaluateJsonPath } from './jsonpath.ts';
import type { KubeObject, ResourceType, TableColumn } from './resources.ts';

const NAME_DESCRIPTION =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';
const AGE_DESCRIPTION =
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata';

export function column(
  name: string,
  cell: TableColumn['cell'],
  options: { type?: string; format?: string; description?: string; priority?: number } = {},
): TableColumn {
  return {
    name,
    type: options.type ?? 'string',
    format: options.format ?? '',
    description: options.description ?? '',
    priority: options.priority ?? 0,
    cell,
  };
}

export const nameColumn = column('Name', (o) => o.metadata.name ?? '', {
  format: 'name',
  description: NAME_DESCRIPTION,
});

/** A timestamp rendered as the server does for `date` columns: a human duration since then. */
export function since(timestamp: unknown, now: number): string {
  if (typeof timestamp !== 'string' || !timestamp) return '<unknown>';
  const t = Date.parse(timestamp);
  if (Number.isNaN(t)) return '<invalid>';
  return humanDuration(now - t);
}

export const ageColumn = column('Age', (o, now) => since(o.metadata.creationTimestamp, now), {
  description: AGE_DESCRIPTION,
});

/** A CRD version's additionalPrinterColumns item. */
export interface PrinterColumnSpec {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

/** The cell apiextensions' table convertor computes for one additionalPrinterColumn. */
function printerCell(spec: PrinterColumnSpec, object: KubeObject, now: number): unknown {
  let values: unknown[];
  try {
    values = evaluateJsonPath(spec.jsonPath, object);
  } catch {
    return null;
  }
  if (values.length === 0 || values[0] === undefined || values[0] === null) return null;
  const value = values[0];
  switch (spec.type) {
    case 'string':
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'date':
      return typeof value === 'string' ? since(value, now) : null;
    case 'integer':
      return typeof value === 'number' ? Math.trunc(value) : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    default:
      return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

/** Columns for a CRD version: Name, then its additionalPrinterColumns (Age when it declares none). */
export function printerColumns(specs: PrinterColumnSpec[] | undefined): TableColumn[] {
  if (!specs || specs.length === 0) return [nameColumn, ageColumn];
  return [
    nameColumn,
    ...specs.map((spec) =>
      column(spec.name, (o, now) => printerCell(spec, o, now), {
        // A date column is served as a string cell ("5m"); its type stays `date` as the real server says.
        type: spec.type,
        format: spec.format ?? '',
        description: spec.description ?? '',
        priority: spec.priority ?? 0,
      }),
    ),
  ];
}

export type IncludeObject = 'None' | 'Object' | 'PartialObjectMetadata';

/** The object embedded in a row: nothing, the object, or its PartialObjectMetadata. */
function rowObject(_type: ResourceType, object: KubeObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return object;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata };
}

/** Renders objects (already in the requested version) as a meta.k8s.io/v1 Table. */
export function toTable(
  type: ResourceType,
  objects: KubeObject[],
  listMeta: Record<string, unknown>,
  options: { includeObject: IncludeObject; noHeaders?: boolean; now?: number },
): Record<string, unknown> {
  const now = options.now ?? Date.now();
  const table: Record<string, unknown> = {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
  };
  if (!options.noHeaders) {
    table.columnDefinitions = type.columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format,
      description: c.description,
      priority: c.priority,
    }));
  }
  table.rows = objects.map((o) => {
    const row: Record<string, unknown> = { cells: type.columns.map((c) => c.cell(o, now)) };
    const embedded = rowObject(type, o, options.includeObject);
    if (embedded !== undefined) row.object = embedded;
    return row;
  });
  return table;
}
