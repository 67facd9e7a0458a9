// Plain-text tables for benchmark output (and markdown for docs/benchmarks.md).

export type Row = Record<string, string | number>;

function cell(v: string | number): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1);
  return v;
}

export function renderTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '(no rows)';
  const headers = Object.keys(rows[0]!);
  const body = rows.map((r) => headers.map((h) => cell(r[h] ?? '')));
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export function renderMarkdownTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '';
  const headers = Object.keys(rows[0]!);
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${headers.map((h) => cell(r[h] ?? '')).join(' | ')} |`),
  ].join('\n');
}
