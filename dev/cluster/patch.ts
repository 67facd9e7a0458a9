// The three patch formats the API server accepts on every object: JSON merge patch (RFC 7386),
// JSON patch (RFC 6902, with evanphx/json-patch v4's error messages) and strategic merge patch
// (for built-in types, driven by a table of list merge keys).
import { deepEqual } from './schema.ts';

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** A JSON patch that cannot be applied; the server answers 422 with this message as the cause. */
export class JsonPatchError extends Error {}

/** A JSON patch document that is not a list of operations; the server answers 400. */
export class JsonPatchDecodeError extends Error {}

interface Operation {
  op: string;
  path?: string;
  from?: string;
  value?: unknown;
}

function decodePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    throw new JsonPatchError(`JSON pointer must be empty or start with a "/": ${pointer}`);
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Finds the container of the last token, as evanphx's findObject does (undefined when missing). */
function findContainer(doc: unknown, tokens: string[]): JsonObject | unknown[] | undefined {
  let current = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(current)) {
      if (!/^\d+$/.test(token)) return undefined;
      current = current[Number(token)];
    } else if (isObject(current)) {
      current = Object.hasOwn(current, token) ? current[token] : undefined;
    } else {
      return undefined;
    }
    if (current === undefined || current === null) return undefined;
  }
  return isObject(current) || Array.isArray(current) ? current : undefined;
}

function arrayIndex(container: unknown[], key: string, forAdd: boolean): number {
  if (forAdd && key === '-') return container.length;
  if (!/^-?\d+$/.test(key))
    throw new JsonPatchError(`Unable to access invalid index: ${key}: invalid index referenced`);
  let index = Number(key);
  const limit = forAdd ? container.length : container.length - 1;
  if (index < -container.length || index > limit)
    throw new JsonPatchError(`Unable to access invalid index: ${index}: invalid index referenced`);
  if (index < 0) index += container.length;
  return index;
}

function getAt(container: unknown, key: string): unknown {
  if (Array.isArray(container)) {
    if (!/^\d+$/.test(key) || Number(key) >= container.length) return undefined;
    return container[Number(key)];
  }
  return Object.hasOwn(container as JsonObject, key) ? (container as JsonObject)[key] : undefined;
}

/** Parses a JSON patch body; throws JsonPatchDecodeError when it is not an array of operations. */
export function decodeJsonPatch(body: unknown): Operation[] {
  if (!Array.isArray(body))
    throw new JsonPatchDecodeError('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  for (const op of body) {
    if (!isObject(op))
      throw new JsonPatchDecodeError('json: cannot unmarshal into Go value of type jsonpatch.Operation');
  }
  return body as Operation[];
}

/** Applies RFC 6902 operations to a copy of `doc`; throws JsonPatchError with evanphx's messages. */
export function applyJsonPatch(doc: unknown, operations: Operation[]): unknown {
  let root = structuredClone(doc);
  for (const op of operations) {
    const path = op.path;
    if (typeof path !== 'string' && op.op !== undefined && op.op !== '') {
      throw new JsonPatchError(`${op.op} operation failed to decode path: missing value`);
    }
    switch (op.op) {
      case 'add':
        root = add(root, path!, op.value, 'add');
        break;
      case 'remove':
        root = remove(root, path!);
        break;
      case 'replace':
        root = replace(root, path!, op.value);
        break;
      case 'move':
      case 'copy':
        root = copyOrMove(root, op.op, op.from, path!);
        break;
      case 'test':
        test(root, path!, op.value);
        break;
      default:
        throw new JsonPatchError(`Unexpected kind: ${op.op}`);
    }
  }
  return root;
}

/** The container `add` and `remove` act on, or evanphx's "doc is missing path" error. */
function containerFor(root: unknown, tokens: string[], path: string, opName: string): JsonObject | unknown[] {
  const container = findContainer(root, tokens);
  if (!container)
    throw new JsonPatchError(
      `${opName} operation does not apply: doc is missing path: "${path}": missing value`,
    );
  return container;
}

