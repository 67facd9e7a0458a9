// Restore: bring back the version that served before an unfinished swap or unload. The candidate is
// stopped, `current`/`previous` point where the journal's intent says they pointed, the previous process
// serves the front again (restarted from its kept release when it is gone), and the journal settles.
// Success: phase RolledBack, the previous version active. Failure: phase Failed, reason RollbackFailed —
// the node is left as the journal describes, and says so loudly.
import type { Logger } from 'pino';
import { NodeReason } from '../../api/index.ts';
import { ActivationError } from '../errors.ts';
import type { Front } from '../front/index.ts';
import { type Journal, writeJournal } from '../journal.ts';
import type { PluginProcess } from '../runtime/index.ts';
import { linkTarget, newRunDir, pluginDir, readReleaseRecord, setLink } from '../store.ts';
import { launch, STOP_GRACE_MS } from './probe.ts';
import { backendOf, type Serving } from './swap.ts';

export interface RestoreInput {
  root: string;
  journal: Journal;
  front: Front;
  candidate: PluginProcess | undefined;
  /** The process that served before, if it still runs. */
  previous: Serving | undefined;
  logger: Logger;
  now: () => Date;
  /** How long the candidate's open connections may finish before it is stopped. */
  drainMs?: number;
}

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
    if (input.previous && input.previous.revision === from) {
      serving = input.previous;
    } else {
      const record = await readReleaseRecord(root, journal.plugin, from);
      if (!record) {
        throw new ActivationError(
          NodeReason.RollbackFailed,
          `The previous release ${from} is missing on disk, so nothing could be restored.`,
        );
      }
      const runDir = await newRunDir(root, journal.plugin, from);
      const { process } = await launch(
        record,
        {
          plugin: journal.plugin,
          version: record.version,
          handshake: { ...record.handshake, requiredCapabilities: [] },
        },
        runDir,
        { logger },
      );
      serving = { revision: from, process };
    }
  }
  const switched = front.switchTo(serving ? backendOf(serving.process) : undefined);
  await switched.drained(input.drainMs ?? 0);
  await input.candidate?.stop(STOP_GRACE_MS);
  await setLink(dir, 'current', from === null ? undefined : linkTarget(from));
  if (fromPrevious !== undefined) {
    await setLink(dir, 'previous', fromPrevious === null ? undefined : linkTarget(fromPrevious));
  }
  const settled = await writeJournal(
    root,
    {
      ...journal,
      active: serving ? { revision: serving.revision, process: serving.process.record() } : null,
      intent: null,
    },
    input.now(),
  );
  return { serving, journal: settled };
}
