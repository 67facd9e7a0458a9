// The write-ahead journal: one `journal.json` per plugin records intent before every irreversible step,
// and which process serves. Written atomically (temp, fsync, rename, fsync dir), so it is always either
// the old or the new content, never half of each.
//
// {
//   "plugin": "echo",
//   "front": "unix:///var/lib/plugin-release/plugins/echo/front.sock",
//   "active": { "revision": "3f2a…", "process": { "pid", "startTime", "handshake", "runDir" } } | null,
//   "intent": { "op": "swap" | "recreate", "from": "1c9e…" | null, "fromPrevious": "…" | null,
//               "to": "3f2a…", "at": "2026-…Z" } | null,
//   "updatedAt": "2026-…Z"
// }
//
// `intent` is set before the active version is touched (before a Recreate stops it, before a swap flips
// `current`) and cleared only once the new state is settled. Recovery treats any intent it finds as
// unfinished and restores `from`: the node ends on the old version or the new one, never half.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { HandshakeResult } from '../api/index.ts';
import { pluginDir, writeFileAtomic } from './store.ts';

export const ProcessRecord = z.object({
  pid: z.int(),
  startTime: z.string(),
  handshake: HandshakeResult,
  runDir: z.string(),
  containment: z.object({ instance: z.string(), cgroup: z.string().optional() }).optional(),
});

export const Intent = z.object({
  op: z.enum(['swap', 'recreate']),
  from: z.string().nullable(),
  fromPrevious: z.string().nullable(),
  to: z.string(),
  at: z.string(),
});
export type Intent = z.infer<typeof Intent>;

export const Journal = z.object({
  plugin: z.string(),
  front: z.string(),
  active: z.object({ revision: z.string(), process: ProcessRecord }).nullable(),
  intent: Intent.nullable(),
  updatedAt: z.string(),
});
export type Journal = z.infer<typeof Journal>;

export const journalPath = (root: string, plugin: string) => join(pluginDir(root, plugin), 'journal.json');

/** The plugin's journal, or undefined when none was ever written. Rejects on a corrupt journal. */
export async function readJournal(root: string, plugin: string): Promise<Journal | undefined> {
  let raw: string;
  try {
    raw = await readFile(journalPath(root, plugin), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return Journal.parse(JSON.parse(raw));
}

/** Durably replaces the journal. Resolves only once the new content is on disk. */
export async function writeJournal(
  root: string,
  journal: Omit<Journal, 'updatedAt'>,
  now: Date,
): Promise<Journal> {
  const next: Journal = { ...journal, updatedAt: now.toISOString() };
  await writeFileAtomic(journalPath(root, journal.plugin), `${JSON.stringify(next, null, 2)}\n`);
  return next;
}
