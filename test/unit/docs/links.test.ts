// The operator docs link to files and headings that exist: a renamed file, heading or reason breaks
// this test instead of a reader's click.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headings, localLinks } from './markdown.ts';

const docsDir = join(import.meta.dirname, '../../../docs');
const checked = ['troubleshooting.md', 'operations.md', 'architecture.md'];

describe.each(checked)('docs/%s', (file) => {
  const path = join(docsDir, file);
  const links = localLinks(readFileSync(path, 'utf8'));

  it('links to files that exist', () => {
    const missing = links
      .map((l) => l.split('#')[0]!)
      .filter((target) => target !== '' && !existsSync(resolve(dirname(path), target)));
    expect(missing).toEqual([]);
  });

  it('links to headings that exist', () => {
    const broken = links
      .filter((l) => l.includes('#'))
      .filter((l) => {
        const [target, anchor] = l.split('#') as [string, string];
        const linked = target === '' ? path : resolve(dirname(path), target);
        if (!linked.endsWith('.md') || !existsSync(linked)) return false;
        return !headings(readFileSync(linked, 'utf8')).some((h) => h.slug === anchor);
      });
    expect(broken).toEqual([]);
  });
});
