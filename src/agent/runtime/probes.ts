// Health probes: grpc, httpGet, tcpSocket and exec, with periods, thresholds, soak and verification windows.
import type { HandshakeResult } from '../../api/index.ts';
import type { Health, ProbeOptions } from './types.ts';

export async function runProbes(
  _target: HandshakeResult,
  _health: Health,
  _opts: ProbeOptions,
): Promise<void> {
  throw new Error('not implemented yet');
}
