// Structural openAPIV3Schema handling for custom resources: defaulting and validation with
// the messages apiextensions-apiserver produces (kube-openapi validation → field errors).
import { childPath, isObject, type Json, type JsonObject, type Schema } from '../../src/api/prune.ts';
import { type FieldError, field } from './status.ts';

/**
 * Applies schema defaults in place, top-down, recursing into defaulted values (structuraldefaulting.Default).
 * A null in a non-nullable field takes the default, or is dropped when there is none.
 */
export function applyDefaults(value: Json, schema: Schema | undefined): void {
  if (!schema) return;
  if (isObject(value)) {
    const props = schema.properties ?? {};
    for (const [key, prop] of Object.entries(props)) {
      const present = Object.hasOwn(value, key);
      const isNull = present && value[key] === null && !prop.nullable;
      if (prop.default !== undefined && (!present || isNull)) {
        value[key] = copyJson(prop.default as Json);
      } else if (isNull) {
        delete value[key];
      }
    }
    for (const [key, child] of Object.entries(value)) {
      const prop = props[key];
      if (prop) applyDefaults(child, prop);
      else if (typeof schema.additionalProperties === 'object')
        applyDefaults(child, schema.additionalProperties);
    }
  } else if (Array.isArray(value)) {
    for (const item of value) applyDefaults(item, schema.items);
  }
}

/** A deep copy of a JSON value (defaults are copied into every object; structuredClone is slower). */
function copyJson(v: Json): Json {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(copyJson);
  const out: JsonObject = {};
  for (const k of Object.keys(v)) out[k] = copyJson(v[k]!);
  return out;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const FORMATS: Record<string, (v: string) => boolean> = {
  'date-time': (v) => DATE_TIME.test(v) && !Number.isNaN(Date.parse(v.replace(' ', 'T'))),
  datetime: (v) => DATE_TIME.test(v),
  date: (v) => /^\d{4}-\d{2}-\d{2}$/.test(v),
  byte: (v) => /^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v),
  int32: (v) => /^-?\d+$/.test(v) && Math.abs(Number(v)) <= 2 ** 31,
  int64: (v) => /^-?\d+$/.test(v),
  uuid: (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v),
  hostname: (v) =>
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(v) && v.length <= 253,
  ipv4: (v) => /^(\d{1,3})(\.\d{1,3}){3}$/.test(v) && v.split('.').every((p) => Number(p) <= 255),
};

const patternCache = new Map<string, RegExp>();
function compile(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (!re) {
    re = new RegExp(pattern, 'u');
    patternCache.set(pattern, re);
  }
  return re;
}

/**
 * Validates a (pruned, defaulted) value against the schema and returns field errors in the shape
 * apiextensions' ConvertToFieldErrors gives them. `path` is the JSON path of `value` ('' at the root).
 */
export function validate(value: unknown, schema: Schema, path = ''): FieldError[] {
  const out: FieldError[] = [];
  validateInto(value, schema, path, out);
  return out;
}

function validateInto(value: unknown, schema: Schema, path: string, out: FieldError[]): void {
  const name = path || '<nil>';
  if (value === null) {
    if (schema.nullable) return;
    if (schema.type || schema['x-kubernetes-int-or-string']) {
      out.push(
        field.typeInvalid(
          path,
          'null',
          `${name} in body must be of type ${schema.type ?? 'integer'}: "null"`,
        ),
      );
      return;
    }
  }
  const actual = jsonType(value);
  if (schema['x-kubernetes-int-or-string']) {
    if (actual !== 'integer' && actual !== 'string') {
      out.push(
        field.typeInvalid(path, actual, `${name} in body must be of type integer,string: "${actual}"`),
      );
      return;
    }
  } else if (schema.type) {
    const ok = schema.type === actual || (schema.type === 'number' && actual === 'integer');
    if (!ok) {
      out.push(
        field.typeInvalid(path, actual, `${name} in body must be of type ${schema.type}: "${actual}"`),
      );
      return;
    }
  }
  if (schema.enum && !schema.enum.some((e) => deepEqual(e, value))) {
    out.push(
      field.notSupported(
        path,
        value,
        schema.enum.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))),
      ),
    );
  }
  if (typeof value === 'string') validateString(value, schema, path, name, out);
  else if (typeof value === 'number') validateNumber(value, schema, path, name, out);
  else if (Array.isArray(value)) validateArray(value, schema, path, name, out);
  else if (isObject(value)) validateObject(value, schema, path, name, out);
  validateCombinators(value, schema, path, out);
}

function validateString(value: string, schema: Schema, path: string, name: string, out: FieldError[]) {
  const length = [...value].length;
  if (schema.maxLength !== undefined && length > schema.maxLength)
    out.push(field.tooLong(path, schema.maxLength));
  if (schema.minLength !== undefined && length < schema.minLength)
    out.push(field.invalid(path, value, `${name} in body should be at least ${schema.minLength} chars long`));
  if (schema.pattern !== undefined && !compile(schema.pattern).test(value))
    out.push(field.invalid(path, value, `${name} in body should match '${schema.pattern}'`));
  if (schema.format && FORMATS[schema.format] && !FORMATS[schema.format]!(value))
    out.push(
      field.invalid(
        path,
        value,
        `${name} in body must be of type ${schema.format}: ${JSON.stringify(value)}`,
      ),
    );
}

