import { createHash } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { digestPath } from '../../../src/agent/digest.ts';

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
