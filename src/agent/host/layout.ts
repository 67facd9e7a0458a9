// The Host runtime's on-disk state under the agent root, and its write-ahead journal.
//
//   <root>/hosts/<plugin>/
//     releases/<revision>/   a staged copy: config (optional), artifact (optional), .complete (written last)
//     current -> releases/<r>, previous -> releases/<r>   what the host was last made to run, and before it
//     journal.json           { active, intent }: the intent is written before the host is told to change
//
// Beside plugins/ (the Process runtime's), so that neither runtime's recovery reads the other's journal.
// Plugin names and revisions come from a PluginActivation: each is checked as one safe path component.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { HostSpec, NodeReason } from '../../api/index.ts';
import { ActivationError } from '../errors.ts';
import { isInside, isSafeSegment, readCompleteMarker, writeFileAtomic } from '../store.ts';

function segment(name: string, what: string): string {
  if (!isSafeSegment(name)) {
    throw new ActivationError(
      what === 'plugin' ? NodeReason.PathOutsideRoot : NodeReason.InvalidRevision,
      `The ${what} ${JSON.stringify(name)} is not a single path component, so its directory would not stay under the agent root.`,
    );
  }
  return name;
}

function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export const hostsRoot = (root: string) => join(root, 'hosts');
export function hostPluginDir(root: string, plugin: string): string {
  const dir = join(hostsRoot(root), segment(plugin, 'plugin'));
  if (!isInside(hostsRoot(root), dir)) {
    throw new ActivationError(NodeReason.PathOutsideRoot, `${dir} is outside the agent root ${root}.`);
  }
  return dir;
}
export const hostReleasesDir = (root: string, plugin: string) =>
  join(hostPluginDir(root, plugin), 'releases');
export const hostReleaseDir = (root: string, plugin: string, revision: string) =>
  join(hostReleasesDir(root, plugin), segment(revision, 'revision'));

/** What `.complete` of a Host release records: what to send the host, and how to reach it again. */
export const HostRecord = z.object({
  runtime: z.literal('Host'),
  revision: z.string(),
  version: z.string(),
  /** The node the release was staged for (the host fields' placeholder). */
  node: z.string(),
  host: HostSpec,
  config: z.object({ path: z.string(), digest: z.string(), contentType: z.string() }).optional(),
  artifact: z.object({ path: z.string(), digest: z.string() }).optional(),
  stagedAt: z.string(),
});
export type HostRecord = z.infer<typeof HostRecord>;

/**
 * The Host release `revision`'s record, or undefined when it has none; throws ActivationError
 * SnapshotCorrupt when `.complete` is a link, unparsable, of another revision, or names files outside
 * its release.
 */
export async function readHostRecord(
  root: string,
  plugin: string,
  revision: string,
): Promise<HostRecord | undefined> {
  const dir = hostReleaseDir(root, plugin, revision);
  const corrupt = (why: string) =>
    new ActivationError(
      NodeReason.SnapshotCorrupt,
      `The kept host release ${revision} on this node cannot be trusted: ${why}. Apply that version again to re-stage it.`,
    );
  const raw = await readCompleteMarker(dir, corrupt);
  if (raw === undefined) return undefined;
  const parsed = HostRecord.safeParse(jsonOrUndefined(raw));
  if (!parsed.success) throw corrupt('its .complete is not a valid host release record');
  const record = parsed.data;
  if (record.revision !== revision) throw corrupt(`its .complete names revision ${record.revision}`);
  for (const file of [record.config?.path, record.artifact?.path]) {
    if (file !== undefined && (!isInside(dir, file) || file === dir)) {
      throw corrupt(`it names ${file}, outside its release directory`);
    }
  }
  return record;
}

const HostIntent = z.object({
  /** swap: the host is being made to run `to`; recovery brings back `from`. */
  op: z.literal('swap'),
  from: z.string().nullable(),
  fromPrevious: z.string().nullable(),
  to: z.string(),
  /** The plugin install of this swap: the plugins dir and the snapshot of what was live (null: nothing). */
  plugin: z.object({ dir: z.string(), snapshot: z.string().nullable() }).nullable(),
  at: z.string(),
});
export type HostIntent = z.infer<typeof HostIntent>;

export const HostJournal = z.object({
  runtime: z.literal('Host'),
  plugin: z.string(),
  /** The revision the agent last made the host run, when it did. */
  active: z.string().nullable(),
  intent: HostIntent.nullable(),
  updatedAt: z.string(),
});
export type HostJournal = z.infer<typeof HostJournal>;

export const hostJournalPath = (root: string, plugin: string) =>
  join(hostPluginDir(root, plugin), 'journal.json');

/** The plugin's host journal; a fresh one when none was written. Throws JournalQuarantined when corrupt. */
export async function readHostJournal(root: string, plugin: string): Promise<HostJournal> {
  const path = hostJournalPath(root, plugin);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return { runtime: 'Host', plugin, active: null, intent: null, updatedAt: new Date(0).toISOString() };
    throw error;
  }
  const parsed = HostJournal.safeParse(jsonOrUndefined(text));
  if (!parsed.success || parsed.data.plugin !== plugin) {
    throw new ActivationError(
      NodeReason.JournalQuarantined,
      `The host journal ${path} is not a valid journal of plugin ${plugin}; the agent will not guess what the host runs. Move it aside and apply the release again.`,
    );
  }
  return parsed.data;
}

/** Durably replaces the host journal (temp file, fsync, rename); throws JournalWriteFailed. */
export async function writeHostJournal(
  root: string,
  journal: Omit<HostJournal, 'updatedAt'>,
  now: Date,
): Promise<HostJournal> {
  const next: HostJournal = { ...journal, updatedAt: now.toISOString() };
  try {
    await writeFileAtomic(hostJournalPath(root, journal.plugin), `${JSON.stringify(next, null, 2)}\n`);
  } catch (cause) {
    throw new ActivationError(
      NodeReason.JournalWriteFailed,
      `The host journal ${hostJournalPath(root, journal.plugin)} could not be written (${(cause as Error).message}); the host was not told to change. Free space on the agent root's file system, then retry.`,
      { cause },
    );
  }
  return next;
}
