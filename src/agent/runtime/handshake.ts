// The go-plugin handshake line: parse `CORE|APP|NETWORK|ADDR|PROTOCOL[|SERVERCERT[|MUX]]`, negotiate versions.
//
// Field by field this mirrors hashicorp/go-plugin's client (client.go) so a real go-plugin binary is
// read exactly as go-plugin reads it: the line is trimmed, split on "|", CORE must be 1, APP must be one of
// the versions the host offered, NETWORK is tcp or unix, PROTOCOL defaults to netrpc when absent,
// SERVERCERT counts only when longer than 50 characters (older plugins print a short unused field there),
// MUX is a Go boolean. Fields after the seventh are ignored, as go-plugin ignores them.
import { NodeReason } from '../../api/index.ts';
import { ActivationError } from '../errors.ts';

/** go-plugin's CoreProtocolVersion: the only core version a host and a plugin have ever spoken. */
export const CORE_PROTOCOL_VERSION = 1;

/** Longest handshake line accepted (a base64 DER server certificate fits comfortably). */
export const MAX_HANDSHAKE_LINE = 16 * 1024;

/** Linux sun_path holds 108 bytes including the terminating NUL. */
const MAX_UNIX_PATH = 107;

export interface HandshakeLine {
  coreProtocol: number;
  appProtocol: number;
  network: 'tcp' | 'unix';
  /** host:port for tcp, an absolute socket path for unix. */
  address: string;
  /** The RPC protocol: go-plugin's `grpc` or its legacy `netrpc` (the default when the field is absent). */
  protocol: 'grpc' | 'netrpc';
  /** Base64 DER certificate of a plugin that serves TLS (go-plugin AutoMTLS). */
  serverCert?: string;
  /** Whether the plugin supports gRPC broker multiplexing (go-plugin ≥ 1.5 prints it). */
  multiplex?: boolean;
}

const DECIMAL = /^[0-9]{1,9}$/;

/**
 * Whether a stdout line is an attempt at the handshake rather than noise: at least four "|"-separated
 * fields, the first a decimal number. Noise lines before the handshake are tolerated; an attempt that does
 * not parse is a HandshakeInvalid.
 */
export function isHandshakeAttempt(line: string): boolean {
  const parts = line.trim().split('|');
  return parts.length >= 4 && DECIMAL.test(parts[0] ?? '');
}

/**
 * Parses one handshake line and checks it against the versions the host offered.
 * Throws ActivationError HandshakeInvalid (malformed, unknown network, TLS) or ProtocolVersionMismatch
 * (core version ≠ 1, or an app version the host did not offer).
 */
export function parseHandshakeLine(raw: string, accepted: readonly number[]): HandshakeLine {
  if (raw.length > MAX_HANDSHAKE_LINE) {
    throw invalid(`the handshake line is ${raw.length} characters long (limit ${MAX_HANDSHAKE_LINE})`);
  }
  const line = raw.trim();
  const parts = line.split('|');
  if (parts.length < 4) throw invalid(`unrecognized handshake line ${quote(line)}: fewer than 4 fields`);
  const [core, app, network, address, protocol, serverCert, mux] = parts as [
    string,
    string,
    string,
    string,
    string | undefined,
    string | undefined,
    string | undefined,
  ];

  if (!DECIMAL.test(core)) throw invalid(`core protocol version ${quote(core)} is not a number`);
  const coreProtocol = Number(core);
  if (coreProtocol !== CORE_PROTOCOL_VERSION) {
    throw new ActivationError(
      NodeReason.ProtocolVersionMismatch,
      `The plugin speaks core protocol ${coreProtocol}; the agent speaks ${CORE_PROTOCOL_VERSION} (go-plugin's).`,
    );
  }
  if (!DECIMAL.test(app)) throw invalid(`app protocol version ${quote(app)} is not a number`);
  const appProtocol = Number(app);
  if (!accepted.includes(appProtocol)) {
    throw new ActivationError(
      NodeReason.ProtocolVersionMismatch,
      `The plugin chose app protocol version ${appProtocol}; the release accepts ${accepted.join(', ')}.`,
    );
  }
  if (network !== 'tcp' && network !== 'unix') {
    throw invalid(`unknown network ${quote(network)} (expected tcp or unix)`);
  }
  checkAddress(network, address);

  const rpc = protocol === undefined || protocol === '' ? 'netrpc' : protocol;
  if (rpc !== 'grpc' && rpc !== 'netrpc') {
    throw invalid(`unknown RPC protocol ${quote(rpc)} (expected grpc or netrpc)`);
  }
  const result: HandshakeLine = { coreProtocol, appProtocol, network, address, protocol: rpc };
  if (serverCert !== undefined && serverCert.length > 50) {
    throw invalid(
      'the plugin announces a TLS server certificate (go-plugin AutoMTLS); the agent connects in plaintext ' +
        'and never sets PLUGIN_CLIENT_CERT, so the plugin must serve without TLS',
    );
  }
  if (mux !== undefined) {
    const multiplex = parseGoBool(mux);
    if (multiplex === undefined) throw invalid(`multiplexing field ${quote(mux)} is not a boolean`);
    result.multiplex = multiplex;
  }
  return result;
}

/** The plugin's side of the negotiation: the highest version both sides support, as go-plugin picks it. */
export function negotiateProtocol(
  hostAccepts: readonly number[],
  pluginSupports: readonly number[],
): number | undefined {
  const common = pluginSupports.filter((v) => hostAccepts.includes(v));
  return common.length === 0 ? undefined : Math.max(...common);
}

/** The PLUGIN_PROTOCOL_VERSIONS value for the versions a release accepts: "1,2". */
export function formatProtocolVersions(versions: readonly number[]): string {
  return versions.join(',');
}

/** Reads PLUGIN_PROTOCOL_VERSIONS as go-plugin does: comma-separated integers, invalid entries skipped. */
export function parseProtocolVersions(value: string | undefined): number[] {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => DECIMAL.test(s))
    .map(Number);
}

function checkAddress(network: 'tcp' | 'unix', address: string): void {
  if (network === 'unix') {
    if (!address.startsWith('/')) throw invalid(`unix socket address ${quote(address)} is not absolute`);
    if (Buffer.byteLength(address) > MAX_UNIX_PATH) {
      throw invalid(`unix socket path ${quote(address)} is longer than ${MAX_UNIX_PATH} bytes`);
    }
    return;
  }
  const match = /^(\[[0-9A-Fa-f:.]+(%[^\]]+)?\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) {
    throw invalid(`tcp address ${quote(address)} is not host:port`);
  }
}

function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

function invalid(detail: string): ActivationError {
  return new ActivationError(NodeReason.HandshakeInvalid, `The plugin's handshake is invalid: ${detail}.`);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);
}
