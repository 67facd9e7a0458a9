// The production tree the image runs (`npm run build`, the Dockerfile's build stage, the image test and
// the memory bench): src/ and bin/ compiled to JavaScript, package.json and crds/; no node_modules.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const REPO = join(import.meta.dirname, '..');

/**
 * Replaces `outDir` with the production tree: tsc (tsconfig.build.json, emit only: `npm run typecheck`
 * checks) turns src/ and bin/ into .js, rewriting their relative `.ts` imports to `.js`, so the tree
 * needs no type stripping, which costs every Node process about 18 MB (docs/benchmarks.md). The
 * caller provides node_modules (the image copies its production install in). Throws if tsc fails.
 */
export function build(outDir: string): void {
  const out = resolve(outDir);
  if (out === REPO) throw new Error('refusing to build into the repository itself');
  rmSync(out, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(
    process.execPath,
    [tsc, '-p', join(REPO, 'tsconfig.build.json'), '--outDir', out],
    { encoding: 'utf8' },
  );
  if (result.status !== 0)
    throw new Error(`tsc failed (${result.status ?? result.signal}):\n${result.stdout}${result.stderr}`);
  cpSync(join(REPO, 'package.json'), join(out, 'package.json'));
  cpSync(join(REPO, 'crds'), join(out, 'crds'), { recursive: true });
  for (const launcher of readdirSync(join(out, 'bin'))) chmodSync(join(out, 'bin', launcher), 0o755);
}

if (import.meta.main) {
  const outDir = process.argv[2] ?? join(REPO, 'dist');
  build(outDir);
  console.log(`built ${outDir}`);
}
