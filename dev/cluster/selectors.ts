// Label and field selectors: parsing with apimachinery's grammar and messages, and matching.
import { type ApiError, errors } from './status.ts';

export type LabelRequirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!' }
  | { key: string; op: 'gt' | 'lt'; value: number };

export type LabelSelector = LabelRequirement[];

export interface FieldRequirement {
  field: string;
  op: '=' | '!=';
  value: string;
}

export type FieldSelector = FieldRequirement[];

const KEY_CHARS = /^[A-Za-z0-9\-_./]+$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Validates a label key as a qualified name; returns the problems apimachinery reports. */
export function qualifiedNameProblems(key: string): string[] {
  const problems: string[] = [];
  const parts = key.split('/');
  let name = key;
  if (parts.length === 2) {
    const [prefix, rest] = parts as [string, string];
    name = rest;
    // IsQualifiedName: an empty prefix, else IsDNS1123Subdomain's length and pattern checks.
    if (prefix.length === 0) problems.push('prefix part must be non-empty');
    else if (prefix.length > 253) problems.push('prefix part must be no more than 253 characters');
    if (prefix.length > 0 && !DNS_SUBDOMAIN.test(prefix))
      problems.push(
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      );
  } else if (parts.length > 2) {
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  // The pattern is checked even when the name part is empty or too long, as apimachinery does.
  if (name.length === 0) problems.push('name part must be non-empty');
  else if (name.length > 63) problems.push('name part must be no more than 63 characters');
  if (!NAME_PART.test(name))
    problems.push(
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    );
  return problems;
}

/** Validates a label value; returns the problems apimachinery reports. */
export function labelValueProblems(value: string): string[] {
  const problems: string[] = [];
  if (value.length > 63) problems.push('must be no more than 63 characters');
  if (!VALUE.test(value))
    problems.push(
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    );
  return problems;
}

type Token =
  | { kind: 'id'; text: string }
  | { kind: 'op'; text: string }
  | { kind: 'comma' }
  | { kind: 'open' }
  | { kind: 'close' };

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === ',') {
      tokens.push({ kind: 'comma' });
      i++;
    } else if (c === '(') {
      tokens.push({ kind: 'open' });
      i++;
    } else if (c === ')') {
      tokens.push({ kind: 'close' });
      i++;
    } else if ('=!<>'.includes(c)) {
      let op = c;
      if ((c === '=' || c === '!') && input[i + 1] === '=') op += '=';
      tokens.push({ kind: 'op', text: op });
      i += op.length;
    } else {
      let j = i;
      while (j < input.length && !' \t,()=!<>'.includes(input[j]!)) j++;
      tokens.push({ kind: 'id', text: input.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

function parseError(message: string): ApiError {
  return errors.badRequest(`unable to parse requirement: ${message}`);
}

function checkKey(key: string) {
  const problems = qualifiedNameProblems(key);
  if (problems.length || !KEY_CHARS.test(key))
    throw parseError(`<nil>: Invalid value: ${JSON.stringify(key)}: ${problems.join('; ')}`);
}

function checkValue(key: string, value: string) {
  const problems = labelValueProblems(value);
  if (problems.length)
    throw parseError(`values[0][${key}]: Invalid value: ${JSON.stringify(value)}: ${problems.join('; ')}`);
}

/**
 * Parses a label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h,i>1`).
 * Throws a 400 BadRequest ApiError on a syntax error, as the API server answers.
 */
export function parseLabelSelector(input: string | undefined | null): LabelSelector {
  if (!input?.trim()) return [];
  const tokens = tokenize(input);
  const requirements: LabelRequirement[] = [];
  let i = 0;
  const next = () => tokens[i++];
  const peek = () => tokens[i];
  while (i < tokens.length) {
    let negate = false;
    let t = next()!;
    if (t.kind === 'op' && t.text === '!') {
      negate = true;
      t = next()!;
    }
    if (t?.kind !== 'id')
      throw parseError(`found '${describe(t)}', expected: !, identifier, or 'end of string'`);
    const key = t.text;
    checkKey(key);
    const after = peek();
    if (negate) {
      requirements.push({ key, op: '!' });
    } else if (!after || after.kind === 'comma') {
      requirements.push({ key, op: 'exists' });
    } else if (after.kind === 'op') {
      next();
      const op = after.text;
      const valueToken = peek();
      let value = '';
      if (valueToken && valueToken.kind === 'id') {
        value = valueToken.text;
        next();
      }
      if (op === '=' || op === '==') {
        checkValue(key, value);
        requirements.push({ key, op: 'in', values: [value] });
      } else if (op === '!=') {
        checkValue(key, value);
        requirements.push({ key, op: 'notin', values: [value] });
      } else if (op === '>' || op === '<') {
        const n = Number(value);
        if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n))
          throw parseError(`for 'Gt', 'Lt' operators, the value must be an integer`);
        requirements.push({ key, op: op === '>' ? 'gt' : 'lt', value: n });
      } else {
        throw parseError(`found '${op}', expected: '=', '!=', '==', 'in', notin'`);
      }
    } else if (after.kind === 'id' && (after.text === 'in' || after.text === 'notin')) {
      next();
      const open = next();
      if (open?.kind !== 'open') throw parseError(`found '${describe(open)}', expected: '('`);
      const values: string[] = [];
      for (;;) {
        const v = next();
        if (!v) throw parseError(`found 'end of string', expected: ',', ')' or identifier`);
        if (v.kind === 'close') break;
        if (v.kind === 'comma') continue;
        if (v.kind !== 'id') throw parseError(`found '${describe(v)}', expected: ',', ')' or identifier`);
        checkValue(key, v.text);
        values.push(v.text);
      }
      if (values.length === 0) values.push('');
      requirements.push({ key, op: after.text, values });
    } else {
      throw parseError(`found '${describe(after)}', expected: in, notin, =, ==, !=, gt, lt`);
    }
    const sep = next();
    if (sep && sep.kind !== 'comma')
      throw parseError(`found '${describe(sep)}', expected: ',' or 'end of string'`);
  }
  return requirements;
}

function describe(t: Token | undefined): string {
  if (!t) return 'end of string';
  if (t.kind === 'id' || t.kind === 'op') return t.text;
  return t.kind === 'comma' ? ',' : t.kind === 'open' ? '(' : ')';
}

/** Whether `labels` satisfy every requirement (an empty selector matches everything). */
export function matchesLabels(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  for (const r of selector) {
    const has = labels !== undefined && Object.hasOwn(labels, r.key);
    const value = has ? labels![r.key]! : undefined;
    switch (r.op) {
      case 'in':
        if (!has || !r.values.includes(value!)) return false;
        break;
      case 'notin':
        if (has && r.values.includes(value!)) return false;
        break;
      case 'exists':
        if (!has) return false;
        break;
      case '!':
        if (has) return false;
        break;
      case 'gt':
      case 'lt': {
        if (!has || !/^-?\d+$/.test(value!)) return false;
        const n = Number(value);
        if (r.op === 'gt' ? !(n > r.value) : !(n < r.value)) return false;
        break;
      }
    }
  }
  return true;
}

/**
 * Parses a field selector (`metadata.name=x,spec.nodeName!=y`; `==` is `=`), checking each field
 * against `supported`. Unknown fields answer 400 "field label not supported", as the real server does.
 */
export function parseFieldSelector(
  input: string | undefined | null,
  supported: Iterable<string>,
): FieldSelector {
  if (!input?.trim()) return [];
  const allowed = new Set(supported);
  const out: FieldRequirement[] = [];
  for (const part of splitUnescaped(input)) {
    const term = part.trim();
    if (!term) continue;
    const m = /^([^=!]+?)\s*(==|!=|=)\s*(.*)$/s.exec(term);
    if (!m) throw errors.badRequest(`invalid selector: '${input}'; can't understand '${term}'`);
    const fieldName = m[1]!.trim();
    const op = m[2] === '!=' ? '!=' : '=';
    const value = unescapeFieldValue(m[3]!);
    if (!allowed.has(fieldName)) throw errors.badRequest(`field label not supported: ${fieldName}`);
    out.push({ field: fieldName, op, value });
  }
  return out;
}

/** Field selector values escape `\`, `,` and `=` with a backslash (fields.EscapeValue). */
function splitUnescaped(input: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === '\\' && i + 1 < input.length) {
      current += c + input[i + 1];
      i++;
    } else if (c === ',') {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function unescapeFieldValue(value: string): string {
  return value.replace(/\\([\\,=])/g, '$1');
}

/** Whether the object's selectable fields satisfy every requirement. */
export function matchesFields(
  selector: FieldSelector,
  fields: (name: string) => string | undefined,
): boolean {
  for (const r of selector) {
    const value = fields(r.field) ?? '';
    if (r.op === '=' ? value !== r.value : value === r.value) return false;
  }
  return true;
}

/** The single name a selector pins with `metadata.name=`, letting a list skip the scan. */
export function pinnedName(selector: FieldSelector): string | undefined {
  return selector.find((r) => r.field === 'metadata.name' && r.op === '=')?.value;
}
