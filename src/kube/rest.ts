// HTTP to the API server over node:http(s): one keep-alive pool per TLS identity, credentials and TLS
// from client-node's KubeConfig. It replaces client-node's generated API classes (about 80 MB of
// modules for the seven calls we make) and its undici transport; see docs/benchmarks.md.
import { createHash } from 'node:crypto';
import https from 'node:https';
import { type Agent, http, type IncomingMessage } from '../runtime/node-http.ts';
import type { KubeConfig } from './config.ts';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RestRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The API path, e.g. /api/v1/nodes/node-1. */
  path: string;
  query?: Query;
  /** Sent as JSON. */
  body?: unknown;
  /** Content-Type of the body (default application/json; patches name their kind). */
  contentType?: string;
  signal?: AbortSignal | undefined;
}

/**
 * The API server answered with a status other than 2xx. `body` is the raw text (a metav1.Status when
 * the server sent one), `headers` the response headers (retry-after), as errors.ts classifies them.
 */
export class HttpStatusError extends Error {
  readonly statusCode: number;
  readonly body: string;
  readonly headers: Record<string, string>;

  constructor(statusCode: number, body: string, headers: Record<string, string>) {
    super(`HTTP ${statusCode}`);
    this.name = 'HttpStatusError';
    this.statusCode = statusCode;
    this.body = body;
    this.headers = headers;
  }
}

export interface StreamHandle {
  /** Ends the stream; `onDone` is then called with nothing. */
  stop(): void;
}

/** A single call gets this long without a byte from the server (watches are exempt). */
const CALL_IDLE_TIMEOUT_MS = 60_000;
/** As client-go: a probe after 30 s of silence, so a dead peer is noticed (cloud LBs cut at 60 s). */
const KEEP_ALIVE_INITIAL_DELAY_MS = 30_000;

type Options = Omit<https.RequestOptions, 'headers'> & { headers: Record<string, string> };

/**
 * Requests to the current context's server. Every request asks the KubeConfig for its credentials
 * (applyToHTTPSOptions: tokens, exec and OIDC plugins, client certificates, basic auth, impersonation),
 * so rotated tokens and certificates apply at once; connections are reused across requests with the
 * same TLS identity, and a rotated certificate gets a pool of its own. A cluster behind a proxy
 * (proxy-url) goes through client-node's proxy agent.
 */
export class KubeRest {
  readonly #kubeConfig: KubeConfig;
  readonly #maxSockets: number;
  readonly #pools = new Map<string, Agent>();

  constructor(kubeConfig: KubeConfig, options: { maxSockets?: number } = {}) {
    this.#kubeConfig = kubeConfig;
    this.#maxSockets = options.maxSockets ?? Number.POSITIVE_INFINITY;
  }

  /** One request; resolves with the parsed JSON body, rejects HttpStatusError or a network error. */
  async request<T>(req: RestRequest): Promise<T> {
    const body = req.body === undefined ? undefined : JSON.stringify(req.body);
    const { url, options } = await this.#prepare(req, body);
    return new Promise<T>((resolve, reject) => {
      const request = transport(url).request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(new HttpStatusError(status, text, headersOf(res)));
            return;
          }
          try {
            resolve((text ? JSON.parse(text) : undefined) as T);
          } catch (error) {
            reject(error);
          }
        });
      });
      request.setTimeout(CALL_IDLE_TIMEOUT_MS, () =>
        request.destroy(
          Object.assign(new Error('the API server sent nothing for 60 s'), { code: 'ETIMEDOUT' }),
        ),
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  /**
   * A streaming GET (a watch): `onLine` gets each newline-terminated line of a 200 answer, `onDone`
   * is called once, with the error (HttpStatusError for another status) or nothing when the stream
   * ended or was stopped. Resolves once the request is sent.
   */
  async stream(
    req: Omit<RestRequest, 'method' | 'body' | 'contentType'>,
    onLine: (line: string) => void,
    onDone: (error?: unknown) => void,
  ): Promise<StreamHandle> {
    const { url, options } = await this.#prepare({ ...req, method: 'GET' }, undefined);
    let finished = false;
    let stopped = false;
    const done = (error?: unknown) => {
      if (finished) return;
      finished = true;
      onDone(stopped ? undefined : error);
    };
    const request = transport(url).request(url, options, (res) => {
      res.setEncoding('utf8');
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        let text = '';
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => done(new HttpStatusError(status, text, headersOf(res))));
        res.on('error', done);
        return;
      }
      let pending = '';
      res.on('data', (chunk: string) => {
        pending += chunk;
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (line.trim()) onLine(line);
          newline = pending.indexOf('\n');
        }
      });
      res.on('end', () => done());
      res.on('error', done);
      res.on('close', () => done());
    });
    request.on('error', done);
    request.end();
    return {
      stop: () => {
        stopped = true;
        request.destroy();
        done();
      },
    };
  }

  /** Closes every pooled connection (idle ones at once, busy ones when their request ends). */
  close(): void {
    for (const pool of this.#pools.values()) pool.destroy();
    this.#pools.clear();
  }

  async #prepare(req: RestRequest, body: string | undefined): Promise<{ url: URL; options: Options }> {
    const options: Options = { headers: {} };
    await this.#kubeConfig.applyToHTTPSOptions(options as https.RequestOptions);
    const cluster = this.#kubeConfig.getCurrentCluster();
    const url = new URL(`${cluster?.server.replace(/\/+$/, '') ?? ''}${req.path}`);
    for (const [key, value] of Object.entries(req.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    if (!cluster?.proxyUrl) options.agent = this.#pool(url, options);
    options.method = req.method;
    options.headers = {
      ...options.headers,
      Accept: 'application/json',
      'User-Agent': 'plugin-release',
      ...(body !== undefined
        ? {
            'Content-Type': req.contentType ?? 'application/json',
            'Content-Length': String(Buffer.byteLength(body)),
          }
        : {}),
    };
    if (req.signal) options.signal = req.signal;
    return { url, options };
  }

  /** The keep-alive pool for this TLS identity (CA, client certificate and key, verification). */
  #pool(url: URL, options: Options): Agent {
    const identity = {
      protocol: url.protocol,
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      pfx: options.pfx,
      passphrase: options.passphrase,
      rejectUnauthorized: options.rejectUnauthorized,
      servername: options.servername,
    };
    const key = createHash('sha256').update(JSON.stringify(identity)).digest('hex');
    let pool = this.#pools.get(key);
    if (!pool) {
      const agentOptions = {
        keepAlive: true,
        keepAliveMsecs: KEEP_ALIVE_INITIAL_DELAY_MS,
        maxSockets: this.#maxSockets,
      };
      pool = url.protocol === 'http:' ? new http.Agent(agentOptions) : new https.Agent(agentOptions);
      this.#pools.set(key, pool);
    }
    return pool;
  }
}

function transport(url: URL): typeof https | typeof http {
  return url.protocol === 'http:' ? http : https;
}

function headersOf(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(res.headers)) {
    if (value !== undefined) out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
