// Property: over many random trees with hostile names (spaces, newlines, unicode, bytes that are not
// UTF-8), different trees never share a digest, equal trees always do, and `plugin-release digest`,
// the agent's digestPath and stage all agree on every tree. Seeded, so a failure replays.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { stage } from '../../../src/agent/actions/stage.ts';
import { digestPath } from '../../../src/agent/digest.ts';
import { releaseDir } from '../../../src/agent/store.ts';
import { PluginActivationSpec } from '../../../src/api/index.ts';
import { main as digestCli } from '../../../src/cli/digest.ts';

const SEED = 0x5eed_2026;
const TREES = 160;
const STAGED = 40;

/** mulberry32: a small seeded PRNG, so every run builds the same trees. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}

// Pieces chosen to forge v1 manifest lines: separators, kind letters, digits, multi-byte and raw bytes.
const PIECES: readonly Buffer[] = [
  'a',
  'b',
  'd',
  'f',
  'l',
  ' ',
  '\n',
  ' d ',
  '\nf - 0 ',
  'x y',
  '1:',
  '-',
  '.',
  'é',
  '\uFF5E',
  '\u{1F600}',
].map((s) => Buffer.from(s));
const RAW: readonly Buffer[] = [Buffer.from([0xff]), Buffer.from([0x80]), Buffer.from([0xc3])];
const CONTENTS = ['', 'a', 'a\n', 'b', 'd b\n'];

type Node =
  | { kind: 'file'; content: string; exec: boolean }
  | { kind: 'link'; target: Buffer }
  | { kind: 'dir'; entries: Map<string, { name: Buffer; node: Node }> };

function aName(rand: ReturnType<typeof prng>): Buffer {
  for (;;) {
    const parts = Array.from({ length: 1 + rand.int(3) }, () =>
      rand.int(6) === 0 ? rand.pick(RAW) : rand.pick(PIECES),
    );
    const name = Buffer.concat(parts);
    const text = name.toString('latin1');
    if (text !== '.' && text !== '..' && name.length <= 40) return name;
  }
}

function aDir(rand: ReturnType<typeof prng>, depth: number): Node & { kind: 'dir' } {
  const dir: Node & { kind: 'dir' } = { kind: 'dir', entries: new Map() };
  const count = rand.int(depth === 0 ? 5 : 3);
  const files: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const name = aName(rand);
    const roll = rand.int(10);
    let node: Node;
    if (roll < 5 || (roll >= 8 && files.length === 0)) {
      node = { kind: 'file', content: rand.pick(CONTENTS), exec: rand.int(3) === 0 };
      files.push(name);
    } else if (roll < 8 && depth < 2) node = aDir(rand, depth + 1);
    else if (files.length > 0)
      node = { kind: 'link', target: rand.pick(files) }; // a sibling: stays inside
    else node = { kind: 'file', content: rand.pick(CONTENTS), exec: false };
    dir.entries.set(name.toString('hex'), { name, node });
  }
  return dir;
}

/** The tree as a canonical string that does not use the digest: two trees are equal iff these are. */
function describeTree(node: Node): string {
  if (node.kind === 'file') return `F(${node.exec ? 'x' : '-'},${Buffer.from(node.content).toString('hex')})`;
  if (node.kind === 'link') return `L(${node.target.toString('hex')})`;
  const entries = [...node.entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `D{${entries.map(([hex, e]) => `${hex}=${describeTree(e.node)}`).join(',')}}`;
}

function write(path: Buffer, node: Node): void {
  if (node.kind === 'file') writeFileSync(path, node.content, { mode: node.exec ? 0o755 : 0o644 });
  else if (node.kind === 'link') symlinkSync(node.target, path);
  else {
    mkdirSync(path, { recursive: true });
    for (const { name, node: child } of node.entries.values())
      write(Buffer.concat([path, Buffer.from('/'), name]), child);
  }
}

describe('the directory digest over random hostile trees', () => {
  afterEach(() => vi.restoreAllMocks());

  it(`never gives ${TREES} random trees a shared digest unless they are the same tree, and digest, digestPath and stage agree`, async () => {
    const rand = prng(SEED);
    const base = mkdtempSync(join(tmpdir(), 'digest-prop-'));
    const staging = join(base, 'staging');
    const printed: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));

    const byDigest = new Map<string, string>();
    const byTree = new Map<string, string>();
    for (let i = 0; i < TREES; i++) {
      const tree = aDir(rand, 0);
      // Every tree also holds the entrypoint stage needs; it is part of the tree like any file.
      tree.entries.set('plugin', {
        name: Buffer.from('plugin'),
        node: { kind: 'file', content: '#!/bin/sh\n', exec: true },
      });
      const path = join(staging, `t${i}`);
      write(Buffer.from(path), tree);
      const description = describeTree(tree);

      const digest = await digestPath(path);
      printed.length = 0;
      expect(await digestCli([path])).toBe(0);
      expect(printed, `tree ${i}: plugin-release digest`).toEqual([digest]);

      const earlier = byDigest.get(digest);
      if (earlier !== undefined)
        expect(earlier, `tree ${i} shares a digest with another tree`).toBe(description);
      byDigest.set(digest, description);
      const same = byTree.get(description);
      if (same !== undefined) expect(digest, `tree ${i} equals an earlier tree`).toBe(same);
      byTree.set(description, digest);

      if (i < STAGED) {
        const root = join(base, `root${i}`);
        const spec = PluginActivationSpec.parse({
          release: { name: 'echo' },
          nodeName: 'node-1',
          plugin: 'echo',
          version: '1.0.0',
          revision: `rev-${i}`,
          artifact: { path, digest, entrypoint: 'plugin' },
        });
        const record = await stage({ root, stagingRoot: staging, spec, now: new Date() });
        expect(record.artifactDigest).toBe(digest);
        expect(await digestPath(join(releaseDir(root, 'echo', `rev-${i}`), 'artifact'))).toBe(digest);
      }
    }
    // The generator must actually produce distinct trees, or the property says nothing.
    expect(byTree.size).toBeGreaterThan(TREES / 2);
    expect(byDigest.size).toBe(byTree.size);
  }, 120_000);
});
