// Sweep: remove what no rollback can need. Keeps `current`, `previous`, everything the journal names,
// and the newest `keepSnapshots` other complete releases; removes incomplete stagings (no `.complete`)
// and the run directories of processes that are gone. Sets no condition; failures are logged, not fatal.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Journal } from '../journal.ts';
import {
  isSameProcess,
  killContainment,
  readContainmentRecord,
  readProcessIdentity,
} from '../runtime/index.ts';
import { pluginDir, readLinkRevision, readReleaseRecord, releasesDir, runRoot } from '../store.ts';

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** Removes old releases and dead run directories; returns the names removed. */
export async function sweep(root: string, journal: Journal, keepSnapshots: number): Promise<string[]> {
  const dir = pluginDir(root, journal.plugin);
  const keep = new Set<string>(
    [
      await readLinkRevision(dir, 'current'),
      await readLinkRevision(dir, 'previous'),
      journal.active?.revision,
      journal.intent?.from,
      journal.intent?.fromPrevious,
      journal.intent?.to,
    ].filter((r): r is string => typeof r === 'string'),
  );
  const removed: string[] = [];
  const complete: { revision: string; stagedAt: string }[] = [];
  for (const name of await list(releasesDir(root, journal.plugin))) {
    const record = name.startsWith('.') ? undefined : await readReleaseRecord(root, journal.plugin, name);
    if (record) complete.push({ revision: name, stagedAt: record.stagedAt });
    else if (!keep.has(name)) removed.push(name);
  }
  complete.sort((a, b) => (a.stagedAt < b.stagedAt ? 1 : -1));
  const spare = complete.filter((c) => !keep.has(c.revision));
  for (const old of spare.slice(keepSnapshots)) removed.push(old.revision);
  for (const name of removed)
    await rm(join(releasesDir(root, journal.plugin), name), { recursive: true, force: true });

  const activeRun = journal.active?.process.runDir;
  for (const name of await list(runRoot(root, journal.plugin))) {
    const runDir = join(runRoot(root, journal.plugin), name);
    if (runDir === activeRun) continue;
    const identity = readProcessIdentity(runDir);
    if (identity && isSameProcess(identity.pid, identity.startTime)) continue;
    // Whatever the dead process left in its containment goes with it (and its cgroup is removed).
    const held = readContainmentRecord(runDir);
    if (held) await killContainment(held);
    await rm(runDir, { recursive: true, force: true });
    removed.push(`run/${name}`);
  }
  return removed;
}
