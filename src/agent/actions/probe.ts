// Launch, Probe, Verify and StopCandidate: everything that runs the candidate before clients see it.
// Launch success: the candidate handshook (and passed the contract call) — phase Probing. Probe success:
// every health probe passed and the soak elapsed — the host swaps, or reports Probed in a dry run.
// Verify success: the post-swap window passed — Active. Failures throw ActivationError: SpawnFailed,
// HandshakeTimeout, HandshakeInvalid, ProtocolVersionMismatch, PluginExited, ContractMismatch,
// MissingCapability, ProbeFailed (and VerifyFailed after the swap); the candidate is stopped first.
import type { Logger } from 'pino';
import { NodeReason, type PluginActivationSpec, type ProbeResult } from '../../api/index.ts';
import { ActivationError } from '../errors.ts';
import { checkContract, launchPlugin, type PluginProcess, runProbes } from '../runtime/index.ts';
import type { ReleaseRecord } from '../store.ts';

export const STOP_GRACE_MS = 2000;

export interface ProbeContext {
  logger: Logger;
  signal?: AbortSignal;
  delay?: (ms: number, signal?: AbortSignal) => Promise<void>;
  onProbe?: (result: ProbeResult) => void;
}

/** Starts a release's process and, when capabilities are required, checks its contract. */
export async function launch(
  record: ReleaseRecord,
  spec: Pick<PluginActivationSpec, 'plugin' | 'version' | 'handshake'>,
  runDir: string,
  ctx: ProbeContext,
): Promise<{ process: PluginProcess; capabilities?: string[] }> {
  const process = await launchPlugin({
    runDir,
    entrypoint: record.entrypoint,
    args: record.args,
    cwd: runDir,
    env: record.env,
    ...(record.configPath ? { configPath: record.configPath } : {}),
    handshake: record.handshake,
    ...(record.runAsUser !== undefined ? { runAsUser: record.runAsUser } : {}),
    ...(record.runAsGroup !== undefined ? { runAsGroup: record.runAsGroup } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    logger: ctx.logger,
    stopGraceMs: STOP_GRACE_MS,
  });
  if (spec.handshake.requiredCapabilities.length === 0) return { process };
  try {
    const report = await checkContract(
      process.handshake,
      {
        plugin: spec.plugin,
        version: spec.version,
        requiredCapabilities: spec.handshake.requiredCapabilities,
      },
      spec.handshake.timeoutSeconds * 1000,
      ctx.signal,
    );
    return { process, capabilities: report.capabilities };
  } catch (error) {
    await process.stop(STOP_GRACE_MS);
    throw error;
  }
}

/** Runs the health probes until they pass and the soak elapsed; stops the candidate on failure. */
export async function probe(
  process: PluginProcess,
  spec: PluginActivationSpec,
  ctx: ProbeContext,
): Promise<void> {
  try {
    await runProbes(process.handshake, spec.health, {
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

/** The post-swap window: the now-serving candidate must stay healthy for `verifySeconds`. */
export async function verify(
  process: PluginProcess,
  spec: PluginActivationSpec,
  ctx: ProbeContext,
): Promise<void> {
  try {
    await runProbes(process.handshake, spec.health, {
      process,
      until: 'window',
      windowMs: spec.activation.verifySeconds * 1000,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(ctx.delay ? { delay: ctx.delay } : {}),
      ...(ctx.onProbe ? { onResult: ctx.onProbe } : {}),
    });
  } catch (error) {
    if (error instanceof ActivationError) {
      throw new ActivationError(NodeReason.VerifyFailed, `After the swap: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
}
