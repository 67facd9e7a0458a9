// Recovery after an agent restart (or crash): converge every plugin to one consistent state.
//
// 0. Load the journal (loadJournal). One that is not JSON, fails the schema or names an unknown op is
//    copied aside as `journal.json.corrupt-<time>` and rebuilt from the disk: `current`, the release
//    records, and the run directory whose process.json names a live process of `current`.
// 1. Any intent left in the journal is an unfinished swap or unload: restore its `from` (old active), or,
//    when `from` is no longer complete on disk, the newest complete release (restoreTarget).
// 2. Adopt the recorded active process if that very process (pid + start time) still runs; otherwise
//    start the active release again from `current`.
// 3. Stop every other plugin process a run directory names (candidates the crash left behind).
// 4. Point the front at what serves, and settle the journal.
// The result: `current` names a complete release, at most one process serves, the journal has no intent.
// Whatever goes wrong ends in an ActivationError with a NodeReason (docs/recovery.md), never a bare error.

import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { NodeReason } from '../api/index.ts';
import { relaunch } from './actions/launch.ts';
import { restore } from './actions/restore.ts';
import { backendOf, type Serving } from './actions/swap.ts';
import { ActivationError } from './errors.ts';
import type { FrontHandle, Fronts } from './front/fronts.ts';
import { parseFrontAddress } from './front/index.ts';
import {
  type Intent,
  inspectJournal,
  type Journal,
  type JournalBody,
  ProcessRecord,
  quarantineJournal,
  settleJournal,
  writeJournal,
} from './journal.ts';
import { adoptPlugin, isSameProcess, PROCESS_RECORD, STOP_GRACE_MS, stopOrphan } from './runtime/index.ts';
import {
  defaultFrontAddress,
  isComplete,
  linkTarget,
  pluginDir,
  readLinkRevision,
  readReleaseRecord,
  runRoot,
  setLink,
} from './store.ts';

export interface Recovered {
  journal: Journal;
  front: FrontHandle;
  serving: Serving | undefined;
  /** Sentences saying what recovery did, for logs and the activation message. */
  actions: string[];
  /** The named reasons of any damage recovery found and repaired (JournalQuarantined, …), in order. */
  reasons: NodeReason[];
}

/** What loadJournal found: the journal to recover from, and what it had to repair to get it. */
export interface LoadedJournal {
  /** undefined when the plugin was never activated under this root. */
  journal: Journal | undefined;
  actions: string[];
  reasons: NodeReason[];
}

/**
 * The plugin's journal, repaired when it is unusable: a journal that is not JSON, fails the schema
 * (an unknown op, a missing field) or names another plugin is copied aside (quarantineJournal) and
 * replaced by one rebuilt from the disk (rebuildJournal), reported as JournalQuarantined. Throws
 * ActivationError JournalWriteFailed when the copy or the rebuilt journal cannot be written.
 */
export async function loadJournal(root: string, plugin: string, now: () => Date): Promise<LoadedJournal> {
  const file = await inspectJournal(root, plugin);
  if (file.state === 'missing') return { journal: undefined, actions: [], reasons: [] };
  if (file.state === 'valid') return { journal: file.journal, actions: [], reasons: [] };
  const aside = await quarantineJournal(root, plugin, now());
  const rebuilt = await rebuildJournal(root, plugin, salvagedFront(file.raw, root, plugin));
  const journal = await writeJournal(root, rebuilt, now());
  const serving = rebuilt.active
    ? `the running ${rebuilt.active.revision} process (pid ${rebuilt.active.process.pid}) serves`
    : `no running process of ${(await readLinkRevision(pluginDir(root, plugin), 'current')) ?? 'any release'} was found`;
  return {
    journal,
    actions: [
      `The journal was unusable (${file.problem}) (JournalQuarantined): kept it as ${basename(aside)} and ` +
        `rebuilt it from the links and release records on disk; ${serving}.`,
    ],
    reasons: [NodeReason.JournalQuarantined],
  };
}

/** The front address a damaged journal still names, when it is one; else the plugin's default. */
function salvagedFront(raw: unknown, root: string, plugin: string): string {
  const front = (raw as { front?: unknown } | undefined)?.front;
  if (typeof front === 'string') {
    try {
      parseFrontAddress(front);
      return front;
    } catch {
      // not an address: fall back
    }
  }
  return defaultFrontAddress(root, plugin);
}

/**
 * A journal built from what is on disk alone: no intent (links are the truth), and as active the live
 * process of `current` that a run directory's process.json names, if one still runs. Reads only.
 */