/** The array index `add` (which may name the end) or `remove` acts on, the error wrapped as evanphx does. */
function indexFor(container: unknown[], key: string, path: string, opName: string, forAdd: boolean): number {
  try {
    return arrayIndex(container, key, forAdd);
  } catch (error) {
    throw new JsonPatchError(`error in ${opName} for path: '${path}': ${(error as Error).message}`);
  }
}

function add(root: unknown, path: string, value: unknown, opName: string): unknown {
  const tokens = decodePointer(path);
  if (tokens.length === 0) return structuredClone(value);
  const container = containerFor(root, tokens, path, opName);
  const key = tokens.at(-1)!;
  if (Array.isArray(container))
    container.splice(indexFor(container, key, path, opName, true), 0, structuredClone(value));
  else container[key] = structuredClone(value);
  return root;
}

function remove(root: unknown, path: string): unknown {
  const tokens = decodePointer(path);
  const container = containerFor(root, tokens, path, 'remove');
  const key = tokens.at(-1)!;
  if (Array.isArray(container)) {
    container.splice(indexFor(container, key, path, 'remove', false), 1);
  } else {
    if (!Object.hasOwn(container, key))
      throw new JsonPatchError(
        `error in remove for path: '${path}': Unable to remove nonexistent key: ${key}: missing value`,
      );
    delete container[key];
  }
  return root;
}

function replace(root: unknown, path: string, value: unknown): unknown {
  const tokens = decodePointer(path);
  if (tokens.length === 0) return structuredClone(value);
  const container = findContainer(root, tokens);
  const key = tokens.at(-1)!;
  if (!container)
    throw new JsonPatchError(`replace operation does not apply: doc is missing path: ${path}: missing value`);
  if (getAt(container, key) === undefined)
    throw new JsonPatchError(`replace operation does not apply: doc is missing key: ${path}: missing value`);
  if (Array.isArray(container)) container[arrayIndex(container, key, false)] = structuredClone(value);
  else container[key] = structuredClone(value);
  return root;
}

function copyOrMove(root: unknown, opName: 'copy' | 'move', from: unknown, path: string): unknown {
  if (typeof from !== 'string')
    throw new JsonPatchError(`${opName} operation failed to decode from: missing value`);
  const fromTokens = decodePointer(from);
  const fromContainer = findContainer(root, fromTokens);
  const value = fromTokens.length === 0 ? root : fromContainer && getAt(fromContainer, fromTokens.at(-1)!);
  if (!fromContainer && fromTokens.length > 0)
    throw new JsonPatchError(
      `${opName} operation does not apply: doc is missing from path: ${from}: missing value`,
    );
  if (value === undefined)
    throw new JsonPatchError(
      `error in ${opName} for path: '${path}': Unable to get nonexistent key: ${fromTokens.at(-1)}: missing value`,
    );
  const copy = structuredClone(value);
  return add(opName === 'move' ? remove(root, from) : root, path, copy, opName);
}

function test(root: unknown, path: string, expected: unknown): void {
  const tokens = decodePointer(path);
  const container = tokens.length === 0 ? undefined : findContainer(root, tokens);
  if (tokens.length > 0 && !container)
    throw new JsonPatchError(`test operation does not apply: is missing path: ${path}: missing value`);
  const actual = tokens.length === 0 ? root : getAt(container, tokens.at(-1)!);
  const missingBoth =
    (actual === undefined || actual === null) && (expected === undefined || expected === null);
  if (!missingBoth && (actual === undefined || !deepEqual(actual, expected)))
    throw new JsonPatchError(`testing value ${path} failed: test failed`);
}

/**
 * How strategic merge patch treats the lists of a built-in type, by dotted path (array items add no
 * segment: `status.conditions`). `key` merges object lists by that field; `primitive` merges scalar
 * lists as a set. Lists not in the table are replaced, as SMP does for lists without a patch strategy.
 */
export type MergeStrategies = Record<string, { key: string } | { primitive: true }>;

/** Strategic merge patch for the directives a client-side `kubectl apply` or `kubectl patch` sends. */
export function strategicMergePatch(target: unknown, patch: unknown, strategies: MergeStrategies): unknown {
  return smpValue(target, patch, strategies, '');
}

