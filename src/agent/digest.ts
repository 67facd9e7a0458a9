// The artifact digest the agent verifies, and `plugin-release digest` prints.
//
// A file's digest is the sha256 of its bytes (what `sha256sum` prints). A directory's digest is the
// sha256 of a manifest with one line per entry below it, sorted by relative path (byte order):
//   `d <path>` for a directory, `l <target> <path>` for a symlink (never followed),
//   `f <x|-> <size> <sha256 of content> <path>` for a file (`x` when any execute bit is set).
// Paths are POSIX, relative to the artifact root. Owners, times and other mode bits are not hashed,
// so a copy hashes like its original.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function manifestLines(root: string, rel: string, out: string[]): Promise<void> {
  const entries = (await readdir(join(root, rel))).sort();
  for (const name of entries) {
    const path = rel ? `${rel}/${name}` : name;
    const abs = join(root, path);
    const st = await lstat(abs);
    if (st.isSymbolicLink()) out.push(`l ${await readlink(abs)} ${path}`);
    else if (st.isDirectory()) {
      out.push(`d ${path}`);
      await manifestLines(root, path, out);
    } else if (st.isFile()) {
      out.push(`f ${st.mode & 0o111 ? 'x' : '-'} ${st.size} ${await fileSha256(abs)} ${path}`);
    } else {
      throw new Error(`${abs} is neither a file, a directory nor a symlink`);
    }
  }
}

/** `sha256:<hex>` of a file or directory, by the algorithm above. Rejects on unreadable entries. */
export async function digestPath(path: string): Promise<string> {
  const st = await lstat(path);
  if (st.isFile()) return `sha256:${await fileSha256(path)}`;
  if (!st.isDirectory()) throw new Error(`${path} is neither a file nor a directory`);
  const lines: string[] = [];
  await manifestLines(path, '', lines);
  return `sha256:${createHash('sha256')
    .update(lines.map((l) => `${l}\n`).join(''))
    .digest('hex')}`;
}
