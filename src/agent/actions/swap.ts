// Swap, Retire and Unload: the steps that change what clients reach.
// Swap: journal intent first, then `previous` → old and `current` → candidate by rename(2), then the
// front sends new connections to the candidate. Retire (after verification): the old process drains for
// drainSeconds and stops, and the journal settles on the new active process — phase Active, Ready=True.
// Unload (Recreate only): journal intent, front closed to new connections, old process stopped.
// Failures here happen after the world changed: the host restores the previous version (restore.ts).
import type { FrontHandle, FrontSwitch } from '../front/fronts.ts';
import type { Backend } from '../front/index.ts';
import { type Journal, settleJournal, writeJournal } from '../journal.ts';
import { type PluginProcess, STOP_GRACE_MS } from '../runtime/index.ts';
import { linkTarget, pluginDir, readLinkRevision, setLink } from '../store.ts';
import { crashPoint } from './crash-point.ts';

export const backendOf = (p: PluginProcess): Backend => ({
  network: p.handshake.network,
  address: p.handshake.address,
});

export interface Serving {
  revision: string;
  process: PluginProcess;
}

/** Records the intent to replace `from` by `to` (op swap or recreate) before anything is touched. */
export async function recordIntent(
  root: string,
  journal: Journal,
  op: 'swap' | 'recreate',
  to: string,
  now: Date,
): Promise<Journal> {
  const dir = pluginDir(root, journal.plugin);
  const from = (await readLinkRevision(dir, 'current')) ?? null;
  const fromPrevious = (await readLinkRevision(dir, 'previous')) ?? null;
  return writeJournal(
    root,
    { ...journal, intent: { op, from, fromPrevious, to, at: now.toISOString() } },
    now,
  );
}

/**
 * Flips the links and the front to the candidate. The old process keeps serving its open connections;
 * the returned switch's `drained` says when they closed.
 */
export async function swap(
  root: string,
  plugin: string,
  front: FrontHandle,
  candidate: Serving,
): Promise<FrontSwitch> {
  const dir = pluginDir(root, plugin);
  const from = await readLinkRevision(dir, 'current');
  if (from !== undefined && from !== candidate.revision) await setLink(dir, 'previous', linkTarget(from));
  crashPoint('swap:previous');
  await setLink(dir, 'current', linkTarget(candidate.revision));
  crashPoint('swap:current');
  const switched = await front.switchTo(backendOf(candidate.process));
  crashPoint('swap:front');
  return switched;
}

/** Drains and stops the old process, then settles the journal on the new active one. */
export async function retire(
  root: string,
  journal: Journal,
  old: PluginProcess | undefined,
  drain: Promise<void> | undefined,
  active: Serving,
  now: () => Date,
): Promise<Journal> {
  await drain;
  crashPoint('retire:drained');
  await old?.stop(STOP_GRACE_MS);
  return settleJournal(root, journal, active, now());
}

/** Recreate's unload: no new connections reach anything, and the old process stops. */
export async function unload(front: FrontHandle, old: PluginProcess | undefined): Promise<void> {
  await front.switchTo(undefined);
  await old?.stop(STOP_GRACE_MS);
  crashPoint('recreate:stopped');
}
