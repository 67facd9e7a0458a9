// Each benchmark starts and reports a well-formed result (figures are measured by `npm run bench`, not here).
import { describe, expect, it } from 'vitest';
import { benchmarkNames, loadBenchmark } from '../../../bench/run.ts';

describe.each(benchmarkNames)('the %s benchmark', (name) => {
  it('runs in smoke mode and reports tables and figures', { timeout: 120_000 }, async () => {
    const bench = await loadBenchmark(name);
    const result = await bench.run({ quick: true, smoke: true, log: () => {} });
    expect(result.name).toBe(name);
    expect(result.tables.length).toBeGreaterThan(0);
    for (const table of result.tables) expect(table.rows.length).toBeGreaterThan(0);
    expect(Object.keys(result.figures).length).toBeGreaterThan(0);
    for (const value of Object.values(result.figures)) {
      if (typeof value === 'number') expect(Number.isFinite(value)).toBe(true);
    }
  });
});