function validateNumber(value: number, schema: Schema, path: string, name: string, out: FieldError[]) {
  if (schema.maximum !== undefined) {
    if (schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum)
      out.push(
        field.invalid(
          path,
          value,
          `${name} in body should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}`,
        ),
      );
  }
  if (schema.minimum !== undefined) {
    if (schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum)
      out.push(
        field.invalid(
          path,
          value,
          `${name} in body should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}`,
        ),
      );
  }
  if (schema.multipleOf !== undefined && value % schema.multipleOf !== 0)
    out.push(field.invalid(path, value, `${name} in body should be a multiple of ${schema.multipleOf}`));
}

function validateArray(value: unknown[], schema: Schema, path: string, name: string, out: FieldError[]) {
  if (schema.maxItems !== undefined && value.length > schema.maxItems)
    out.push(field.tooMany(path, value.length, schema.maxItems));
  if (schema.minItems !== undefined && value.length < schema.minItems)
    out.push(
      field.invalid(path, value.length, `${name} in body should have at least ${schema.minItems} items`),
    );
  if (schema.items)
    value.forEach((item, i) => {
      validateInto(item, schema.items!, `${path}[${i}]`, out);
    });
  const listType = schema['x-kubernetes-list-type'];
  if (listType === 'map') {
    const keys = schema['x-kubernetes-list-map-keys'] ?? [];
    const seen = new Set<string>();
    value.forEach((item, i) => {
      if (!isObject(item)) return;
      const keyValue: Record<string, unknown> = {};
      for (const k of keys) if (item[k] !== undefined) keyValue[k] = item[k];
      const id = JSON.stringify(keys.map((k) => item[k] ?? null));
      if (seen.has(id)) out.push(field.duplicate(`${path}[${i}]`, keyValue));
      seen.add(id);
    });
  } else if (listType === 'set' || schema.uniqueItems) {
    const seen = new Set<string>();
    value.forEach((item, i) => {
      const id = canonical(item);
      if (seen.has(id)) out.push(field.duplicate(`${path}[${i}]`, item));
      seen.add(id);
    });
  }
}

function validateObject(value: JsonObject, schema: Schema, path: string, name: string, out: FieldError[]) {
  for (const req of schema.required ?? []) {
    if (!Object.hasOwn(value, req)) out.push(field.required(childPath(path, req)));
  }
  const count = Object.keys(value).length;
  if (schema.maxProperties !== undefined && count > schema.maxProperties)
    out.push(field.tooMany(path, count, schema.maxProperties));
  if (schema.minProperties !== undefined && count < schema.minProperties)
    out.push(
      field.invalid(path, count, `${name} in body should have at least ${schema.minProperties} properties`),
    );
  for (const [key, child] of Object.entries(value)) {
    const prop = schema.properties?.[key];
    if (prop) validateInto(child, prop, childPath(path, key), out);
    else if (typeof schema.additionalProperties === 'object')
      validateInto(child, schema.additionalProperties, childPath(path, key), out);
  }
}

/** oneOf/anyOf/allOf/not: value-validation-only schemas in structural CRDs (no types, no defaults). */
function validateCombinators(value: unknown, schema: Schema, path: string, out: FieldError[]) {
  const label = path || '<nil>';
  if (schema.allOf) for (const s of schema.allOf) validateInto(value, s, path, out);
  if (schema.anyOf) {
    const results = schema.anyOf.map((s) => validate(value, s, path));
    if (!results.some((r) => r.length === 0)) {
      out.push(field.invalid('', '', `"${label}" must validate at least one schema (anyOf)`));
      out.push(...best(results));
    }
  }
  if (schema.oneOf) {
    const results = schema.oneOf.map((s) => validate(value, s, path));
    const valid = results.filter((r) => r.length === 0).length;
    if (valid !== 1) {
      const why = valid === 0 ? 'Found none valid' : `Found ${valid} valid alternatives`;
      out.push(field.invalid('', '', `"${label}" must validate one and only one schema (oneOf). ${why}`));
      if (valid === 0) out.push(...best(results));
    }
  }
  if (schema.not && validate(value, schema.not, path).length === 0) {
    out.push(field.invalid('', '', `"${label}" must not validate the schema (not)`));
  }
}

/** kube-openapi reports the failures of the alternative that came closest (fewest errors). */
function best(results: FieldError[][]): FieldError[] {
  let chosen: FieldError[] | undefined;
  for (const r of results) if (!chosen || r.length < chosen.length) chosen = r;
  return chosen ?? [];
}

function canonical(v: unknown): string {
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return JSON.stringify(v);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.hasOwn(bo, k) && deepEqual(ao[k], bo[k]));
}

/** A schema for a property path like `spec.rollout`, or undefined. */
export function schemaAt(schema: Schema, path: string[]): Schema | undefined {
  let s: Schema | undefined = schema;
  for (const key of path) {
    if (!s) return undefined;
    s =
      s.properties?.[key] ??
      (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
  }
  return s;
}
