// Recovery after an agent restart (or crash): converge every plugin to one consistent state.
//
// 1. Any intent left in the journal is an unfinished swap or unload: restore its `from` (old active).
// 2. Adopt the recorded active process if that very process (pid + start time) still runs; otherwise
//    start the active release again from `current`.
// 3. Stop every other plugin process a run directory names (candidates the crash left behind).
// 4. Point the front at what serves, and settle the journal.
// The result: `current` names a complete release, exactly one process serves, the journal has no intent.

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { launch, STOP_GRACE_MS } from './actions/probe.ts';
import { restore } from './actions/rollback.ts';
import { backendOf, type Serving } from './actions/swap.ts';
import { Front } from './front/index.ts';
import { type Journal, readJournal, writeJournal } from './journal.ts';
import { adoptPlugin, stopOrphan } from './runtime/index.ts';
import {
  isComplete,
  linkTarget,
  newRunDir,
  pluginDir,
  readLinkRevision,
  readReleaseRecord,
  runRoot,
  setLink,
} from './store.ts';

export interface Recovered {
  journal: Journal;
  front: Front;
  serving: Serving | undefined;
  /** Sentences saying what recovery did, for logs and the activation message. */
  actions: string[];
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

/** Recovers one plugin from its journal; undefined when the plugin was never activated here. */
export async function recoverPlugin(
  root: string,
  plugin: string,
  logger: Logger,
  now: () => Date,
): Promise<Recovered | undefined> {
  const journal = await readJournal(root, plugin);
  if (!journal) {
    await stopOthers(root, plugin, undefined);
    return undefined;
  }
  const actions: string[] = [];
  const dir = pluginDir(root, plugin);
  const front = await Front.listen(journal.front, logger);

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
    const { intent } = journal;
    const restored = await restore({
      root,
      journal,
      front,
      candidate: undefined,
      previous: adopted,
      logger,
      now,
    });
    actions.push(
      `Rolled back an unfinished ${intent.op} to ${intent.to}; ${intent.from ?? 'no version'} is active.`,
    );
    return { journal: restored.journal, front, serving: restored.serving, actions };
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
  if (!serving && current !== undefined) {
    const record = await readReleaseRecord(root, plugin, current);
    if (record) {
      const runDir = await newRunDir(root, plugin, current);
      const { process } = await launch(
        record,
        { plugin, version: record.version, handshake: { ...record.handshake, requiredCapabilities: [] } },
        runDir,
        { logger },
      );
      serving = { revision: current, process };
      actions.push(`Restarted ${current} from current (pid ${process.pid}).`);
    }
  }
  front.switchTo(serving ? backendOf(serving.process) : undefined);
  const settled = await writeJournal(
    root,
    {
      ...journal,
      active: serving ? { revision: serving.revision, process: serving.process.record() } : null,
      intent: null,
    },
    now(),
  );
  return { journal: settled, front, serving, actions };
}
