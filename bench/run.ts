// `npm run bench [-- <name>…] [--quick] [--docs]`: runs the benchmarks, prints their tables, writes
// JSON (and plots) to bench/results/, and with --docs regenerates docs/benchmarks.md from the run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Benchmark, BenchResult } from './lib/benchmark.ts';
import { renderMarkdownTable, renderTable } from './lib/table.ts';

const registry: Record<string, () => Promise<Benchmark>> = {
  front: async () => (await import('./front.ts')).benchmark,
  swap: async () => (await import('./swap.ts')).benchmark,
  activation: async () => (await import('./activation.ts')).benchmark,
  rollout: async () => (await import('./rollout.ts')).benchmark,
  memory: async () => (await import('./memory.ts')).benchmark,
};

export const benchmarkNames = Object.keys(registry);

export async function loadBenchmark(name: string): Promise<Benchmark> {
  const load = registry[name];
  if (!load) throw new Error(`unknown benchmark "${name}"; choose from ${benchmarkNames.join(', ')}`);
  return load();
}

function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}, ${process.platform}`;
}

function markdown(results: BenchResult[], quick: boolean): string {
  const sections = results.map((r) =>
    [
      `## ${r.title}`,
      '',
      ...r.notes,
      '',
      ...r.tables.flatMap((t) => [`**${t.caption}**`, '', renderMarkdownTable(t.rows), '']),
      ...(r.files && Object.keys(r.files).some((f) => f.endsWith('.svg'))
        ? Object.keys(r.files)
            .filter((f) => f.endsWith('.svg'))
            .map((f) => `![${r.title}](img/${f})\n`)
        : []),
    ].join('\n'),
  );
  return [
    '# Benchmarks',
    '',
    '<!-- Written by `npm run bench -- --docs`. Re-run it to refresh; do not edit the figures by hand. -->',
    '',
    `Latest run: ${new Date().toISOString().slice(0, 10)}${quick ? ' (--quick)' : ''} on ${machine()}.`,
    '',
    'Reproduce: `npm ci && npm run bench` (all), `npm run bench -- swap` (one), `npm run bench -- --quick` (CI-sized).',
    'Each benchmark prints a table and writes JSON to `bench/results/`. Machines are noisy: compare the',
    'ratios within one run, not absolute numbers across machines.',
    '',
    ...sections,
  ].join('\n');
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { quick: { type: 'boolean', default: false }, docs: { type: 'boolean', default: false } },
  });
  const names = positionals.length ? positionals : benchmarkNames;
  const resultsDir = join(import.meta.dirname, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const results: BenchResult[] = [];
  console.log(`machine: ${machine()}`);
  for (const name of names) {
    const bench = await loadBenchmark(name);
    console.log(`\n== ${bench.title} ==`);
    const started = performance.now();
    const result = await bench.run({ quick: values.quick, smoke: false, log: (l) => console.log(`  ${l}`) });
    for (const note of result.notes) console.log(note);
    for (const t of result.tables) console.log(`\n${t.caption}\n${renderTable(t.rows)}`);
    console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
    writeFileSync(
      join(resultsDir, `${name}.json`),
      `${JSON.stringify({ machine: machine(), ...result }, null, 2)}\n`,
    );
    for (const [file, content] of Object.entries(result.files ?? {}))
      writeFileSync(join(resultsDir, file), content);
    results.push(result);
  }
  if (values.docs) {
    const docs = join(import.meta.dirname, '..', 'docs');
    mkdirSync(join(docs, 'img'), { recursive: true });
    for (const r of results) {
      for (const [file, content] of Object.entries(r.files ?? {}))
        writeFileSync(join(docs, 'img', file), content);
    }
    writeFileSync(join(docs, 'benchmarks.md'), markdown(results, values.quick));
    console.log('\nwrote docs/benchmarks.md');
  }
}

if (import.meta.main) await main();
