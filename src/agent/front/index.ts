// The stable front: a layer-4 proxy the agent owns, whose backend switches atomically at a swap.
//
// Contract with the engine (issue 4):
// - Front.listen('unix:///path.sock' | 'tcp://host:port', logger): a unix front removes a stale socket file
//   first (refusing when a live server answers on it, or when the path is not a socket); a tcp front on
//   port 0 reports the bound port in `address`.
// - switchTo(backend): every connection accepted after the call goes to the new backend; connections
//   already open to the previous backend keep flowing. `drained(timeoutMs)` resolves when those have
//   closed, or destroys them once the timeout passed. Without a backend, new connections are closed at
//   once (what Recreate's gap looks like to a client).
// - A connection's backend is fixed when it is accepted, so a request never straddles two processes.
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';

export interface Backend {
  network: 'tcp' | 'unix';
  address: string;
}

export interface Switch {
  previous: Backend | undefined;
  /** Resolves when the previous backend's connections closed; destroys the rest after timeoutMs (and waits for them). */
  drained: (timeoutMs: number) => Promise<void>;
}

type ListenTarget = { network: 'unix'; path: string } | { network: 'tcp'; host: string; port: number };

/** Parses a front address: `unix:///abs/path.sock` or `tcp://host:port` (IPv6 hosts in brackets). */
export function parseFrontAddress(address: string): ListenTarget {
  if (address.startsWith('unix://')) {
    const path = address.slice('unix://'.length);
    if (!path.startsWith('/')) throw new Error(`front address ${address} needs an absolute socket path`);
    return { network: 'unix', path };
  }
  const match = /^tcp:\/\/(\[[^\]]+\]|[^:/\s]+):([0-9]{1,5})$/.exec(address);
  if (!match) throw new Error(`front address ${address} is neither unix:///path nor tcp://host:port`);
  const port = Number(match[2]);
  if (port > 65535) throw new Error(`front address ${address} has an invalid port`);
  return { network: 'tcp', host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

/** One backend and the client connections it serves. */
interface Route {
  backend: Backend;
  sockets: Set<net.Socket>;
  waiters: Set<() => void>;
}

export class Front {
  readonly address: string;
  readonly #server: net.Server;
  readonly #logger: Logger;
  readonly #socketPath: string | undefined;
  #route: Route | undefined;
  readonly #all = new Set<net.Socket>();

  private constructor(server: net.Server, address: string, socketPath: string | undefined, logger: Logger) {
    this.#server = server;
    this.address = address;
    this.#socketPath = socketPath;
    this.#logger = logger;
  }

  /**
   * Starts listening. Rejects when the address is malformed, in use by a live server, or not bindable.
   */
  static async listen(address: string, logger: Logger): Promise<Front> {
    const target = parseFrontAddress(address);
    if (target.network === 'unix') await removeStaleSocket(target.path);
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = () => {
        server.off('error', reject);
        resolve();
      };
      if (target.network === 'unix') server.listen(target.path, done);
      else server.listen(target.port, target.host, done);
    });
    let bound = address;
    if (target.network === 'tcp') {
      const info = server.address() as net.AddressInfo;
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      bound = `tcp://${host}:${info.port}`;
    }
    const front = new Front(server, bound, target.network === 'unix' ? target.path : undefined, logger);
    server.on('connection', (socket) => front.#accept(socket));
    server.on('error', (err) => logger.error({ err, front: bound }, 'front server error'));
    logger.info({ front: bound }, 'front listening');
    return front;
  }

  get backend(): Backend | undefined {
    return this.#route?.backend;
  }

  /** Atomically routes new connections to `backend` (or refuses them when undefined). */
  switchTo(backend: Backend | undefined): Switch {
    const old = this.#route;
    this.#route = backend ? { backend: { ...backend }, sockets: new Set(), waiters: new Set() } : undefined;
    this.#logger.info({ front: this.address, backend, previous: old?.backend }, 'front switched');
    return {
      previous: old?.backend,
      drained: (timeoutMs: number) => (old ? drain(old, timeoutMs) : Promise.resolve()),
    };
  }

  /** Client connections currently open through the front, across all backends. */
  connections(): number {
    return this.#all.size;
  }

  /** Stops listening, destroys every open connection and removes the unix socket file. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#all) socket.destroy();
    await closed;
    if (this.#socketPath) {
      try {
        unlinkSync(this.#socketPath);
      } catch {
        // already gone: net.Server removes its socket on close on most platforms
      }
    }
  }

  #accept(client: net.Socket): void {
    const route = this.#route;
    if (!route) {
      client.destroy();
      return;
    }
    const { backend } = route;
    const upstream =
      backend.network === 'unix'
        ? net.connect({ path: backend.address, allowHalfOpen: true })
        : net.connect({ ...hostPort(backend.address), allowHalfOpen: true, noDelay: true });
    this.#all.add(client);
    route.sockets.add(client);
    const release = () => {
      this.#all.delete(client);
      route.sockets.delete(client);
      if (route.sockets.size === 0) for (const wake of route.waiters) wake();
    };
    client.once('close', () => {
      release();
      upstream.destroy();
    });
    upstream.once('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', (err) => {
      this.#logger.debug({ err, backend }, 'front backend connection failed');
      client.destroy();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

function drain(route: Route, timeoutMs: number): Promise<void> {
  if (route.sockets.size === 0) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      route.waiters.delete(done);
      resolve();
    };
    // Past the timeout the stragglers are destroyed; `done` runs once their close events emptied the set.
    const timer = setTimeout(() => {
      for (const socket of route.sockets) socket.destroy();
    }, timeoutMs);
    route.waiters.add(done);
  });
}

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/** Removes a socket file left by a dead agent; refuses to touch a live socket or anything else. */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`front path ${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`front socket ${path} is served by another live process`);
  unlinkSync(path);
}
