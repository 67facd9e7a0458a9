// Verify: the post-swap window, while the candidate serves real traffic through the front.
// Success: for the whole window no probe reached its failure threshold and the front saw fewer than the
// passive threshold of refused, reset or early-closed connections to the new backend — phase Active.
// Failure (ActivationError VerifyFailed; the candidate keeps running until the host restores the
// previous version): a probe failed, the plugin exited, or the front saw real traffic fail.
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeReason, type PluginActivationSpec } from '../../api/index.ts';
import { ActivationError } from '../errors.ts';
import type { FrontHandle } from '../front/fronts.ts';
import type { RouteStats } from '../front/index.ts';
import { type PluginProcess, runProbes } from '../runtime/index.ts';
import type { ProbeContext } from './probe.ts';

/** Failed real connections that fail the window when the release has no probe to take a threshold from. */
export const DEFAULT_PASSIVE_THRESHOLD = 3;
const PASSIVE_POLL_MS = 200;

/**
 * The window the agent verifies for: `verifySeconds`, extended so that every probe can reach its
 * failure threshold inside it (failureThreshold × (periodSeconds + timeoutSeconds)). A shorter window
 * could never fail, so the agent does not pretend it can; the activation's message says when it extended.
 */
export function verifyWindowMs(spec: Pick<PluginActivationSpec, 'activation' | 'health'>): number {
  const needed = Math.max(
    0,
    ...spec.health.probes.map((p) => p.failureThreshold * (p.periodSeconds + p.timeoutSeconds)),
  );
  return Math.max(spec.activation.verifySeconds, needed) * 1000;
}

/** Failed connections the front may see in the window: the strictest probe's failure threshold. */
export function passiveThreshold(spec: Pick<PluginActivationSpec, 'health'>): number {
  const thresholds = spec.health.probes.map((p) => p.failureThreshold);
  return thresholds.length > 0 ? Math.min(...thresholds) : DEFAULT_PASSIVE_THRESHOLD;
}

const failures = (s: RouteStats) => s.refused + s.reset + s.earlyClosed;

/** The post-swap window: probes keep passing and the front's view of real traffic stays clean. */
export async function verify(
  process: PluginProcess,
  front: FrontHandle,
  spec: PluginActivationSpec,
  ctx: ProbeContext,
): Promise<void> {
  const stop = new AbortController();
  const onAbort = () => stop.abort(ctx.signal?.reason);
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  const threshold = passiveThreshold(spec);
  const passive = (async (): Promise<never> => {
    for (;;) {
      await (ctx.delay ?? ((ms, signal) => sleep(ms, undefined, { signal })))(PASSIVE_POLL_MS, stop.signal);
      const { stats } = await front.state();
      if (stats && failures(stats) >= threshold) {
        throw new ActivationError(
          NodeReason.VerifyFailed,
          `After the swap the front saw real traffic fail on the new backend: ${stats.refused} refused, ${stats.reset} reset and ${stats.earlyClosed} closed before answering, of ${stats.connected + stats.refused} connections (the threshold is ${threshold}).`,
        );
      }
    }
  })();
  passive.catch(() => {});
  try {
    await Promise.race([
      passive,
      runProbes(process.handshake, spec.health, {
        process,
        until: 'window',
        windowMs: verifyWindowMs(spec),
        signal: stop.signal,
        ...(ctx.delay ? { delay: ctx.delay } : {}),
        ...(ctx.onProbe ? { onResult: ctx.onProbe } : {}),
      }),
    ]);
  } catch (error) {
    if (ctx.signal?.aborted) throw error;
    if (error instanceof ActivationError && error.reason !== NodeReason.VerifyFailed) {
      throw new ActivationError(NodeReason.VerifyFailed, `After the swap: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  } finally {
    stop.abort(new Error('verification finished'));
    ctx.signal?.removeEventListener('abort', onAbort);
  }
}
