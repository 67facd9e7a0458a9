// Restore: bring back the version that served before an unfinished swap or unload. The candidate is
// stopped, `current`/`previous` point where the journal's intent says they pointed, the previous process
// serves the front again (started again from its kept release when it is no longer alive), and the
// journal settles. Success: phase RolledBack, the previous version active. Failure: phase Failed, reason
// RollbackFailed — the node is left as the journal describes, and says so loudly.
import type { Logger } from 'pino';
import type { FrontHandle } from '../front/fronts.ts';
import { type Journal, settleJournal } from '../journal.ts';
import { isSameProcess, type PluginProcess, STOP_GRACE_MS } from '../runtime/index.ts';
import { linkTarget, pluginDir, setLink } from '../store.ts';
import { relaunch } from './launch.ts';
import { backendOf, type Serving } from './swap.ts';

export interface RestoreInput {
  root: string;
  journal: Journal;
  front: FrontHandle;
  candidate: PluginProcess | undefined;
  /** The process that served before, if the host still has it. */
  previous: Serving | undefined;
  logger: Logger;
  now: () => Date;
  /** How long the candidate's open connections may finish before it is stopped. */
  drainMs?: number;
}

const alive = (p: PluginProcess) => isSameProcess(p.pid, p.startTime);

/** Restores the journal intent's `from`; returns what serves now (undefined when nothing was active). */
export async function restore(
  input: RestoreInput,
): Promise<{ serving: Serving | undefined; journal: Journal }> {
  const { root, journal, front, logger } = input;
  const dir = pluginDir(root, journal.plugin);
  const from = journal.intent ? journal.intent.from : (journal.active?.revision ?? null);
  const fromPrevious = journal.intent ? journal.intent.fromPrevious : undefined;
  // Start (or keep) the previous process first and switch the front to it, so clients move away from
  // the candidate before it is stopped; only then stop the candidate and put the links back.
  let serving: Serving | undefined;
  if (from !== null) {
    const kept =
      input.previous?.revision === from && alive(input.previous.process) ? input.previous : undefined;
    serving = kept ?? { revision: from, process: await relaunch(root, journal.plugin, from, { logger }) };
  }
  const switched = await front.switchTo(serving ? backendOf(serving.process) : undefined);
  await switched.drained(input.drainMs ?? 0);
  await input.candidate?.stop(STOP_GRACE_MS);
  await setLink(dir, 'current', from === null ? undefined : linkTarget(from));
  if (fromPrevious !== undefined) {
    await setLink(dir, 'previous', fromPrevious === null ? undefined : linkTarget(fromPrevious));
  }
  return { serving, journal: await settleJournal(root, journal, serving, input.now()) };
}
