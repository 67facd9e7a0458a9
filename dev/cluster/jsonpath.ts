// The JSONPath subset printer columns use (`.a.b`, `.a[0]`, `.a[*].b`, `.a[?(@.k=="v")].b`) and
// apimachinery's HumanDuration, which the server uses for `date` columns.

type Step =
  | { kind: 'field'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'all' }
  | { kind: 'filter'; path: string[]; op: '==' | '!='; value: unknown };

const compiled = new Map<string, Step[]>();

/** Parses `.spec.conditions[?(@.type=="Ready")].status` (optionally wrapped in `{}`); throws on syntax errors. */
export function parseJsonPath(expression: string): Step[] {
  const cached = compiled.get(expression);
  if (cached) return cached;
  let src = expression.trim();
  if (src.startsWith('{') && src.endsWith('}')) src = src.slice(1, -1).trim();
  if (src.startsWith('$')) src = src.slice(1);
  const steps: Step[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === '.') {
      i++;
      let j = i;
      while (j < src.length && src[j] !== '.' && src[j] !== '[') j++;
      const name = src.slice(i, j);
      if (name) steps.push(name === '*' ? { kind: 'all' } : { kind: 'field', name });
      i = j;
    } else if (c === '[') {
      const end = findClose(src, i);
      const inner = src.slice(i + 1, end).trim();
      i = end + 1;
      if (inner === '*') steps.push({ kind: 'all' });
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: 'index', index: Number(inner) });
      else if (/^'.*'$|^".*"$/.test(inner)) steps.push({ kind: 'field', name: inner.slice(1, -1) });
      else {
        const m = /^\?\(@((?:\.[^.=!\s]+)+)\s*(==|!=)\s*(.+)\)$/.exec(inner);
        if (!m) throw new Error(`unsupported JSONPath expression ${expression}`);
        const raw = m[3]!.trim();
        const value = /^['"].*['"]$/.test(raw) ? raw.slice(1, -1) : JSON.parse(raw);
        steps.push({ kind: 'filter', path: m[1]!.slice(1).split('.'), op: m[2] as '==' | '!=', value });
      }
    } else {
      throw new Error(`unexpected ${c} in JSONPath ${expression}`);
    }
  }
  compiled.set(expression, steps);
  return steps;
}

function findClose(src: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[') depth++;
    else if (c === ']' && --depth === 0) return i;
  }
  throw new Error(`unclosed [ in JSONPath ${src}`);
}

/** All values the path selects in `root` (none when a step is missing). */
export function evaluateJsonPath(expression: string, root: unknown): unknown[] {
  let current: unknown[] = [root];
  for (const step of parseJsonPath(expression)) {
    const next: unknown[] = [];
    for (const value of current) {
      if (value === null || value === undefined) continue;
      switch (step.kind) {
        case 'field':
          if (typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, step.name))
            next.push((value as Record<string, unknown>)[step.name]);
          break;
        case 'index':
          if (Array.isArray(value)) {
            const v = value.at(step.index);
            if (v !== undefined) next.push(v);
          }
          break;
        case 'all':
          if (Array.isArray(value)) next.push(...value);
          else if (typeof value === 'object') next.push(...Object.values(value));
          break;
        case 'filter':
          if (Array.isArray(value)) {
            for (const item of value) {
              let v: unknown = item;
              for (const k of step.path)
                v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
              const equal = v === step.value || String(v) === String(step.value);
              if (v !== undefined && (step.op === '==' ? equal : !equal)) next.push(item);
            }
          }
          break;
      }
    }
    current = next;
  }
  return current;
}
