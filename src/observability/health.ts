// The HTTP endpoints operators and kubelets poll: /metrics (Prometheus), /healthz (alive), /readyz (ready).
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { PluginReleaseError } from '../runtime/errors.ts';
import { http, type Server } from '../runtime/node-http.ts';

export interface HealthServerOptions {
  /** `host:port`, `:port` (all interfaces) or `[::1]:port`; port 0 picks a free one. */
  addr: string;
  registry: Registry;
  /** Readiness, asked on every /readyz: e.g. caches synced and (controller) leadership known. */
  ready: () => boolean;
  /** Liveness, asked on every /healthz (default: always alive while the event loop answers). */
  healthy?: () => boolean;
  logger?: Pick<Logger, 'info' | 'warn'>;
}

export interface HealthServer {
  /** `http://host:port` actually bound (useful with port 0). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export class AddressError extends PluginReleaseError {
  constructor(message: string) {
    super('PR_ERR_BAD_ADDRESS', message);
  }
}

/** Splits `host:port` (IPv6 in brackets); throws AddressError naming the expected form. */
export function parseAddress(addr: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) {
    throw new AddressError(`invalid address "${addr}": expected host:port, :port or [ipv6]:port`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

/**
 * Serves GET /metrics (the registry, Prometheus text format), /healthz and /readyz (200 "ok" or
 * 503 with a one-line reason). Resolves once listening; rejects if the address cannot be bound.
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { host, port } = parseAddress(options.addr);
  const server: Server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const text = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : `${body}\n`);
    };
    switch (path) {
      case '/metrics':
        options.registry.metrics().then(
          (body) => {
            res.writeHead(200, { 'content-type': options.registry.contentType });
            res.end(req.method === 'HEAD' ? undefined : body);
          },
          (error: unknown) => {
            options.logger?.warn({ err: error }, 'collecting metrics failed');
            text(500, 'collecting metrics failed');
          },
        );
        return;
      case '/healthz':
      case '/livez':
        if (options.healthy?.() ?? true) text(200, 'ok');
        else text(503, 'unhealthy');
        return;
      case '/readyz':
        if (safe(options.ready)) text(200, 'ok');
        else text(503, 'not ready');
        return;
      default:
        text(404, 'not found: try /metrics, /healthz or /readyz');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  options.logger?.info({ url }, 'serving /metrics, /healthz and /readyz');
  return {
    url,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function safe(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}
