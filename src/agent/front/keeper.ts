// The keeper: a small long-lived process that holds every front of an agent root, so the fronts keep
// accepting and forwarding while the agent is dead, restarting or being replaced (systemd's socket owner
// that stays put while its service restarts). The agent drives it over `<root>/keeper.sock`, one JSON
// request per line:
//
//   {"id":1,"op":"open","address":"unix:///…/front.sock"}            → {"id":1,"ok":true,"result":{"address"}}
//   {"id":2,"op":"switch","address":…,"backend":{network,address}|null} → {previous?, drain}
//   {"id":3,"op":"drained","drain":7,"timeoutMs":1000}                → {} once the old connections closed
//   {"id":4,"op":"state","address":…}                                → {backend?, stats?}
//   {"id":5,"op":"list"} · {"op":"close","address"} · {"op":"hello"} → {pid, version, fronts}
//
// A keeper is itself replaceable without dropping connections (nginx's binary upgrade): a new keeper
// started with `takeover` asks the old one for its fronts, listens on each (unix: binds beside the path and
// renames over it; tcp: SO_REUSEPORT on the same port), points each at the same backend, renames its
// control socket over the old one, then sends `retire`: the old keeper stops accepting, lets its open
// connections finish, and exits.
import { spawn } from 'node:child_process';
import { existsSync, openSync, renameSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { type FrontHandle, type FrontSwitch, type Fronts, LocalFronts } from './fronts.ts';
import { type Backend, type RouteStats, removeStaleSocket } from './index.ts';

export const KEEPER_SOCKET = 'keeper.sock';
export const KEEPER_LOG = 'keeper.log';
/** The control protocol's version; a keeper answers `hello` with it. */
export const KEEPER_PROTOCOL = 1;
/** How long a retiring keeper lets open connections finish before it closes them. */
const RETIRE_DRAIN_MS = 30_000;
/** A keeper with no front and no agent connected exits after this long. */
const IDLE_EXIT_MS = 10_000;
const WATCH_MS = 1000;
/** How long an agent that stopped every plugin waits for its idle keeper to exit. */
const QUIT_WAIT_MS = 2000;
/** Drains the agent may still wait for; older ones are forgotten (their connections still finish). */
const MAX_PENDING_DRAINS = 64;

export const keeperSocket = (root: string) => join(root, KEEPER_SOCKET);

type Request =
  | { id: number; op: 'hello' | 'list' | 'retire' | 'quit' }
  | { id: number; op: 'open' | 'state' | 'close'; address: string }
  | { id: number; op: 'switch'; address: string; backend: Backend | null }
  | { id: number; op: 'drained'; drain: number; timeoutMs: number };

export interface KeeperInfo {
  pid: number;
  protocol: number;
  fronts: { address: string; backend?: Backend }[];
}

export interface RunningKeeper {
  readonly fronts: LocalFronts;
  /**
   * True once a successor took over. The process must then end with process.exit: a natural exit
   * closes every handle, and libuv unlinks a closed unix listener's path — the successor's socket.
   */
  readonly retired: boolean;
  /** Resolves when the keeper stopped (retired, shut down, or its root went away). */
  readonly stopped: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Serves the fronts of `root` until it is retired or its root disappears. Rejects when another live
 * keeper already serves the root (unless `takeover`, which replaces it as described above).
 */
export async function startKeeper(opts: {
  root: string;
  logger: Logger;
  takeover?: boolean;
  holdMs?: number;
  /** Exit after 10 s with no front and no agent (default true; a container's main process stays). */
  idleExit?: boolean;
}): Promise<RunningKeeper> {
  const { root, logger } = opts;
  const path = keeperSocket(root);
  const fronts = new LocalFronts(logger, opts.holdMs !== undefined ? { holdMs: opts.holdMs } : {});
  const drains = new Map<number, FrontSwitch['drained']>();
  let nextDrain = 1;
  const clients = new Set<net.Socket>();
  let stopping: Promise<void> | undefined;
  let retired = false;
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });

  let predecessor: KeeperClient | undefined;
  if (opts.takeover) {
    predecessor = await KeeperClient.connect(root).catch(() => undefined);
    if (predecessor) {
      const { fronts: held } = await predecessor.hello();
      for (const f of held) {
        const front = await fronts.openFront(f.address, true);
        if (f.backend) front.switchTo(f.backend);
      }
      logger.info({ fronts: held.length }, 'took over the fronts of the running keeper');
    }
  }

  const handle = async (req: Request): Promise<unknown> => {
    switch (req.op) {
      case 'hello':
        return { pid: process.pid, protocol: KEEPER_PROTOCOL, fronts: await fronts.list() };
      case 'list':
        return fronts.list();
      case 'open':
        return { address: (await fronts.openFront(req.address)).address };
      case 'state':
        return known(req.address).state();
      case 'switch': {
        const switched = known(req.address).switchTo(req.backend ?? undefined);
        const drain = nextDrain++;
        drains.set(drain, switched.drained);
        // An agent that never waits for a drain (a restart, a recovery) must not make the map grow.
        for (const old of drains.keys()) if (drains.size > MAX_PENDING_DRAINS) drains.delete(old);
        return { ...(switched.previous ? { previous: switched.previous } : {}), drain };
      }
      case 'drained': {
        const drained = drains.get(req.drain);
        drains.delete(req.drain);
        await drained?.(req.timeoutMs);
        return {};
      }
      case 'close':
        await fronts.closeFront(req.address);
        return {};
      case 'retire':
        void retire();
        return {};
      case 'quit':
        if (fronts.all().length > 0) return { exiting: false };
        void shutdown('its agent stopped every plugin');
        return { exiting: true };
    }
  };
  const known = (address: string) => {
    const front = fronts.get(address);
    if (!front) throw new Error(`no front is open at ${address}`);
    return front;
  };

  const server = net.createServer((socket) => {
    clients.add(socket);
    socket.once('close', () => clients.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        let req: Request;
        try {
          req = JSON.parse(line) as Request;
        } catch {
          socket.destroy();
          return;
        }
        handle(req).then(
          (result) => socket.write(`${JSON.stringify({ id: req.id, ok: true, result })}\n`),
          (error: Error) =>
            socket.write(`${JSON.stringify({ id: req.id, ok: false, error: error.message })}\n`),
        );
      }
    });
  });
  const bindPath = predecessor ? `${path}.${process.pid}.new` : path;
  if (!predecessor) await removeStaleSocket(path, 'keeper control socket');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(bindPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (predecessor) renameSync(bindPath, path);
  const ino = statSync(path).ino;
  logger.info({ control: path, pid: process.pid }, 'keeper serving');
  if (predecessor) {
    await predecessor.retire().catch(() => {});
    predecessor.close();
  }

  // A keeper whose root was removed, or that has nothing to hold and nobody to hold it for, exits.
  let idleSince = Date.now();
  const watch = setInterval(() => {
    let ours = false;
    try {
      ours = statSync(path).ino === ino;
    } catch {
      ours = false;
    }
    if (!ours && !existsSync(root)) void shutdown('its root was removed');
    if (fronts.all().length > 0 || clients.size > 0) idleSince = Date.now();
    else if (opts.idleExit !== false && Date.now() - idleSince > IDLE_EXIT_MS)
      void shutdown('it holds no front and no agent is connected');
  }, WATCH_MS);

  /** Hand-over: a replacement listens on every address now; stop accepting, drain, exit. */
  async function retire(): Promise<void> {
    if (stopping) return stopping;
    stopping = (async () => {
      logger.info('retiring: a new keeper took over');
      retired = true;
      clearInterval(watch);
      // Not closed: the control socket's path is the successor's now, and closing would unlink it.
      server.unref();
      for (const c of clients) c.destroy();
      // Connections already queued on our listeners are accepted during this grace, then we let go.
      await new Promise((resolve) => setTimeout(resolve, 200));
      // stopAccepting does not wait for open connections (net.Server.close's callback would).
      void Promise.all(fronts.all().map((f) => f.stopAccepting()));
      // A unix listener stays open (see stopAccepting): connections that were queued on it before the
      // rename are still accepted and forwarded, so linger until none has come for a moment.
      do {
        await Promise.all(fronts.all().map((f) => f.drainAll(RETIRE_DRAIN_MS)));
        await new Promise((resolve) => setTimeout(resolve, 300));
      } while (fronts.all().some((f) => f.connections() > 0));
      resolveStopped();
    })();
    return stopping;
  }

  async function shutdown(why: string): Promise<void> {
    if (stopping) return stopping;
    stopping = (async () => {
      logger.info({ why }, 'keeper exiting');
      clearInterval(watch);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of clients) c.destroy();
      await fronts.detach();
      try {
        if (statSync(path).ino === ino) unlinkSync(path);
      } catch {
        // already gone
      }
      resolveStopped();
    })();
    return stopping;
  }

  return {
    fronts,
    stopped,
    stop: () => shutdown('asked to stop'),
    get retired() {
      return retired;
    },
  };
}

