// Probe: the candidate's health probes and soak, before clients see it.
// Success: every health probe passed and the soak elapsed — the host swaps, or reports Probed in a dry
// run. Failure (ActivationError, the candidate is stopped first): ProbeFailed, PluginExited.
import type { Logger } from 'pino';
import type { ProbeResult } from '../../api/index.ts';
import { type Health, type PluginProcess, runProbes, STOP_GRACE_MS } from '../runtime/index.ts';

export interface ProbeContext {
  logger: Logger;
  signal?: AbortSignal;
  delay?: (ms: number, signal?: AbortSignal) => Promise<void>;
  onProbe?: (result: ProbeResult) => void;
}

/** Runs the health probes until they pass and the soak elapsed; stops the candidate on failure. */
export async function probe(process: PluginProcess, health: Health, ctx: ProbeContext): Promise<void> {
  try {
    await runProbes(process.handshake, health, {
      process,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(ctx.delay ? { delay: ctx.delay } : {}),
      ...(ctx.onProbe ? { onResult: ctx.onProbe } : {}),
    });
  } catch (error) {
    await process.stop(STOP_GRACE_MS);
    throw error;
  }
}
