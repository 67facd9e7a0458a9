// docs/troubleshooting.md explains every condition reason in src/api: a reason added to the API
// without an entry here (or an entry for a reason that no longer exists) fails this test.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AllReasons, NodeReason, ReleaseReason } from '../../../src/api/index.ts';
import { headings, section } from './markdown.ts';

const doc = readFileSync(join(import.meta.dirname, '../../../docs/troubleshooting.md'), 'utf8');
const all = headings(doc);
/** The reason a heading such as "### `DigestMismatch`" is about, if it is about one. */
const reasonOf = (text: string) => /^`([A-Za-z]+)`$/.exec(text)?.[1];
const reasonsIn = (title: string) =>
  section(all, title)
    .map((h) => reasonOf(h.text))
    .filter((r): r is string => r !== undefined);

describe('docs/troubleshooting.md', () => {
  it.each(AllReasons)('has an entry for %s', (reason) => {
    expect(all.map((h) => reasonOf(h.text))).toContain(reason);
  });

  it('lists every release reason under "Release reasons"', () => {
    expect(reasonsIn('Release reasons').sort()).toEqual(Object.values(ReleaseReason).sort());
  });

  it('lists every node reason under "Node reasons", but one shared with releases under theirs', () => {
    const releaseReasons: readonly string[] = Object.values(ReleaseReason);
    const nodeOnly = Object.values(NodeReason).filter((r) => !releaseReasons.includes(r));
    expect(reasonsIn('Node reasons').sort()).toEqual(nodeOnly.sort());
  });

  it('has no entry for a reason the API does not define, and no entry twice', () => {
    const documented = all.map((h) => reasonOf(h.text)).filter((r) => r !== undefined);
    expect(documented.filter((r) => !AllReasons.includes(r))).toEqual([]);
    expect(documented.length).toBe(new Set(documented).size);
  });

  it.each(AllReasons)('says what %s means and what to do about it', (reason) => {
    const lines = doc.split('\n');
    const heading = all.find((h) => reasonOf(h.text) === reason)!;
    const next = all.find((h) => h.line > heading.line);
    const body = lines.slice(heading.line + 1, next?.line).join('\n');
    expect(body).toMatch(/\*\*Means:\*\* \S/);
    expect(body).toMatch(/\*\*Do:\*\* \S/);
  });
});
