// The stable front: a layer-4 proxy the agent owns, whose backend switches atomically at a swap.
//
// Contract with the engine (the plugin host and its actions):
// - Front.listen('unix:///path.sock' | 'tcp://host:port', logger): a unix front removes a stale socket file
//   first (refusing when a live server answers on it, or when the path is not a socket); a tcp front on
//   port 0 reports the bound port in `address`.
// - switchTo(backend): every connection accepted after the call goes to the new backend; connections
//   already open to the previous backend keep flowing. `drained(timeoutMs)` resolves when those have
//   closed, or destroys them once the timeout passed. Without a backend, new connections are closed at
//   once (what Recreate's gap looks like to a client). Switching to the backend in use changes nothing.
// - A connection's backend is fixed once its upstream connects, so a request never straddles two
//   processes. While the backend refuses (its process died and is being restarted, or the agent is
//   away) a new connection is held, unread, and retried against whatever backend is current, for up to
//   `holdMs`; only then is it closed.
// - Each backend's route counts what the front saw of real traffic (refused, reset and early-closed
//   upstream connections), so the post-swap verification can judge the new backend passively.
// - tcp fronts listen with SO_REUSEPORT, so a replacement keeper can bind the same port before this
//   one lets go (see keeper.ts).
import { existsSync, lstatSync, renameSync, statSync, unlinkSync } from 'node:fs';
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

/** What the front saw of one backend's real traffic since it became the backend. */
export interface RouteStats {
  /** Connections that reached the backend. */
  connected: number;
  /** Upstream connects the backend refused (counted once per attempt, held connections retry). */
  refused: number;
  /** Upstream connections that failed with an error (reset, broken pipe) after they connected. */
  reset: number;
  /** Upstream connections the backend closed before sending a byte although the client had sent some. */
  earlyClosed: number;
}

/** Where a front listens, in the shape of a backend (to compare with the address a plugin announced). */
export function frontEndpoint(address: string): Backend {
  const target = parseFrontAddress(address);
  if (target.network === 'unix') return { network: 'unix', address: target.path };
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return { network: 'tcp', address: `${host}:${target.port}` };
}

/** One backend and the client connections it serves. */
interface Route {
  backend: Backend;
  sockets: Set<net.Socket>;
  waiters: Set<() => void>;
  stats: RouteStats;
}

/** How long a new connection waits for a backend that refuses before the front gives up on it. */
export const DEFAULT_HOLD_MS = 5000;
const RETRY_MS = 50;
const DOWN_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE']);

export class Front {
  readonly address: string;
  readonly #server: net.Server;
  readonly #logger: Logger;
  readonly #socketPath: string | undefined;
  readonly #holdMs: number;
  readonly #socketIno: number | undefined;
  #route: Route | undefined;
  readonly #all = new Set<net.Socket>();

  private constructor(
    server: net.Server,
    address: string,
    socketPath: string | undefined,
    logger: Logger,
    holdMs: number,
  ) {
    this.#server = server;
    this.address = address;
    this.#socketPath = socketPath;
    this.#logger = logger;
    this.#holdMs = holdMs;
    this.#socketIno = socketPath ? statSync(socketPath).ino : undefined;
  }

