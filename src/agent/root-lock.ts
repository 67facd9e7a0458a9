// The agent root's lock, and the explicit hand-over between two agents on one root.
//
// The lock is a unix socket the holder listens on, `<root>/agent.sock`: the kernel releases it when the
// holder dies (a SIGKILLed agent leaves a socket file nobody answers on, which the next one removes), and
// it is also how a second agent talks to the first. A second engine — an accidental second agent, or a
// `try-activate` beside a live agent — finds it answered and refuses with RootLocked, touching nothing.
// An upgrade asks instead: the new agent (started with `takeover`) sends `handover`; the holder stops
// its work (its plugins and the keeper's fronts keep serving), answers with who it was, lets go of the
// socket and exits; the new agent binds the socket and recovers the root, adopting what runs.
import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { NodeReason } from '../api/index.ts';
import { ActivationError } from './errors.ts';

export const LOCK_SOCKET = 'agent.sock';

/** Who holds a root: enough to say so in a message, and to tell whether its processes outlive it. */
export interface Holder {
  pid: number;
  version: string;
  /** Where the holder runs (the pod UID in Kubernetes, else the host name): processes die with it. */
  instance: string;
}

export interface RootLock {
  /** The agent that held the root before, when this one took it over. */
  readonly predecessor: Holder | undefined;
  release(): Promise<void>;
}

export interface LockOptions {
  version: string;
  /** Ask a live holder to hand over instead of refusing. */
  takeover?: boolean;
  /** How a holder hands over: stop working, keep plugins and fronts. Without it, it refuses. */
  onHandover?: () => Promise<void>;
  /** How long to wait for a holder to hand over. */
  timeoutMs?: number;
}

export const thisInstance = () => process.env.POD_UID ?? hostname();

/**
 * Takes the root's lock. Throws ActivationError RootLocked when a live agent holds it (and, with
 * `takeover`, did not hand over in time).
 */
export async function lockRoot(root: string, opts: LockOptions): Promise<RootLock> {
  const path = join(root, LOCK_SOCKET);
  const me: Holder = { pid: process.pid, version: opts.version, instance: thisInstance() };
  let predecessor: Holder | undefined;
  const holder = await ask(path, { op: 'hello' }).catch(() => undefined);
  if (holder) {
    const held = holder as Holder;
    if (!opts.takeover) {
      throw new ActivationError(
        NodeReason.RootLocked,
        `The agent root ${root} is held by a live agent (pid ${held.pid}, version ${held.version}, on ${held.instance}); ` +
          'stop it first, or start this agent with --takeover to have it hand over.',
      );
    }
    predecessor = (await ask(path, { op: 'handover', by: me }, opts.timeoutMs ?? 60_000).catch((e: Error) => {
      throw new ActivationError(
        NodeReason.RootLocked,
        `The agent holding ${root} (pid ${held.pid}) did not hand over: ${e.message}.`,
      );
    })) as Holder;
    await waitUntilGone(path, opts.timeoutMs ?? 60_000);
  }
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) {
      throw new ActivationError(
        NodeReason.RootLocked,
        `${path} is in the way of the root's lock; remove it.`,
      );
    }
    unlinkSync(path); // no live holder answered: a dead agent's socket
  }
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      const reply = (body: object) => socket.end(`${JSON.stringify(body)}\n`);
      let req: { op?: unknown };
      try {
        req = JSON.parse(buffered.slice(0, newline)) as { op?: unknown };
      } catch {
        reply({ ok: false, error: 'not a JSON request' });
        return;
      }
      if (req.op === 'hello') reply({ ok: true, result: me });
      else if (req.op === 'handover' && opts.onHandover) {
        const onHandover = opts.onHandover;
        void (async () => {
          await onHandover();
          reply({ ok: true, result: me });
          await close();
        })();
      } else reply({ ok: false, error: 'this engine does not hand over its root' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  // Stops listening at once (the lock is free); a hand-over reply still in flight finishes on its own.
  const close = async () => {
    if (server.listening) server.close();
  };
  return { predecessor, release: close };
}

function ask(path: string, req: object, timeoutMs = 2000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    let buffered = '';
    socket.once('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('data', (c: Buffer) => {
      buffered += c.toString('utf8');
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(buffered) as { ok: boolean; result?: unknown; error?: string };
        if (reply.ok) resolve(reply.result);
        else reject(new Error(reply.error));
      } catch {
        reject(new Error('the holder closed the connection without answering'));
      }
    });
  });
}

/** Resolves once nothing answers on `path` any more (the old holder let go). */
async function waitUntilGone(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    await ask(path, { op: 'hello' }, 500).then(
      () => true,
      () => false,
    )
  ) {
    if (Date.now() > deadline)
      throw new ActivationError(NodeReason.RootLocked, `${path} is still held after the hand-over.`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
