// The stable front against live fixture plugins: atomic switches, the Recreate gap, draining.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, Front } from '../../../../src/agent/front/index.ts';
import { launchPlugin, type PluginProcess } from '../../../../src/agent/runtime/index.ts';
import { Handshake } from '../../../../src/api/index.ts';
import { stageFixture } from '../../../support/plugins.ts';

const logger = pino({ level: 'silent' });
let root: string;
let v1: PluginProcess;
let v2: PluginProcess;

async function start(version: string, network: 'tcp' | 'unix'): Promise<PluginProcess> {
  const fixture = await stageFixture(join(root, 'staging'), { version, network });
  return launchPlugin({
    runDir: join(root, `run-${version}`),
    entrypoint: fixture.entrypointPath,
    args: [],
    cwd: fixture.path,
    env: {},
    handshake: Handshake.parse({}),
    logger,
  });
}

const backendOf = (p: PluginProcess): Backend => ({
  network: p.handshake.network,
  address: p.handshake.address,
});

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pr-front-'));
  [v1, v2] = await Promise.all([start('1.0.0', 'tcp'), start('2.0.0', 'unix')]);
});
afterAll(async () => {
  await Promise.all([v1?.stop(1000), v2?.stop(1000)]);
  await rm(root, { recursive: true, force: true });
});

/** One GET through the front on a fresh connection; resolves with the version that served it. */
function get(front: Front, agent: http.Agent | false = false): Promise<string> {
  const url = new URL(front.address.replace(/^tcp:/, 'http:'));
  return new Promise((resolve, reject) => {
    const where = front.address.startsWith('unix://')
      ? { socketPath: front.address.slice('unix://'.length) }
      : { host: url.hostname, port: Number(url.port) };
    const req = http.get({ ...where, path: '/echo', agent }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(String(res.headers['x-plugin-version']))
          : reject(new Error('status')),
      );
    });
    req.on('error', reject);
  });
}

/** Requests in a loop until stopped: counts what succeeded, failed and which versions answered. */
function requestLoop(front: Front, agent: http.Agent | false = false) {
  const stats = { ok: 0, failed: 0, versions: new Set<string>(), errors: [] as string[] };
  let running = true;
  const done = (async () => {
    while (running) {
      try {
        stats.versions.add(await get(front, agent));
        stats.ok++;
      } catch (error) {
        stats.failed++;
        stats.errors.push((error as Error).message);
      }
    }
  })();
  return {
    stats,
    stop: async () => {
      running = false;
      await done;
      return stats;
    },
  };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Front', () => {
  it('switches 20 times between two live plugins without failing a request', async () => {
    const front = await Front.listen('tcp://127.0.0.1:0', logger);
    try {
      front.switchTo(backendOf(v1));
      const fresh = requestLoop(front);
      const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 2 });
      const reused = requestLoop(front, keepAlive);
      for (let i = 0; i < 20; i++) {
        const next = i % 2 === 0 ? v2 : v1;
        const { previous, drained } = front.switchTo(backendOf(next));
        expect(previous).toEqual(backendOf(next === v1 ? v2 : v1));
        await tick(50);
        expect(await get(front)).toBe(next === v1 ? '1.0.0' : '2.0.0');
        void drained(60_000);
      }
      const a = await fresh.stop();
      const b = await reused.stop();
      keepAlive.destroy();
      expect(a.errors).toEqual([]);
      expect(b.errors).toEqual([]);
      expect(a.versions).toEqual(new Set(['1.0.0', '2.0.0']));
      expect(a.ok).toBeGreaterThan(20);
    } finally {
      await front.close();
    }
  });

  it('closes new connections at once while it has no backend (the Recreate gap)', async () => {
    const front = await Front.listen('tcp://127.0.0.1:0', logger);
    try {
      front.switchTo(backendOf(v1));
      expect(await get(front)).toBe('1.0.0');
      expect(front.switchTo(undefined).previous).toEqual(backendOf(v1));
      expect(front.backend).toBeUndefined();
      await expect(get(front)).rejects.toThrow();
      front.switchTo(backendOf(v2));
      expect(await get(front)).toBe('2.0.0');
    } finally {
      await front.close();
    }
  });

  it('keeps an open connection on the previous backend until it closes, then reports drained', async () => {
    const front = await Front.listen('tcp://127.0.0.1:0', logger);
    try {
      front.switchTo(backendOf(v1));
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      expect(await get(front, agent)).toBe('1.0.0');
      const { drained } = front.switchTo(backendOf(v2));
      let isDrained = false;
      const drain = drained(60_000).then(() => {
        isDrained = true;
      });
      expect(await get(front, agent)).toBe('1.0.0');
      expect(await get(front)).toBe('2.0.0');
      await tick(100);
      expect(isDrained).toBe(false);
      expect(front.connections()).toBe(1);
      agent.destroy();
      await drain;
      expect(isDrained).toBe(true);
    } finally {
      await front.close();
    }
  });

  it('destroys connections still open when the drain times out', async () => {
    const front = await Front.listen('tcp://127.0.0.1:0', logger);
    try {
      front.switchTo(backendOf(v1));
      const url = new URL(front.address.replace(/^tcp:/, 'http:'));
      const socket = net.connect(Number(url.port), url.hostname);
      await new Promise((resolve) => socket.once('connect', resolve));
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.on('error', () => {});
      await tick(50);
      await front.switchTo(backendOf(v2)).drained(100);
      await closed;
      expect(front.connections()).toBe(0);
    } finally {
      await front.close();
    }
  });

  it('listens on a unix socket, replacing a stale socket file', async () => {
    const path = join(root, 'front.sock');
    const stale = net.createServer();
    await new Promise<void>((resolve) => stale.listen(path, resolve));
    // A dead agent leaves its socket file behind: simulate by unref-closing without unlinking.
    await new Promise<void>((resolve) => {
      const handle = (stale as unknown as { _handle: { close: (cb: () => void) => void } })._handle;
      handle.close(resolve);
    });
    const front = await Front.listen(`unix://${path}`, logger);
    try {
      front.switchTo(backendOf(v2));
      expect(await get(front)).toBe('2.0.0');
    } finally {
      await front.close();
    }
  });

  it('refuses a unix path that is not a socket, or a socket a live server answers on', async () => {
    const file = join(root, 'not-a-socket');
    await writeFile(file, 'data');
    await expect(Front.listen(`unix://${file}`, logger)).rejects.toThrow('not a socket');
    const live = await Front.listen(`unix://${join(root, 'live.sock')}`, logger);
    try {
      await expect(Front.listen(live.address, logger)).rejects.toThrow('live');
    } finally {
      await live.close();
    }
  });
});