export async function rebuildJournal(root: string, plugin: string, front: string): Promise<JournalBody> {
  const current = await readLinkRevision(pluginDir(root, plugin), 'current');
  const process =
    current !== undefined && (await isComplete(root, plugin, current))
      ? await findLiveProcess(root, plugin, current)
      : undefined;
  return {
    plugin,
    front,
    active: current !== undefined && process ? { revision: current, process } : null,
    intent: null,
  };
}

/** The newest run directory of `revision` whose process.json names a process that still runs. */
async function findLiveProcess(root: string, plugin: string, revision: string) {
  let names: string[] = [];
  try {
    names = await readdir(runRoot(root, plugin));
  } catch {
    return undefined;
  }
  // Run dirs are named <revision>-<epoch ms>-<random>: newest first.
  const mine = names.filter((n) => n.startsWith(`${revision}-`)).sort((a, b) => stamp(b) - stamp(a));
  for (const name of mine) {
    const runDir = join(runRoot(root, plugin), name);
    try {
      const record = ProcessRecord.parse(JSON.parse(await readFile(join(runDir, PROCESS_RECORD), 'utf8')));
      if (isSameProcess(record.pid, record.startTime)) return { ...record, runDir };
    } catch {
      // no (readable) process record: this process never finished its handshake
    }
  }
  return undefined;
}

const stamp = (runDirName: string) => Number(runDirName.split('-').at(-2)) || 0;

/** Whether a release can be started again: its `.complete` record exists and parses. */
const isRestorable = async (root: string, plugin: string, revision: string | null) =>
  revision !== null && (await readReleaseRecord(root, plugin, revision)) !== undefined;

/**
 * The intent to restore. Unchanged when its `from` (and `fromPrevious`) are complete on disk; when
 * `from` is gone, it restores what is complete instead: the intent's `to`, else `fromPrevious`, else
 * nothing, with a sentence saying so (RestoreTargetMissing). Reads only.
 */
export async function restoreTarget(
  root: string,
  plugin: string,
  intent: Intent,
): Promise<{ intent: Intent; action?: string }> {
  if (intent.from === null || (await isRestorable(root, plugin, intent.from))) return { intent };
  const previous = (await isRestorable(root, plugin, intent.fromPrevious)) ? intent.fromPrevious : null;
  const target = (await isRestorable(root, plugin, intent.to)) ? intent.to : previous;
  const what =
    target === null
      ? 'no release is complete on disk, so nothing serves until the next activation'
      : target === intent.to
        ? `recovered to ${target}, the release it was moving to, which is complete on disk`
        : `recovered to ${target}, the previous release, which is complete on disk`;
  return {
    intent: { ...intent, from: target, fromPrevious: target === intent.to ? previous : null },
    action:
      `The unfinished ${intent.op} to ${intent.to} would restore ${intent.from}, whose release is missing ` +
      `on disk (RestoreTargetMissing): ${what}.`,
  };
}

/** Opens the plugin's front; a path in the way or a live server on it is FrontUnavailable. */
export async function openFront(fronts: Fronts, address: string): Promise<FrontHandle> {
  try {
    return await fronts.open(address);
  } catch (cause) {
    throw new ActivationError(
      NodeReason.FrontUnavailable,
      `The front ${address} could not be opened: ${(cause as Error).message}. Remove what is in the way ` +
        '(a leftover file or directory at that path), or stop the other agent that serves it, then restart ' +
        'the agent.',
      { cause },
    );
  }
}

async function stopOthers(root: string, plugin: string, keepRunDir: string | undefined): Promise<number> {
  let stopped = 0;
  let names: string[] = [];
  try {
    names = await readdir(runRoot(root, plugin));
  } catch {
    return 0;
  }
  for (const name of names) {
    const runDir = join(runRoot(root, plugin), name);
    if (runDir !== keepRunDir && (await stopOrphan(runDir, STOP_GRACE_MS))) stopped++;
  }
  return stopped;
}

/**
 * Recovers one plugin from its journal; undefined when the plugin was never activated here. Throws
 * only ActivationError: JournalWriteFailed (the disk is full or read-only), FrontUnavailable, a launch
 * reason from restoring an unfinished swap, or RecoveryFailed for anything unexpected.
 */
export async function recoverPlugin(...args: Parameters<typeof recover>): Promise<Recovered | undefined> {
  const [root, plugin] = args;
  try {
    return await recover(...args);
  } catch (error) {
    if (error instanceof ActivationError) throw error;
    throw new ActivationError(
      NodeReason.RecoveryFailed,
      `Recovering plugin ${plugin} under ${root} failed: ${(error as Error).message}. Nothing was changed ` +
        'after that point; see docs/recovery.md.',
      { cause: error },
    );
  }
}