  /**
   * Starts listening. Rejects when the address is malformed, in use by a live server, or not bindable.
   * With `replace`, a unix front binds beside the path and renames its socket over a live one (the
   * keeper's hand-over: clients that connect after the rename reach this front), and a tcp front shares
   * the port with the live listener through SO_REUSEPORT.
   */
  static async listen(
    address: string,
    logger: Logger,
    options: { holdMs?: number; replace?: boolean } = {},
  ): Promise<Front> {
    const target = parseFrontAddress(address);
    const bindPath =
      target.network === 'unix' && options.replace ? `${target.path}.${process.pid}.new` : undefined;
    if (target.network === 'unix') await removeStaleSocket(bindPath ?? target.path);
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = () => {
        server.off('error', reject);
        resolve();
      };
      if (target.network === 'unix') server.listen(bindPath ?? target.path, done);
      else server.listen({ port: target.port, host: target.host, reusePort: true }, done);
    });
    if (bindPath && target.network === 'unix') renameSync(bindPath, target.path);
    let bound = address;
    if (target.network === 'tcp') {
      const info = server.address() as net.AddressInfo;
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      bound = `tcp://${host}:${info.port}`;
    }
    const front = new Front(
      server,
      bound,
      target.network === 'unix' ? target.path : undefined,
      logger,
      options.holdMs ?? DEFAULT_HOLD_MS,
    );
    server.on('connection', (socket) => front.#accept(socket));
    server.on('error', (err) => logger.error({ err, front: bound }, 'front server error'));
    logger.info({ front: bound }, 'front listening');
    return front;
  }

  get backend(): Backend | undefined {
    return this.#route?.backend;
  }

  /** The current backend, and what the front saw of its traffic since it became the backend. */
  state(): { backend?: Backend; stats?: RouteStats } {
    return this.#route ? { backend: { ...this.#route.backend }, stats: { ...this.#route.stats } } : {};
  }

  /** Atomically routes new connections to `backend` (or refuses them when undefined). */
  switchTo(backend: Backend | undefined): Switch {
    const old = this.#route;
    if (backend && old && sameBackend(old.backend, backend)) {
      return { previous: old.backend, drained: () => Promise.resolve() };
    }
    this.#route = backend
      ? {
          backend: { ...backend },
          sockets: new Set(),
          waiters: new Set(),
          stats: { connected: 0, refused: 0, reset: 0, earlyClosed: 0 },
        }
      : undefined;
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

  /**
   * A successor took this front's address over: stop accepting without touching open connections. A
   * tcp listener closes (the successor shares the port through SO_REUSEPORT). A unix listener is left
   * open but unreferenced: after the successor's rename nobody can reach it, and closing it would make
   * libuv unlink the path — which is now the successor's socket.
   */
  async stopAccepting(): Promise<void> {
    if (this.#socketPath) {
      this.#server.unref();
      return;
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Resolves once every open connection closed; destroys those left after `timeoutMs`. */
  async drainAll(timeoutMs: number): Promise<void> {
    if (this.#all.size === 0) return;
    const timer = setTimeout(() => {
      for (const socket of this.#all) socket.destroy();
    }, timeoutMs);
    while (this.#all.size > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    clearTimeout(timer);
  }

  /** Stops listening, destroys every open connection and removes the unix socket file. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#all) socket.destroy();
    await closed;
    if (this.#socketPath && this.#ownsSocketFile()) {
      try {
        unlinkSync(this.#socketPath);
      } catch {
        // already gone: net.Server removes its socket on close on most platforms
      }
    }
  }

  /** Whether the socket file at our path is still the one this front bound (not a replacement's). */
  #ownsSocketFile(): boolean {
    try {
      return statSync(this.#socketPath!).ino === this.#socketIno;
    } catch {
      return false;
    }
  }

  #accept(client: net.Socket): void {
    if (!this.#route) {
      client.destroy();
      return;
    }
    this.#all.add(client);
    // The route a connection is on (its drain waits for it) from the moment the front picks a backend.
    let on: Route | undefined;
    const leave = () => {
      if (!on) return;
      on.sockets.delete(client);
      if (on.sockets.size === 0) for (const wake of on.waiters) wake();
      on = undefined;
    };
    client.once('close', () => {
      this.#all.delete(client);
      leave();
    });
    client.on('error', () => {});
    const deadline = Date.now() + this.#holdMs;
    const attempt = () => {
      if (client.destroyed) return;
      const route = this.#route;
      if (!route) {
        client.destroy();
        return;
      }
      if (on !== route) {
        leave();
        on = route;
        route.sockets.add(client);
      }
      const upstream = connectTo(route.backend);
      const onEarlyError = (err: NodeJS.ErrnoException) => {
        upstream.destroy();
        const down = DOWN_CODES.has(err.code ?? '');
        if (down) route.stats.refused++;
        if (down && Date.now() < deadline && !client.destroyed) {
          setTimeout(attempt, RETRY_MS);
          return;
        }
        this.#logger.debug({ err, backend: route.backend }, 'front backend connection failed');
        client.destroy();
      };
      upstream.once('error', onEarlyError);
      upstream.once('connect', () => {
        upstream.off('error', onEarlyError);
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        this.#pipe(client, upstream, route);
      });
    };
    attempt();
  }

  /** Joins a client to its connected upstream. */
  #pipe(client: net.Socket, upstream: net.Socket, route: Route): void {
    route.stats.connected++;
    let clientGone = false;
    client.once('close', () => {
      clientGone = true;
      upstream.destroy();
    });
    // The backend hung up on a client that was still there and had asked something: a failed request.
    // (The sockets' own byte counters cost the data path nothing, unlike a 'data' listener per chunk.)
    let judged = false;
    const judge = () => {
      if (!judged && !clientGone && upstream.bytesRead === 0 && client.bytesRead > 0)
        route.stats.earlyClosed++;
      judged = true;
    };
    upstream.once('end', judge);
    upstream.once('close', () => {
      judge();
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', (err) => {
      route.stats.reset++;
      this.#logger.debug({ err, backend: route.backend }, 'front backend connection failed');
      client.destroy();
    });
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }
}

function connectTo(backend: Backend): net.Socket {
  return backend.network === 'unix'
    ? net.connect({ path: backend.address, allowHalfOpen: true })
    : net.connect({ ...hostPort(backend.address), allowHalfOpen: true, noDelay: true });
}

export const sameBackend = (a: Backend, b: Backend) => a.network === b.network && a.address === b.address;

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

/** `host:port` (IPv6 hosts in brackets) as net.connect takes it. */
export function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/**
 * Removes a socket file a dead process left at `path`; refuses (throws) when a live server answers on
 * it, or when the path is not a socket. `what` names the socket in those messages.
 */
export async function removeStaleSocket(path: string, what = 'front socket'): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`the ${what} path ${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`the ${what} ${path} is served by another live process`);
  unlinkSync(path);
}
