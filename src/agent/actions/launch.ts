// Launch: start a release's process, check its contract, and make sure it owns the address it announced.
// Success: the candidate handshook, passed the contract call (when capabilities are required) and accepts
// connections on an address nobody else on the node uses — phase Probing. Failure (ActivationError, the
// candidate is stopped first): SpawnFailed, HandshakeTimeout, HandshakeInvalid, ProtocolVersionMismatch,
// PluginExited, ContractMismatch, MissingCapability, AddressInUse, AddressNotServing.
import net from 'node:net';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { NodeReason, type PluginActivationSpec } from '../../api/index.ts';
import { ActivationError } from '../errors.ts';
import { type Backend, hostPort } from '../front/index.ts';
import {
  checkContract,
  launchPlugin,
  type PluginProcess,
  STOP_GRACE_MS,
  withStderr,
} from '../runtime/index.ts';
import { newRunDir, type ReleaseRecord, readReleaseRecord, verifyRelease } from '../store.ts';

export interface LaunchContext {
  logger: Logger;
  signal?: AbortSignal;
}

/** An address the candidate must not announce, and whose it is (for the message). */
export interface TakenAddress {
  backend: Backend;
  owner: string;
}

/**
 * Starts a release's process in a fresh run directory; when capabilities are required, checks its
 * contract; then checks that it owns what it announced (see `checkAddress`).
 */
export async function launch(
  record: ReleaseRecord,
  spec: Pick<PluginActivationSpec, 'plugin' | 'version' | 'handshake'>,
  runDir: string,
  ctx: LaunchContext & { taken?: TakenAddress[] },
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
    ...(record.resources ? { resources: record.resources } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    logger: ctx.logger,
    stopGraceMs: STOP_GRACE_MS,
  });
  try {
    await checkAddress(process, ctx.taken ?? [], spec.handshake.timeoutSeconds * 1000);
    if (spec.handshake.requiredCapabilities.length === 0) return { process };
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

/**
 * Starts a kept release again (restore, recovery, supervision): the record on disk is all it needs, and
 * its digests are checked again first, so nothing runs that changed since it was verified. Throws
 * ActivationError RollbackFailed when the release is not kept, SnapshotCorrupt, or a launch failure.
 */
export async function relaunch(
  root: string,
  plugin: string,
  revision: string,
  ctx: LaunchContext & { taken?: TakenAddress[] },
): Promise<PluginProcess> {
  const record = await readReleaseRecord(root, plugin, revision);
  if (!record) {
    throw new ActivationError(
      NodeReason.RollbackFailed,
      `The release ${revision} is missing on disk, so it could not be started again.`,
    );
  }
  await verifyRelease(root, plugin, record);
  const runDir = await newRunDir(root, plugin, revision);
  const { process } = await launch(
    record,
    { plugin, version: record.version, handshake: { ...record.handshake, requiredCapabilities: [] } },
    runDir,
    ctx,
  );
  return process;
}

/**
 * The candidate must own the address it announced before anything is routed to it: it may not be the
 * address of the active backend, of a front, or of any other release's backend on the node (a plugin
 * that failed to bind and announces a borrowed address would otherwise go Active on someone else's
 * process), and something must accept a connection there — even when the release has no probes.
 * Throws ActivationError AddressInUse or AddressNotServing.
 */
export async function checkAddress(
  process: Pick<PluginProcess, 'handshake' | 'exited' | 'stderrTail'>,
  taken: TakenAddress[],
  timeoutMs: number,
): Promise<void> {
  const announced: Backend = { network: process.handshake.network, address: process.handshake.address };
  const clash = taken.find((t) => sameEndpoint(t.backend, announced));
  if (clash) {
    throw new ActivationError(
      NodeReason.AddressInUse,
      `The plugin announced ${announced.network} ${announced.address}, which is ${clash.owner}; a plugin must listen on an address of its own (did it fail to bind?).`,
    );
  }
  try {
    await connectOnce(announced, Math.max(timeoutMs, 100));
  } catch (error) {
    // A plugin that exited right after its handshake is better reported as what it did.
    const exit = await Promise.race([
      process.exited,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 250)),
    ]);
    if (exit) {
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      throw new ActivationError(
        NodeReason.PluginExited,
        withStderr(`The plugin ${how} right after its handshake.`, process.stderrTail(10)),
      );
    }
    throw new ActivationError(
      NodeReason.AddressNotServing,
      `The plugin announced ${announced.network} ${announced.address}, but nothing accepts connections there: ${(error as Error).message}.`,
    );
  }
}

function connectOnce(backend: Backend, timeoutMs: number): Promise<void> {
  return new Promise<void>((done, fail) => {
    const socket =
      backend.network === 'unix'
        ? net.connect({ path: backend.address })
        : net.connect({ ...hostPort(backend.address) });
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      done();
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
  });
}

const WILDCARD_OR_LOOPBACK = new Set(['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost', '']);

/** Whether two addresses reach the same listener: the same socket path, or the same port on this host. */
export function sameEndpoint(a: Backend, b: Backend): boolean {
  if (a.network !== b.network) return false;
  if (a.network === 'unix') return resolve(a.address) === resolve(b.address);
  const x = hostPort(a.address);
  const y = hostPort(b.address);
  if (x.port !== y.port) return false;
  return x.host === y.host || (WILDCARD_OR_LOOPBACK.has(x.host) && WILDCARD_OR_LOOPBACK.has(y.host));
}
