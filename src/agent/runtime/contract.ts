// The contract call: ask a plugin for its name, version and capabilities and compare them with the spec.
import type { HandshakeResult } from '../../api/index.ts';
import type { ContractExpectation, ContractReport } from './types.ts';

export async function checkContract(
  _handshake: HandshakeResult,
  _expect: ContractExpectation,
  _timeoutMs: number,
  _signal?: AbortSignal,
): Promise<ContractReport> {
  throw new Error('not implemented yet');
}
