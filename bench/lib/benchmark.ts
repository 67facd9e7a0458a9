// The shape every benchmark in bench/ shares: a name, and a run that returns tables and figures.
import type { Row } from './table.ts';

export interface BenchOptions {
  /** CI-sized: fewer iterations and smaller fleets, same code paths. */
  quick: boolean;
  /** Smallest possible run, used by the smoke test to prove each benchmark starts and reports. */
  smoke: boolean;
  log: (line: string) => void;
}

export interface BenchResult {
  name: string;
  title: string;
  /** What was measured and how, printed above the tables (and into docs/benchmarks.md). */
  notes: string[];
  tables: { caption: string; rows: Row[] }[];
  /** Headline numbers, the ones a closing note quotes. */
  figures: Record<string, number | string>;
  /** Extra files (for example an SVG plot), written to bench/results/. */
  files?: Record<string, string>;
}

export interface Benchmark {
  name: string;
  title: string;
  run(options: BenchOptions): Promise<BenchResult>;
}