function smpValue(target: unknown, patch: unknown, strategies: MergeStrategies, path: string): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const directive = patch.$patch;
  if (directive === 'replace') {
    const { $patch: _, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (directive === 'delete') return undefined;
  const result: JsonObject = isObject(target) ? { ...target } : {};
  const retainKeys = Array.isArray(patch.$retainKeys) ? (patch.$retainKeys as string[]) : undefined;
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key === '$retainKeys' || key.startsWith('$setElementOrder/')) continue;
    if (key.startsWith('$deleteFromPrimitiveList/')) {
      const listKey = key.slice('$deleteFromPrimitiveList/'.length);
      const current = result[listKey];
      if (Array.isArray(current) && Array.isArray(value))
        result[listKey] = current.filter((item) => !value.some((v) => deepEqual(v, item)));
      continue;
    }
    const childPath = path ? `${path}.${key}` : key;
    if (value === null) {
      delete result[key];
    } else if (Array.isArray(value)) {
      result[key] = smpList(result[key], value, strategies, childPath);
    } else if (isObject(value)) {
      const merged = smpValue(result[key], value, strategies, childPath);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    } else {
      result[key] = value;
    }
  }
  if (retainKeys) {
    for (const key of Object.keys(result)) if (!retainKeys.includes(key)) delete result[key];
  }
  return result;
}

function smpList(target: unknown, patch: unknown[], strategies: MergeStrategies, path: string): unknown[] {
  const strategy = strategies[path];
  const current = Array.isArray(target) ? [...target] : [];
  if (!strategy) {
    return patch.filter((item) => !(isObject(item) && item.$patch === 'delete')).map(stripDirectives);
  }
  const original = [...current];
  if ('primitive' in strategy) {
    for (const item of patch) if (!current.some((c) => deepEqual(c, item))) current.push(item);
    return normalizeOrder(current, patch, original, deepEqual);
  }
  const key = strategy.key;
  for (const item of patch) {
    if (!isObject(item)) continue;
    if (item.$patch === 'replace') return patch.map(stripDirectives);
    const index = current.findIndex((c) => isObject(c) && c[key] === item[key]);
    if (item.$patch === 'delete') {
      if (index >= 0) current.splice(index, 1);
    } else if (index >= 0) {
      current[index] = smpValue(current[index], item, strategies, path);
    } else {
      current.push(stripDirectives(item));
    }
  }
  const sameKey = (a: unknown, b: unknown) => isObject(a) && isObject(b) && a[key] === b[key];
  return normalizeOrder(current, patch, original, sameKey);
}

/**
 * strategicpatch's normalizeElementOrder: the merged items the patch names keep the patch's order,
 * the others the server's, and the two are interleaved by the server's order — an item the server
 * does not have yet goes before the server's remaining ones.
 */
function normalizeOrder(
  merged: unknown[],
  patchOrder: unknown[],
  serverOrder: unknown[],
  same: (a: unknown, b: unknown) => boolean,
): unknown[] {
  const indexIn = (list: unknown[], item: unknown) => list.findIndex((x) => same(x, item));
  const byIndexIn = (list: unknown[]) => (a: unknown, b: unknown) => indexIn(list, a) - indexIn(list, b);
  const fromPatch = merged.filter((m) => indexIn(patchOrder, m) >= 0).sort(byIndexIn(patchOrder));
  const serverOnly = merged.filter((m) => indexIn(patchOrder, m) < 0).sort(byIndexIn(serverOrder));
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length || j < fromPatch.length) {
    if (j >= fromPatch.length) out.push(serverOnly[i++]);
    else if (i >= serverOnly.length) out.push(fromPatch[j++]);
    else {
      const left = indexIn(serverOrder, serverOnly[i]);
      const right = indexIn(serverOrder, fromPatch[j]);
      out.push(left >= 0 && right >= 0 && left < right ? serverOnly[i++] : fromPatch[j++]);
    }
  }
  return out;
}

function stripDirectives(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripDirectives);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    if (k.startsWith('$')) continue;
    out[k] = stripDirectives(v);
  }
  return out;
}