async function recover(
  root: string,
  plugin: string,
  logger: Logger,
  now: () => Date,
  fronts: Fronts,
): Promise<Recovered | undefined> {
  const loaded = await loadJournal(root, plugin, now);
  const { journal } = loaded;
  if (!journal) {
    await stopOthers(root, plugin, undefined);
    return undefined;
  }
  const actions = [...loaded.actions];
  const reasons = [...loaded.reasons];
  // A front that stays open when recovery fails is left to its owner (`fronts`): a keeper's front keeps
  // serving what it served, and whoever created a LocalFronts detaches it.
  const front = await openFront(fronts, journal.front);
  return converge({ root, plugin, logger, now, journal, front, actions, reasons });
}

/** Steps 1–4 of recovery, once the journal is loaded and the front open. */
async function converge(input: {
  root: string;
  plugin: string;
  logger: Logger;
  now: () => Date;
  journal: Journal;
  front: FrontHandle;
  actions: string[];
  reasons: NodeReason[];
}): Promise<Recovered> {
  const { root, plugin, logger, now, journal, front, actions, reasons } = input;
  const dir = pluginDir(root, plugin);

  // The process that served before the crash, if it still runs.
  let adopted: Serving | undefined;
  if (journal.active) {
    const process = adoptPlugin(journal.active.process);
    if (process) {
      adopted = { revision: journal.active.revision, process };
      actions.push(`Adopted the running ${journal.active.revision} process (pid ${process.pid}).`);
    }
  }
  const stopped = await stopOthers(root, plugin, adopted?.process.runDir);
  if (stopped)
    actions.push(`Stopped ${stopped} plugin process(es) left over from an interrupted activation.`);

  if (journal.intent) {
    const target = await restoreTarget(root, plugin, journal.intent);
    const { intent } = target;
    if (target.action) {
      actions.push(target.action);
      reasons.push(NodeReason.RestoreTargetMissing);
    }
    if (adopted && adopted.revision !== intent.from) {
      // It serves a release that is no longer complete on disk: nothing may run it any more.
      await adopted.process.stop(STOP_GRACE_MS);
      adopted = undefined;
    }
    const restored = await restore({
      root,
      journal: { ...journal, intent },
      front,
      candidate: undefined,
      previous: adopted,
      logger,
      now,
    });
    if (!target.action) {
      actions.push(
        `Rolled back an unfinished ${intent.op} to ${intent.to}; ${intent.from ?? 'no version'} is active.`,
      );
    }
    return { journal: restored.journal, front, serving: restored.serving, actions, reasons };
  }

  let current = await readLinkRevision(dir, 'current');
  if (current !== undefined && !(await isComplete(root, plugin, current))) {
    // Cannot happen through the engine (links only ever name complete releases); say so if it did.
    const previous = await readLinkRevision(dir, 'previous');
    actions.push(`current named the incomplete release ${current}; falling back to ${previous ?? 'none'}.`);
    current = previous !== undefined && (await isComplete(root, plugin, previous)) ? previous : undefined;
    await setLink(dir, 'current', current === undefined ? undefined : linkTarget(current));
  }
  let serving = adopted?.revision === current ? adopted : undefined;
  if (adopted && !serving) await adopted.process.stop(STOP_GRACE_MS);
  if (!serving && current !== undefined)
    serving = await restart(root, plugin, current, logger, actions, reasons);
  await front.switchTo(serving ? backendOf(serving.process) : undefined);
  const settled = await settleJournal(root, journal, serving, now());
  return { journal: settled, front, serving, actions, reasons };
}

/**
 * Starts `current` again. A release that will not start (its record unreadable, a handshake failure)
 * leaves nothing serving and says why, rather than failing the whole agent: the next activation can
 * still repair the node.
 */
async function restart(
  root: string,
  plugin: string,
  current: string,
  logger: Logger,
  actions: string[],
  reasons: NodeReason[],
): Promise<Serving | undefined> {
  try {
    const process = await relaunch(root, plugin, current, { logger });
    actions.push(`Restarted ${current} from current (pid ${process.pid}).`);
    return { revision: current, process };
  } catch (error) {
    if (!(error instanceof ActivationError)) throw error;
    actions.push(`Could not restart ${current} from current (${error.reason}): ${error.message}`);
    reasons.push(error.reason);
    return undefined;
  }
}
