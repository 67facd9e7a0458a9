import { copyFile, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { HandshakeResult, NodeReason } from '../api/index.ts';
import { ActivationError } from './errors.ts';
import { fsyncDir, pluginDir, writeFileAtomic } from './store.ts';

const processFields = {
  pid: z.int(),
  startTime: z.string(),
  handshake: HandshakeResult,
  runDir: z.string(),
  containment: z.object({ instance: z.string(), cgroup: z.string().optional() }).optional(),
};
const intentFields = {
  op: z.enum(['swap', 'recreate']),
  from: z.string().nullable(),
  fromPrevious: z.string().nullable(),
  to: z.string(),
  at: z.string(),
};
const journalFields = { plugin: z.string(), front: z.string(), updatedAt: z.string() };

// Parsing is loose (unknown fields are kept on the parsed value, so spreading writers keep them); the
// types are those of the known fields, so a PluginProcessRecord is assignable without an index signature.
export const ProcessRecord = z.looseObject(processFields);
export const Intent = z.looseObject(intentFields);
export const Journal = z.looseObject({
  ...journalFields,
  active: z.looseObject({ revision: z.string(), process: ProcessRecord }).nullable(),
  intent: Intent.nullable(),
});
const KnownIntent = z.object(intentFields);
const KnownJournal = z.object({
  ...journalFields,
  active: z.object({ revision: z.string(), process: z.object(processFields) }).nullable(),
  intent: KnownIntent.nullable(),
});
export type Intent = z.infer<typeof KnownIntent>;
export type Journal = z.infer<typeof KnownJournal>;
/** A journal to write: writeJournal stamps `updatedAt`. */
export type JournalBody = Omit<Journal, 'updatedAt'>;

export const journalPath = (root: string, plugin: string) => join(pluginDir(root, plugin), 'journal.json');

/** What is on disk at journal.json: nothing, a valid journal, or something recovery must quarantine. */
export type JournalFile =
  | { state: 'missing' }
  | { state: 'valid'; journal: Journal }
  | { state: 'corrupt'; problem: string; raw: unknown };

/**
 * Reads and checks the plugin's journal without throwing for its content: `corrupt` says why it cannot
 * be used (not JSON, or which field fails the schema) and carries the parsed value when it was JSON.
 * Rejects only when the file exists but cannot be read (EACCES, EIO).
 */
export async function inspectJournal(root: string, plugin: string): Promise<JournalFile> {
  let text: string;
  try {
    text = await readFile(journalPath(root, plugin), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw error;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const detail = text.trim() === '' ? 'it is empty' : `it is not JSON (${(error as Error).message})`;
    return { state: 'corrupt', problem: detail, raw: undefined };
  }
  const parsed = Journal.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path.length ? issue.path.join('.') : 'the journal';
    return { state: 'corrupt', problem: `${at}: ${issue?.message ?? 'invalid'}`, raw };
  }
  if (parsed.data.plugin !== plugin) {
    return { state: 'corrupt', problem: `it names plugin "${parsed.data.plugin}", not "${plugin}"`, raw };
  }
  return { state: 'valid', journal: parsed.data };
}

/** The plugin's journal, or undefined when none was ever written. Rejects on a corrupt journal. */
export async function readJournal(root: string, plugin: string): Promise<Journal | undefined> {
  const file = await inspectJournal(root, plugin);
  if (file.state === 'corrupt') throw new Error(`${journalPath(root, plugin)} is corrupt: ${file.problem}`);
  return file.state === 'valid' ? file.journal : undefined;
}

/**
 * Keeps a copy of an unusable journal for the operator, as `journal.json.corrupt-<time>` beside it, and
 * returns that path. A copy, not a rename, so journal.json is never missing (a crash right after this
 * must not look like a plugin that was never activated); the caller then overwrites journal.json with
 * a rebuilt journal. Throws ActivationError JournalWriteFailed when the copy fails (a full disk),
 * leaving no partial copy behind.
 */
export async function quarantineJournal(root: string, plugin: string, now: Date): Promise<string> {
  const path = journalPath(root, plugin);
  const aside = `${path}.corrupt-${now.toISOString().replaceAll(':', '')}`;
  try {
    await copyFile(path, aside);
    await fsyncDir(dirname(path));
  } catch (cause) {
    await rm(aside, { force: true }).catch(() => {});
    throw new ActivationError(
      NodeReason.JournalWriteFailed,
      `The unreadable journal ${path} could not be copied aside to ${basename(aside)} ` +
        `(${(cause as Error).message}), so it was left as it is. Free space on the agent root's file ` +
        'system, then retry.',
      { cause },
    );
  }
  return aside;
}

/**
 * Durably replaces the journal (temp file, fsync, rename over, fsync the directory) and resolves only
 * once the new content is on disk. On failure (ENOSPC, EROFS, EIO) the old journal is untouched, the
 * temp file is removed, and it throws ActivationError JournalWriteFailed.
 */
export async function writeJournal(root: string, journal: JournalBody, now: Date): Promise<Journal> {
  const next: Journal = { ...journal, updatedAt: now.toISOString() };
  const path = journalPath(root, journal.plugin);
  try {
    await writeFileAtomic(path, `${JSON.stringify(next, null, 2)}\n`);
  } catch (cause) {
    throw new ActivationError(
      NodeReason.JournalWriteFailed,
      `The journal ${path} could not be written (${(cause as Error).message}); it still holds its ` +
        "previous content. Free space on (or remount read-write) the agent root's file system, then retry.",
      { cause },
    );
  }
  return next;
}

/** What serves, as the journal records it. */
interface Served {
  revision: string;
  process: {
    record(): Journal['active'] extends infer A ? (A extends { process: infer P } ? P : never) : never;
  };
}

/**
 * Settles the journal on what serves now (nothing, when undefined): no intent is left open. Fields a
 * newer agent wrote into `active` are kept while it is still the same process.
 */
export function settleJournal(
  root: string,
  journal: Journal,
  serving: Served | undefined,
  now: Date,
): Promise<Journal> {
  let active: Journal['active'] = null;
  if (serving) {
    const record = serving.process.record();
    const same =
      journal.active?.revision === serving.revision && journal.active.process.pid === record.pid
        ? journal.active
        : undefined;
    active = { ...same, revision: serving.revision, process: { ...same?.process, ...record } };
  }
  return writeJournal(root, { ...journal, active, intent: null }, now);
}
