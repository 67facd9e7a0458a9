// Just enough Markdown for doc tests: headings with their GitHub anchors, sections, and links.

export interface Heading {
  level: number;
  text: string;
  slug: string;
  line: number;
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens. */
export function slug(text: string): string {
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Headings outside fenced code blocks. */
export function headings(markdown: string): Heading[] {
  const out: Heading[] = [];
  let fenced = false;
  markdown.split('\n').forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = !fenced && /^(#{1,6})\s+(.+?)\s*#*\s*$/.exec(line);
    if (m) out.push({ level: m[1]!.length, text: m[2]!, slug: slug(m[2]!), line: i });
  });
  return out;
}

/** The headings under the level-2 heading whose text is `title`, up to the next level-2 heading. */
export function section(all: Heading[], title: string): Heading[] {
  const start = all.findIndex((h) => h.level === 2 && h.text === title);
  if (start < 0) return [];
  const end = all.findIndex((h, i) => i > start && h.level <= 2);
  return all.slice(start + 1, end < 0 ? undefined : end);
}

/** Link targets `[text](target)` outside fenced code blocks, without external URLs. */
export function localLinks(markdown: string): string[] {
  let fenced = false;
  const links: string[] = [];
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!/^[a-z]+:/.test(m[1]!)) links.push(m[1]!);
    }
  }
  return links;
}
