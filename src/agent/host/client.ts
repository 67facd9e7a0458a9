// The HTTP client for a plugin host's admin API on the node: loopback tcp or a unix socket, a bearer
// token read from a file on the node, a timeout on every call, capped answers and no redirects.
// Everything here comes from a PluginActivation (anyone allowed to write one controls it) or from the
// host, so both are treated as hostile: the URL must stay on the node, the token file must be a small
// regular file that is not a link and holds one token, and a token never appears in a message.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { HOST_URL_PATTERN, type HostSpec, NODE_PLACEHOLDER, NodeReason } from '../../api/index.ts';
import { http } from '../../runtime/node-http.ts';
import { ActivationError } from '../errors.ts';
import type { HostAnswer } from './answers.ts';

/** Largest answer body read from the host; a longer one is a host failure. */
export const MAX_ANSWER_BYTES = 64 * 1024;
/** Largest token file read. */
export const MAX_TOKEN_BYTES = 4096;
/** RFC 6750 b64token: what a bearer token may hold, so no header injection and no file is sent whole. */
const TOKEN_PATTERN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Where the host listens, resolved for one node. */
export type HostEndpoint =
  | { kind: 'tcp'; hostname: string; port: number; shown: string }
  | { kind: 'unix'; socketPath: string; shown: string };

/** A transport failure: the host could not be reached or did not answer within the timeout. */
export class HostUnreachableError extends ActivationError {
  constructor(message: string, options?: ErrorOptions) {
    super(NodeReason.HostUnreachable, message, options);
  }
}

/** `value` with the node placeholder replaced by `node` (a DNS subdomain, so it adds no separators). */
export const forNode = (value: string, node: string) => value.replaceAll(NODE_PLACEHOLDER, node);

/**
 * Parses `spec.host.url` for `node`. Throws ActivationError HostUnreachable when, after the placeholder
 * is replaced, it is not loopback http or a unix socket path (the schema checks the same before).
 */
export function hostEndpoint(url: string, node: string): HostEndpoint {
  const resolved = forNode(url, node);
  if (!HOST_URL_PATTERN.test(resolved) || resolved.includes('\0')) {
    throw new HostUnreachableError(
      `The host URL ${JSON.stringify(resolved)} is not http://127.0.0.1:PORT, http://localhost:PORT, http://[::1]:PORT or unix:///path.sock; the agent talks only to a host on its own node.`,
    );
  }
  if (resolved.startsWith('unix://')) {
    const socketPath = resolved.slice('unix://'.length);
    if (socketPath.split('/').includes('..')) {
      throw new HostUnreachableError(
        `The host socket path ${socketPath} has a ".." segment; name it plainly.`,
      );
    }
    return { kind: 'unix', socketPath, shown: resolved };
  }
  const [, hostname = '', port = ''] = /^http:\/\/\[?([^\]]+?)\]?:([0-9]+)$/.exec(resolved) ?? [];
  const number = Number(port);
  if (!Number.isInteger(number) || number < 1 || number > 65535) {
    throw new HostUnreachableError(`The host URL ${resolved} names port ${port}, outside 1-65535.`);
  }
  return { kind: 'tcp', hostname, port: number, shown: resolved };
}

const tokenError = (path: string, why: string) =>
  new ActivationError(
    NodeReason.HostTokenInvalid,
    `The host token file ${path} ${why}; it must be a regular file (not a symlink) of at most ${MAX_TOKEN_BYTES} bytes holding one bearer token.`,
  );

/**
 * Reads the bearer token from `path`: opened without following links, a regular file, at most
 * MAX_TOKEN_BYTES, one token68 line (a trailing newline is dropped). Throws ActivationError
 * HostTokenInvalid otherwise; the message never quotes the file's content.
 */
export async function readToken(path: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw tokenError(path, code === 'ELOOP' ? 'is a symlink' : `cannot be opened (${code})`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw tokenError(path, 'is not a regular file');
    if (st.size > MAX_TOKEN_BYTES) throw tokenError(path, `is ${st.size} bytes`);
    const buffer = Buffer.alloc(MAX_TOKEN_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_TOKEN_BYTES) throw tokenError(path, 'grew while it was read');
    const token = buffer
      .subarray(0, bytesRead)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    if (!TOKEN_PATTERN.test(token)) throw tokenError(path, 'does not hold one bearer token');
    return token;
  } finally {
    await handle.close();
  }
}

/** One node's view of `spec.host`: where it listens, the token to send, the timeout of each call. */
export interface HostClient {
  endpoint: HostEndpoint;
  /**
   * Sends one request and resolves with the host's answer, whatever its status. Throws
   * HostUnreachableError on a connection failure, a timeout, or an answer over MAX_ANSWER_BYTES.
   */
  call(
    method: 'GET' | 'POST',
    path: string,
    body?: { bytes: Buffer; contentType: string },
  ): Promise<HostAnswer>;
}

/** A client for `host` on `node`; reads the token file now (ActivationError HostTokenInvalid). */
export async function hostClient(host: HostSpec, node: string, signal?: AbortSignal): Promise<HostClient> {
  const endpoint = hostEndpoint(host.url, node);
  const token = host.tokenFile ? await readToken(forNode(host.tokenFile, node)) : undefined;
  const timeoutMs = host.timeoutSeconds * 1000;
  return {
    endpoint,
    call: (method, path, body) => send(endpoint, { method, path, body, token, timeoutMs, signal }),
  };
}

interface Request {
  method: string;
  path: string;
  body: { bytes: Buffer; contentType: string } | undefined;
  token: string | undefined;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

function send(endpoint: HostEndpoint, r: Request): Promise<HostAnswer> {
  const where = `${r.method} ${endpoint.shown}${r.path}`;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...(r.token ? { authorization: `Bearer ${r.token}` } : {}),
      ...(r.body
        ? { 'content-type': r.body.contentType, 'content-length': String(r.body.bytes.length) }
        : {}),
    };
    const target =
      endpoint.kind === 'unix'
        ? { socketPath: endpoint.socketPath, headers: { ...headers, host: 'localhost' } }
        : { hostname: endpoint.hostname, port: endpoint.port, headers };
    const req = http.request({
      ...target,
      method: r.method,
      path: r.path,
      timeout: r.timeoutMs,
      ...(r.signal ? { signal: r.signal } : {}),
      agent: false,
    });
    const fail = (why: string, cause?: unknown) => {
      req.destroy();
      reject(
        new HostUnreachableError(`${where} failed: ${why}. Is the host running and listening there?`, {
          cause,
        }),
      );
    };
    req.on('timeout', () => fail(`no answer within ${r.timeoutMs / 1000}s`));
    req.on('error', (error) => fail((error as Error).message, error));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) return fail(`its answer is larger than ${MAX_ANSWER_BYTES} bytes`);
        chunks.push(chunk);
      });
      res.on('error', (error) => fail(error.message, error));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.end(r.body?.bytes);
  });
}

/** The Content-Type a config file is sent with, from its name: JSON, YAML (the default) or TOML. */
export function configContentType(path: string): string {
  if (/\.json$/i.test(path)) return 'application/json';
  if (/\.toml$/i.test(path)) return 'application/toml';
  return 'application/yaml';
}
