// The trees plugin-release runs from: the checkout's TypeScript sources (tests, a person at a shell) and
// the build of them that the image runs (scripts/build.ts), so a benchmark can measure either.
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { build } from '../../scripts/build.ts';

const REPO = join(import.meta.dirname, '..', '..');

export interface Tree {
  name: 'build' | 'sources';
  /** Holds bin/, src/ and node_modules/. */
  root: string;
  /** How its modules under src/ end. */
  ext: '.js' | '.ts';
}

export const SOURCES: Tree = { name: 'sources', root: REPO, ext: '.ts' };

/** Builds the image's tree into `dir` (replacing it), with the checkout's node_modules linked in. */
export async function buildTree(dir: string): Promise<Tree> {
  await build(dir);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return { name: 'build', root: dir, ext: '.js' };
}

/** The tree's `plugin-release` launcher. */
export const binOf = (tree: Tree): string => join(tree.root, 'bin', 'plugin-release.js');
