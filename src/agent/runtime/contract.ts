// The contract call: ask a plugin for its name, version and capabilities and compare them with the spec.
//
// A plugin reports its contract through the unary gRPC method
// `pluginrelease.contract.v1.Contract/Describe` (DescribeRequest {} → DescribeResponse { string name = 1;
// string version = 2; repeated string capabilities = 3; }) on its announced address. gRPC rather than
// HTTP because a go-plugin gRPC plugin already serves a grpc.Server there: registering one more service
// is a few lines in its GRPCServer hook, while an HTTP endpoint would need a second listener.
// See docs/plugin-contract.md.
import { type HandshakeResult, NodeReason } from '../../api/index.ts';
import { ActivationError } from '../errors.ts';
import { decodeFields, GRPC_UNIMPLEMENTED, GrpcCallError, unaryCall } from './grpc.ts';
import type { ContractExpectation, ContractReport } from './types.ts';

export const CONTRACT_METHOD = '/pluginrelease.contract.v1.Contract/Describe';

/**
 * Calls Describe once (waiting at most timeoutMs) and checks name, version and capabilities.
 * Throws ActivationError ContractMismatch (no contract service, an unreachable plugin, another name or
 * version) or MissingCapability (the list names every missing one).
 */
export async function checkContract(
  handshake: HandshakeResult,
  expect: ContractExpectation,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ContractReport> {
  let reply: Buffer;
  try {
    reply = await unaryCall(handshake, CONTRACT_METHOD, Buffer.alloc(0), timeoutMs, signal);
  } catch (error) {
    signal?.throwIfAborted();
    const detail =
      error instanceof GrpcCallError && error.grpcCode === GRPC_UNIMPLEMENTED
        ? 'it does not serve pluginrelease.contract.v1.Contract, so its capabilities cannot be verified'
        : `the contract call failed: ${(error as Error).message}`;
    throw new ActivationError(NodeReason.ContractMismatch, `The plugin's contract is unknown: ${detail}.`, {
      cause: error,
    });
  }
  const report = decodeReport(reply);
  if (report.pluginName !== expect.plugin || report.pluginVersion !== expect.version) {
    throw new ActivationError(
      NodeReason.ContractMismatch,
      `The plugin reports itself as ${report.pluginName} ${report.pluginVersion}; ` +
        `the release expects ${expect.plugin} ${expect.version}.`,
    );
  }
  const missing = expect.requiredCapabilities.filter((c) => !report.capabilities.includes(c));
  if (missing.length > 0) {
    throw new ActivationError(
      NodeReason.MissingCapability,
      `The plugin lacks required capabilities ${missing.join(', ')}; it reports ` +
        `${report.capabilities.length > 0 ? report.capabilities.join(', ') : 'none'}.`,
    );
  }
  return report;
}

function decodeReport(reply: Buffer): ContractReport {
  let fields: Map<number, Array<number | Buffer>>;
  try {
    fields = decodeFields(reply);
  } catch (cause) {
    throw new ActivationError(
      NodeReason.ContractMismatch,
      `The plugin's contract reply is not a DescribeResponse: ${(cause as Error).message}.`,
      { cause },
    );
  }
  const strings = (n: number) =>
    (fields.get(n) ?? []).filter((v): v is Buffer => Buffer.isBuffer(v)).map((b) => b.toString('utf8'));
  return {
    pluginName: strings(1).at(-1) ?? '',
    pluginVersion: strings(2).at(-1) ?? '',
    capabilities: strings(3),
  };
}
