// The digest the agent verifies and `plugin-release digest` prints: format v2 (docs/security.md).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { digestPath, digestPathV1, treeManifest, UnhashableFileError } from '../../../src/agent/digest.ts';

function aTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'digest-'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'plugin'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(dir, 'README'), 'hello\n');
  symlinkSync('bin/plugin', join(dir, 'run'));
  return dir;
}

describe('digestPath', () => {
  it('digests a file as sha256sum does', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'digest-')), 'f');
    writeFileSync(file, 'plugin bytes');
    expect(await digestPath(file)).toBe(
      `sha256:${createHash('sha256').update('plugin bytes').digest('hex')}`,
    );
  });

  it('gives a copy of a directory the digest of its original', async () => {
    const dir = aTree();
    const copy = `${dir}-copy`;
    cpSync(dir, copy, { recursive: true, verbatimSymlinks: true });
    expect(await digestPath(copy)).toBe(await digestPath(dir));
  });

  const changes: { name: string; change: (dir: string) => void }[] = [
    { name: 'a file content', change: (d) => writeFileSync(join(d, 'README'), 'hello!\n') },
    { name: 'an execute bit', change: (d) => chmodSync(join(d, 'README'), 0o755) },
    {
      name: 'a symlink target',
      change: (d) => {
        symlinkSync('README', join(d, 'other'));
      },
    },
    { name: 'a new empty directory', change: (d) => mkdirSync(join(d, 'empty')) },
  ];
  it.each(changes)('changes when $name changes', async ({ change }) => {
    const dir = aTree();
    const before = await digestPath(dir);
    change(dir);
    expect(await digestPath(dir)).not.toBe(before);
  });
});

/** A directory holding exactly `entries`: name (string or raw bytes) → file content, `{ link }` or `{ dir }`. */
type Spec = Record<string, string | { link: string } | { dir: Spec } | { exec: string }>;
function aTreeOf(spec: Spec, dir = mkdtempSync(join(tmpdir(), 'digest-'))): string {
  for (const [name, entry] of Object.entries(spec)) {
    const path = join(dir, name);
    if (typeof entry === 'string') writeFileSync(path, entry);
    else if ('link' in entry) symlinkSync(entry.link, path);
    else if ('exec' in entry) writeFileSync(path, entry.exec, { mode: 0o755 });
    else {
      mkdirSync(path);
      aTreeOf(entry.dir, path);
    }
  }
  return dir;
}

describe('digestPath (format v2) is injective where v1 was not', () => {
  const pairs: { name: string; a: Spec; b: Spec }[] = [
    {
      name: 'a file and a directory vs one file whose name holds a newline and a space',
      a: { a: '', b: { dir: {} } },
      b: { 'a\nd b': '' },
    },
    {
      name: 'symlink "y z" → x vs symlink z → "x y"',
      a: { 'y z': { link: 'x' } },
      b: { z: { link: 'x y' } },
    },
    {
      name: 'a file whose name fakes a second manifest line',
      a: { f: 'x', g: '' },
      b: { [`f\nf - 0 ${createHash('sha256').update('').digest('hex')} g`]: 'x' },
    },
  ];
  it.each(pairs)('tells apart $name', async ({ a, b }) => {
    const [left, right] = [aTreeOf(a), aTreeOf(b)];
    expect(await digestPath(left)).not.toBe(await digestPath(right));
  });

  it('collided under v1 for the first two pairs (the attack the format closes)', async () => {
    for (const { a, b } of pairs.slice(0, 2)) {
      expect(await digestPathV1(aTreeOf(a))).toBe(await digestPathV1(aTreeOf(b)));
    }
  });

  it('orders records by raw name bytes, not by UTF-16 code units', async () => {
    // U+FF5E is EF BD 9E in UTF-8, before U+1F600's F0 9F 98 80; in UTF-16 it sorts after (FF5E > D83D).
    // And "a-c" comes before "a/b" ("-" is 0x2D, "/" is 0x2F), whatever the directory nesting.
    const dir = aTreeOf({ '\u{1F600}': '', '\uFF5E': '', 'a-c': '', a: { dir: { b: '' } } });
    const manifest = (await treeManifest(dir)).toString('utf8');
    const order = ['1:a', '3:a-c', '3:a/b', '3:\uFF5E', '4:\u{1F600}'].map((p) => manifest.indexOf(p));
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
  });

  it('hashes names that are not UTF-8 by their bytes', async () => {
    const trees = [
      [0x66, 0xff],
      [0x66, 0xfe],
      [0x66, 0xef, 0xbf, 0xbd],
    ].map((bytes) => {
      const dir = mkdtempSync(join(tmpdir(), 'digest-'));
      writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(bytes)]), 'same');
      return dir;
    });
    const digests = await Promise.all(trees.map((d) => digestPath(d)));
    expect(new Set(digests).size).toBe(3);
  });

  it('agrees with the reference implementation in docs/security.md', async (ctx) => {
    if (spawnSync('python3', ['--version']).status !== 0) ctx.skip();
    const doc = readFileSync(join(import.meta.dirname, '../../../docs/security.md'), 'utf8');
    const reference = /```python\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(reference).toBeDefined();
    const odd = aTreeOf({
      'a\nd b': '',
      'y z': { link: 'x y' },
      bin: { dir: { p: { exec: '#!/bin/sh\n' } } },
    });
    writeFileSync(Buffer.concat([Buffer.from(`${odd}/`), Buffer.from([0xff, 0x20])]), 'raw');
    for (const path of [odd, aTree(), join(aTree(), 'README')]) {
      const run = spawnSync('python3', ['-c', reference!, path], { encoding: 'utf8' });
      expect(run.stdout.trim()).toBe(await digestPath(path));
    }
  });
});

describe('digestPath refuses what has no digest', () => {
  const kinds: { name: string; make: (path: string) => boolean; rootOnly?: boolean }[] = [
    { name: 'a FIFO', make: (p) => spawnSync('mkfifo', [p]).status === 0 },
    {
      name: 'a socket',
      make: (p) =>
        spawnSync('python3', [
          '-c',
          `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(p)})`,
        ]).status === 0,
    },
    {
      name: 'a character device',
      make: (p) => spawnSync('mknod', [p, 'c', '1', '3']).status === 0,
      rootOnly: true,
    },
  ];
  it.each(kinds)('refuses $name inside a directory and as the path itself', async ({ make, rootOnly }) => {
    if (rootOnly && process.getuid?.() !== 0) {
      console.warn('skipped: creating a device node needs root (mknod)');
      return;
    }
    const dir = aTree();
    expect(make(join(dir, 'odd'))).toBe(true);
    await expect(digestPath(dir)).rejects.toBeInstanceOf(UnhashableFileError);
    await expect(digestPath(join(dir, 'odd'))).rejects.toBeInstanceOf(UnhashableFileError);
  });
});