/** The agent's side of the control socket. */
export class KeeperClient {
  readonly #socket: net.Socket;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 1;
  #closed: Error | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const reply = JSON.parse(buffered.slice(0, newline)) as {
          id: number;
          ok: boolean;
          result?: unknown;
          error?: string;
        };
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        const waiter = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        if (reply.ok) waiter?.resolve(reply.result);
        else waiter?.reject(new Error(reply.error));
      }
    });
    const fail = (error: Error) => {
      this.#closed = error;
      for (const w of this.#pending.values()) w.reject(error);
      this.#pending.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the keeper closed its control connection')));
  }

  static connect(root: string): Promise<KeeperClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path: keeperSocket(root) });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new KeeperClient(socket));
      });
      socket.once('error', reject);
    });
  }

  get connected(): boolean {
    return this.#closed === undefined;
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#socket.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  hello(): Promise<KeeperInfo> {
    return this.call('hello');
  }

  retire(): Promise<void> {
    return this.call('retire');
  }

  close(): void {
    this.#socket.destroy();
  }
}

const PLUGIN_RELEASE_BIN = fileURLToPath(new URL('../../../bin/plugin-release.js', import.meta.url));

/**
 * Connects to the keeper of `root`, starting one (detached, so it outlives this process; logging to
 * `<root>/keeper.log`) when none answers. Rejects when no keeper answers within 10 s.
 */
