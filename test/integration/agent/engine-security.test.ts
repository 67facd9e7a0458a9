// The whole node engine against hostile activations (docs/security.md): a traversing revision, a
// rollbackTo onto a planted record, a tampered snapshot. Each is refused with its reason, nothing
// outside the agent root changes, nothing planted runs, and `current` keeps serving.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { releaseDir } from '../../../src/agent/store.ts';
import { type AgentWorld, aCandidate, anAgent, getVersion } from '../../support/agent-fixtures.ts';

const worlds: AgentWorld[] = [];
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.engine.close(true);
});

async function withV1Active() {
  const world = await anAgent();
  worlds.push(world);
  const v1 = await aCandidate(world, { version: '1.0.0', network: 'unix' });
  expect((await world.engine.activate(v1.spec)).phase).toBe('Active');
  return { world, v1 };
}

/** Everything under the test's base directory except the agent root, with contents. */
function outsideRoot(w: AgentWorld): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (path === w.root) continue;
      const st = lstatSync(path);
      let what = `${path} ${st.mode.toString(8)} ${st.size}`;
      if (st.isSymbolicLink()) what += ` -> ${readlinkSync(path)}`;
      else if (st.isFile()) what += ` ${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
      out.push(what);
      if (st.isDirectory()) walk(path);
    }
  };
  walk(w.base);
  return out.sort();
}

const current = (w: AgentWorld) => basename(readlinkSync(join(w.root, 'plugins/echo/current')));

describe('the node engine refuses hostile activations and keeps serving', () => {
  it('refuses revision ../../../../victim with InvalidRevision: nothing outside the root removed, v1 serves', async () => {
    const { world, v1 } = await withV1Active();
    const victim = join(world.base, 'victim');
    await mkdir(victim);
    await writeFile(join(victim, 'precious'), 'do not delete\n');
    const v2 = await aCandidate(world, { version: '2.0.0', network: 'unix' });
    const before = outsideRoot(world);
    const status = await world.engine.activate({ ...v2.spec, revision: '../../../../victim' });
    expect(status.reason).toBe('InvalidRevision');
    expect(outsideRoot(world)).toEqual(before);
    expect(await readFile(join(victim, 'precious'), 'utf8')).toBe('do not delete\n');
    expect(current(world)).toBe(v1.spec.revision);
    expect(await getVersion(world.frontSocket)).toEqual({ ok: true, version: '1.0.0' });
  });

  it('refuses a rollbackTo onto a planted .complete with PathOutsideRoot and runs nothing from it', async () => {
    const { world, v1 } = await withV1Active();
    const pwned = join(world.base, 'pwned');
    const evil = join(world.base, 'evil.sh');
    await writeFile(evil, `#!/bin/sh\ntouch ${pwned}\n`, { mode: 0o755 });
    // A directory that looks like a kept release, with a record copied from a genuine one.
    const planted = releaseDir(world.root, 'echo', 'planted');
    await mkdir(join(planted, 'artifact'), { recursive: true });
    const genuine = JSON.parse(
      await readFile(join(releaseDir(world.root, 'echo', v1.spec.revision), '.complete'), 'utf8'),
    );
    await writeFile(
      join(planted, '.complete'),
      JSON.stringify({ ...genuine, revision: 'planted', entrypoint: evil }),
    );
    const before = outsideRoot(world);
    const status = await world.engine.activate({ ...v1.spec, rollbackTo: { revision: 'planted' } });
    expect(status.reason).toBe('PathOutsideRoot');
    expect(existsSync(pwned)).toBe(false);
    expect(outsideRoot(world)).toEqual(before);
    expect(current(world)).toBe(v1.spec.revision);
    expect(await getVersion(world.frontSocket)).toEqual({ ok: true, version: '1.0.0' });
  });

  it('refuses a rollbackTo onto a snapshot rewritten after it was staged with SnapshotCorrupt; v2 serves', async () => {
    const { world, v1 } = await withV1Active();
    const v2 = await aCandidate(world, { version: '2.0.0', network: 'unix' });
    expect((await world.engine.activate(v2.spec)).phase).toBe('Active');
    const kept = releaseDir(world.root, 'echo', v1.spec.revision);
    const entry = JSON.parse(await readFile(join(kept, '.complete'), 'utf8')).entrypoint as string;
    await writeFile(entry, `${await readFile(entry, 'utf8')}\n# changed after staging\n`);
    const before = outsideRoot(world);
    const status = await world.engine.activate({ ...v2.spec, rollbackTo: { revision: v1.spec.revision } });
    expect(status.reason).toBe('SnapshotCorrupt');
    expect(outsideRoot(world)).toEqual(before);
    expect(current(world)).toBe(v2.spec.revision);
    expect(await getVersion(world.frontSocket)).toEqual({ ok: true, version: '2.0.0' });
  });
});
