// The artifact digest the agent verifies, and `plugin-release digest` prints (format v2).
//
// A file's digest is `sha256:` and the sha256 of its bytes (what `sha256sum` prints). A directory's
// digest is `sha256:` and the sha256 of a manifest that is injective by construction:
//   manifest = "plugin-release-tree-v2\n" record*
//   record   = kind field* "\n"          (kind fixes how many fields follow)
//   field    = <decimal byte length> ":" <raw bytes>
//   d <path>                   a directory
//   f|x <path> <size> <sha256> a regular file (`x` when any execute bit is set; size in decimal)
//   l <path> <target>          a symlink, never followed; its target as readlink(2) returns it
// Paths are the raw name bytes joined with "/", relative to the artifact root, and records are
// sorted by those bytes (Buffer.compare, i.e. memcmp), so names that are not UTF-8 hash exactly.
// Owners, times and other mode bits are not hashed, so a copy hashes like its original. Devices,
// FIFOs and sockets cannot be hashed and are refused. docs/security.md has the reference
// implementation and the migration note from v1 (below, kept only to re-check old records).
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginReleaseError } from '../runtime/errors.ts';

export const TREE_MANIFEST_HEADER = 'plugin-release-tree-v2\n';
/** The directory-manifest format `digestPath` computes; recorded in `.complete` as `digestFormat`. */
export const DIGEST_FORMAT = 2;

/** Something in the tree has no digest (a device, FIFO or socket), so the tree cannot be verified. */
export class UnhashableFileError extends PluginReleaseError {
  readonly path: string;
  constructor(path: string, what: string) {
    super('PR_ERR_UNHASHABLE_FILE', `${path} is ${what}, which has no digest`);
    this.path = path;
  }
}

/** A path for messages: as UTF-8 when it is, with `\xNN` for every byte that is not. */
export function displayPath(path: Buffer | string): string {
  if (typeof path === 'string') return path;
  const text = path.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(path)) return text;
  return path.toString('latin1').replace(/[\x80-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}

/** What kind of non-regular, non-directory, non-symlink entry `st` is, for messages. */
export function fileTypeName(st: {
  isBlockDevice(): boolean;
  isCharacterDevice(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
}): string {
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

const SLASH = Buffer.from('/');
const joinBytes = (dir: Buffer, name: Buffer) => Buffer.concat([dir, SLASH, name]);
const field = (bytes: Buffer | string) => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return Buffer.concat([Buffer.from(`${b.length}:`), b]);
};

/** sha256 and byte count of a regular file, read through one descriptor that refuses anything else. */
async function hashFile(path: Buffer): Promise<{ hex: string; size: number; executable: boolean }> {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: a swapped-in link is not read.
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new UnhashableFileError(displayPath(path), fileTypeName(st));
    const hash = createHash('sha256');
    let size = 0;
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { hex: hash.digest('hex'), size, executable: (st.mode & 0o111) !== 0 };
  } finally {
    await handle.close();
  }
}

interface Entry {
  path: Buffer;
  record: Buffer;
}

async function treeEntries(root: Buffer, rel: Buffer | undefined, out: Entry[]): Promise<void> {
  const dir = rel ? joinBytes(root, rel) : root;
  for (const name of await readdir(dir, { encoding: 'buffer' })) {
    const path = rel ? joinBytes(rel, name) : name;
    const abs = joinBytes(root, path);
    const st = await lstat(abs);
    if (st.isSymbolicLink()) {
      const target = await readlink(abs, { encoding: 'buffer' });
      out.push({ path, record: Buffer.concat([Buffer.from('l'), field(path), field(target)]) });
    } else if (st.isDirectory()) {
      out.push({ path, record: Buffer.concat([Buffer.from('d'), field(path)]) });
      await treeEntries(root, path, out);
    } else if (st.isFile()) {
      const file = await hashFile(abs);
      const kind = file.executable ? 'x' : 'f';
      out.push({
        path,
        record: Buffer.concat([Buffer.from(kind), field(path), field(String(file.size)), field(file.hex)]),
      });
    } else {
      throw new UnhashableFileError(displayPath(abs), fileTypeName(st));
    }
  }
}

/** The v2 manifest of directory `root` (exported for tests and the docs' reference check). */
export async function treeManifest(root: string | Buffer): Promise<Buffer> {
  const entries: Entry[] = [];
  await treeEntries(typeof root === 'string' ? Buffer.from(root) : root, undefined, entries);
  entries.sort((a, b) => Buffer.compare(a.path, b.path));
  const nl = Buffer.from('\n');
  return Buffer.concat([Buffer.from(TREE_MANIFEST_HEADER), ...entries.flatMap((e) => [e.record, nl])]);
}

/**
 * `sha256:<hex>` of a file or directory, by format v2 above. A symlink at `path` itself is not
 * followed (callers resolve it first). Rejects with UnhashableFileError on a device, FIFO or socket
 * anywhere in the tree, and with the fs error on unreadable entries.
 */
export async function digestPath(path: string | Buffer): Promise<string> {
  const st = await lstat(path);
  if (st.isFile())
    return `sha256:${(await hashFile(typeof path === 'string' ? Buffer.from(path) : path)).hex}`;
  if (!st.isDirectory()) {
    throw new UnhashableFileError(displayPath(path), st.isSymbolicLink() ? 'a symlink' : fileTypeName(st));
  }
  return `sha256:${createHash('sha256')
    .update(await treeManifest(path))
    .digest('hex')}`;
}

// ---- format v1, legacy -------------------------------------------------------------------------
// v1 joined space-separated fields into lines, so names with spaces or newlines could make two trees
// share a manifest. The agent no longer accepts v1 digests for new stagings; it uses this only to
// re-check releases it staged itself before v2 (their `.complete` has no `digestFormat`) and to say
// "this is a v1 digest" when a release still names one.

async function fileSha256V1(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function manifestLinesV1(root: string, rel: string, out: string[]): Promise<void> {
  const entries = (await readdir(join(root, rel))).sort();
  for (const name of entries) {
    const path = rel ? `${rel}/${name}` : name;
    const abs = join(root, path);
    const st = await lstat(abs);
    if (st.isSymbolicLink()) out.push(`l ${await readlink(abs)} ${path}`);
    else if (st.isDirectory()) {
      out.push(`d ${path}`);
      await manifestLinesV1(root, path, out);
    } else if (st.isFile()) {
      out.push(`f ${st.mode & 0o111 ? 'x' : '-'} ${st.size} ${await fileSha256V1(abs)} ${path}`);
    } else {
      throw new UnhashableFileError(abs, fileTypeName(st));
    }
  }
}

/** The legacy v1 digest (not injective for directories): for re-checking pre-v2 records only. */
export async function digestPathV1(path: string): Promise<string> {
  const st = await lstat(path);
  if (st.isFile()) return `sha256:${await fileSha256V1(path)}`;
  if (!st.isDirectory()) throw new UnhashableFileError(path, fileTypeName(st));
  const lines: string[] = [];
  await manifestLinesV1(path, '', lines);
  return `sha256:${createHash('sha256')
    .update(lines.map((l) => `${l}\n`).join(''))
    .digest('hex')}`;
}