export async function ensureKeeper(root: string, logger: Logger): Promise<KeeperClient> {
  const existing = await KeeperClient.connect(root).catch(() => undefined);
  if (existing) return existing;
  const log = openSync(join(root, KEEPER_LOG), 'a');
  const child = spawn(process.execPath, [PLUGIN_RELEASE_BIN, 'keeper', '--root', root], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  child.unref();
  logger.info({ pid: child.pid, root }, 'started a keeper for the fronts');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = await KeeperClient.connect(root).catch(() => undefined);
    if (client) return client;
    if (Date.now() > deadline)
      throw new Error(`the keeper for ${root} did not start; see ${join(root, KEEPER_LOG)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The fronts held by the root's keeper process; reconnects (and restarts a keeper) when it went away. */
export class KeeperFronts implements Fronts {
  readonly #root: string;
  readonly #logger: Logger;
  #client: Promise<KeeperClient> | undefined;

  constructor(root: string, logger: Logger) {
    this.#root = root;
    this.#logger = logger;
  }

  async #call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    let client = await this.#connected();
    if (!client.connected) {
      this.#client = undefined;
      client = await this.#connected();
    }
    return client.call<T>(op, args);
  }

  #connected(): Promise<KeeperClient> {
    if (!this.#client) {
      this.#client = ensureKeeper(this.#root, this.#logger);
      this.#client.catch(() => {
        this.#client = undefined;
      });
    }
    return this.#client;
  }

  async open(address: string): Promise<FrontHandle> {
    const { address: bound } = await this.#call<{ address: string }>('open', { address });
    // A keeper that restarted lost its fronts: open again before switching.
    const switchOnce = (backend: Backend | undefined) =>
      this.#call<{ previous?: Backend; drain: number }>('switch', {
        address: bound,
        backend: backend ?? null,
      });
    return {
      address: bound,
      switchTo: async (backend) => {
        const switched = await switchOnce(backend).catch(async () => {
          await this.#call('open', { address: bound });
          return switchOnce(backend);
        });
        return {
          previous: switched.previous,
          drained: (timeoutMs) => this.#call('drained', { drain: switched.drain, timeoutMs }),
        };
      },
      state: () => this.#call<{ backend?: Backend; stats?: RouteStats }>('state', { address: bound }),
      close: () => this.#call('close', { address: bound }),
    };
  }

  list(): Promise<{ address: string; backend?: Backend }[]> {
    return this.#call('list');
  }

  async detach(done = false): Promise<void> {
    const client = await this.#client?.catch(() => undefined);
    const quit =
      done && client?.connected
        ? await client.call<{ exiting: boolean }>('quit').catch(() => undefined)
        : undefined;
    client?.close();
    this.#client = undefined;
    // The keeper unlinks its socket last; wait for that, so that nothing of this root outlives the stop.
    const deadline = Date.now() + QUIT_WAIT_MS;
    while (quit?.exiting && existsSync(keeperSocket(this.#root)) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
