// Engine level: a cancelled attempt leaves the node as it found it (mid-probe: the candidate stops;
// mid-verification: the previous version is restored), and an uninstall leaves nothing of the plugin.
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isSameProcess, readProcessIdentity } from '../../../src/agent/runtime/index.ts';
import { type AgentWorld, aCandidate, anAgent, getVersion } from '../../support/agent-fixtures.ts';
import { until } from '../../support/processes.ts';

const worlds: AgentWorld[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.engine.close(true);
});

const current = (w: AgentWorld) => basename(readlinkSync(join(w.root, 'plugins/echo/current')));
const livePids = (w: AgentWorld) => {
  const runs = join(w.root, 'plugins/echo/run');
  return readdirSync(runs)
    .map((d) => readProcessIdentity(join(runs, d)))
    .filter((id) => id && isSameProcess(id.pid, id.startTime))
    .map((id) => id!.pid);
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function withV1Active() {
  const w = await anAgent();
  worlds.push(w);
  const v1 = await aCandidate(w, { version: '1.0.0', network: 'unix' });
  expect((await w.engine.activate(v1.spec)).phase).toBe('Active');
  return { w, v1 };
}

describe('a cancelled attempt', { timeout: 60_000 }, () => {
  it('stops a candidate mid-probe; the active version serves on, untouched', async () => {
    const { w, v1 } = await withV1Active();
    const v2 = await aCandidate(
      w,
      { version: '2.0.0', network: 'unix' },
      { health: { probes: [{ grpc: {}, periodSeconds: 1 }], soakSeconds: 300 } },
    );
    const cancel = new AbortController();
    let probing = false;
    const attempt = w.engine.activate(v2.spec, {
      signal: cancel.signal,
      onStatus: (s) => {
        probing ||= s.phase === 'Probing';
      },
    });
    await until('the candidate to be probed', async () => (probing && livePids(w).length === 2) || undefined);
    cancel.abort(new Error('deleted'));
    await expect(attempt).rejects.toThrow('deleted');
    expect(livePids(w)).toHaveLength(1);
    expect(await getVersion(w.frontSocket)).toEqual({ ok: true, version: '1.0.0' });
    expect(current(w)).toBe(v1.spec.revision);
    expect(JSON.parse(await readFile(join(w.root, 'plugins/echo/journal.json'), 'utf8')).intent).toBeNull();
  });

  it('restores the previous version when cancelled after the swap, while verifying', async () => {
    const { w, v1 } = await withV1Active();
    const v2 = await aCandidate(
      w,
      { version: '2.0.0', network: 'unix' },
      { activation: { drainSeconds: 1, verifySeconds: 300 } },
    );
    const cancel = new AbortController();
    const attempt = w.engine.activate(v2.spec, { signal: cancel.signal });
    await until('the front to serve 2.0.0', async () => {
      const r = await getVersion(w.frontSocket);
      return (r.ok && r.version === '2.0.0') || undefined;
    });
    cancel.abort(new Error('sent back'));
    await expect(attempt).rejects.toThrow('sent back');
    expect(await getVersion(w.frontSocket)).toEqual({ ok: true, version: '1.0.0' });
    expect(current(w)).toBe(v1.spec.revision);
    expect(await w.engine.activeRevision('echo')).toBe(v1.spec.revision);
    await until('the candidate to stop', async () => livePids(w).length === 1 || undefined);
  });
});

describe('an uninstall', { timeout: 60_000 }, () => {
  it('stops the plugin, removes its front and its directory, and may run twice', async () => {
    const { w } = await withV1Active();
    const pids = livePids(w);
    expect(pids).toHaveLength(1);
    await w.engine.uninstall('echo');
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(w.frontSocket)).toBe(false);
    expect(existsSync(join(w.root, 'plugins/echo'))).toBe(false);
    expect(await w.engine.activeRevision('echo')).toBeUndefined();
    await w.engine.uninstall('echo');
    expect(existsSync(join(w.root, 'plugins/echo'))).toBe(false);
  });
});
