// A damaged agent root (issue 12): a corrupt or unknown journal, an intent whose `from` is gone, future
// journal fields, a front path that is a regular file, a full disk at the journal write, runAsUser with
// a unix socket. Each is driven through `plugin-release try-activate` (it must print one JSON object) and
// then an in-process engine on the same root, which must serve `current` again.
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { journalPath, readJournal } from '../../../src/agent/journal.ts';
import { NodeEngine } from '../../../src/agent/node-engine.ts';
import { isSameProcess, pluginEnvironment, readProcessIdentity } from '../../../src/agent/runtime/index.ts';
import { type AgentWorld, aCandidate, anAgent, getVersion } from '../../support/agent-fixtures.ts';
import { type FixtureSettings, stageFixture } from '../../support/plugins.ts';

const REPO = join(import.meta.dirname, '../../..');
const NODE = join(REPO, 'node_modules/.bin/node');
const PLUGIN = 'plugins/echo';

const engines: NodeEngine[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close(true);
  for (const c of cleanups.splice(0).reverse()) c();
});

/** v1 active under a fresh root; the engine closed again (the v1 process keeps running, as after a crash). */
async function v1Serving(world?: AgentWorld) {
  const w = world ?? (await anAgent());
  engines.push(w.engine);
  const v1 = await aCandidate(w, { version: '1.0.0', network: 'unix' }, fast);
  expect((await w.engine.activate(v1.spec)).phase).toBe('Active');
  await w.engine.close();
  return { world: w, v1: v1.spec.revision, v1Pid: (await readJournal(w.root, 'echo'))!.active!.process.pid };
}
const fast = { health: { probes: [] }, activation: { drainSeconds: 0, verifySeconds: 0 } };

/** Stages a candidate and runs `plugin-release try-activate` for it on the world's root. */
async function tryActivate(world: AgentWorld, settings: FixtureSettings = { version: '9.0.0' }) {
  const fixture = await stageFixture(world.staging, { network: 'unix', ...settings });
  const file = join(world.staging, `${basename(fixture.path)}.yaml`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'pluginrelease.io/v1alpha1',
      kind: 'PluginRelease',
      metadata: { name: 'echo' },
      spec: {
        plugin: 'echo',
        version: settings.version ?? '9.0.0',
        artifact: { path: fixture.path, digest: fixture.digest, entrypoint: fixture.entrypoint },
        handshake: { timeoutSeconds: 3 },
        health: { probes: [] },
      },
    }),
  );
  const outside = treeOutside(world);
  const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      NODE,
      [
        join(REPO, 'bin/plugin-release.js'),
        'try-activate',
        '--release',
        file,
        '--staging-root',
        world.staging,
        '--root',
        world.root,
      ],
      { env: { PATH: process.env.PATH ?? '', HOME: tmpdir() }, timeout: 25_000, encoding: 'utf8' },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    ),
  );
  expect(run.stderr).not.toMatch(/^\s+at /m); // no stack trace, ever
  const lines = run.stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  const result = JSON.parse(lines[0]!) as {
    status: string;
    reason: string;
    message: string;
    recovery?: Record<string, string[]>;
  };
  expect(treeOutside(world)).toEqual(outside); // nothing outside --root changed
  return { ...run, result };
}

/** Every path under the world's base outside its root, with size and mtime: what must not change. */
function treeOutside(world: AgentWorld): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (path === world.root) continue;
      const s = statSync(path);
      out.push(`${relative(world.base, path)} ${s.size} ${s.mtimeMs}`);
      if (s.isDirectory()) walk(path);
    }
  };
  walk(world.base);
  return out.sort();
}

/** A new engine on the same root, as the agent after a restart: what recovery did and what serves. */
async function restartAgent(world: AgentWorld) {
  const engine = new NodeEngine({
    root: world.root,
    stagingRoot: world.staging,
    logger: pino({ level: 'silent' }),
  });
  engines.push(engine);
  const actions = (await engine.recover()).echo ?? [];
  return {
    engine,
    actions,
    active: await engine.activeRevision('echo'),
    served: await getVersion(world.frontSocket),
    journal: await readJournal(world.root, 'echo'),
  };
}

const current = (w: AgentWorld) => basename(readlinkSync(join(w.root, PLUGIN, 'current')));
const liveRunDirs = (w: AgentWorld) =>
  readdirSync(join(w.root, PLUGIN, 'run')).filter((d) => {
    const id = readProcessIdentity(join(w.root, PLUGIN, 'run', d));
    return id !== undefined && isSameProcess(id.pid, id.startTime);
  });
const quarantined = (w: AgentWorld) =>
  readdirSync(join(w.root, PLUGIN)).filter((n) => n.startsWith('journal.json.corrupt-'));

describe('recovery from a damaged root', () => {
  const damagedJournals: { name: string; damage: (journal: string) => string; problem: RegExp }[] = [
    { name: 'truncated journal', damage: (j) => j.slice(0, 60), problem: /not JSON/ },
    { name: 'garbage journal', damage: () => '\u0000\u00ff\u0013garbage{{', problem: /not JSON/ },
    { name: 'empty journal', damage: () => '', problem: /empty/ },
    {
      name: 'journal whose intent has an unknown op',
      damage: (j) =>
        JSON.stringify({
          ...JSON.parse(j),
          intent: { op: 'teleport', from: null, fromPrevious: null, to: 'x', at: 'now' },
        }),
      problem: /intent\.op/,
    },
    {
      name: 'journal failing its schema',
      damage: (j) => JSON.stringify({ ...JSON.parse(j), active: { revision: 7 } }),
      problem: /active\.revision/,
    },
  ];

  it.each(damagedJournals)(
    'quarantines the $name, rebuilds it from the disk and adopts the v1 process that still serves (JournalQuarantined)',
    async ({ damage, problem }) => {
      const { world, v1, v1Pid } = await v1Serving();
      const damaged = damage(readFileSync(journalPath(world.root, 'echo'), 'utf8'));
      writeFileSync(journalPath(world.root, 'echo'), damaged);

      const run = await tryActivate(world);
      expect(run.result.status).toBe('probe_ok');
      expect(run.code).toBe(0);
      const [action] = run.result.recovery?.echo ?? [];
      expect(action).toContain('(JournalQuarantined)');
      expect(action).toMatch(problem);
      expect(quarantined(world)).toHaveLength(1);
      expect(readFileSync(join(world.root, PLUGIN, quarantined(world)[0]!), 'utf8')).toBe(damaged);

      const after = await restartAgent(world);
      expect(after.journal).toMatchObject({
        plugin: 'echo',
        intent: null,
        active: { revision: v1, process: { pid: v1Pid } },
      });
      expect(after.active).toBe(v1);
      expect(current(world)).toBe(v1);
      expect(after.served).toEqual({ ok: true, version: '1.0.0' });
      expect(liveRunDirs(world)).toHaveLength(1);
    },
  );

  it('restarts current when the journal is corrupt and no process of current runs any more (JournalQuarantined)', async () => {
    const { world, v1, v1Pid } = await v1Serving();
    const { startTime } = (await readJournal(world.root, 'echo'))!.active!.process;
    process.kill(-v1Pid, 'SIGKILL');
    await waitUntil(() => !isSameProcess(v1Pid, startTime));
    writeFileSync(journalPath(world.root, 'echo'), '{"plugin":');

    const after = await restartAgent(world);
    expect(after.actions[0]).toContain('(JournalQuarantined)');
    expect(after.actions).toContainEqual(expect.stringMatching(new RegExp(`^Restarted ${v1} from current`)));
    expect(after.served).toEqual({ ok: true, version: '1.0.0' });
    expect(after.journal?.active?.process.pid).not.toBe(v1Pid);
  });

  it('recovers to the release it was moving to when the intent’s from release is missing on disk (RestoreTargetMissing)', async () => {
    const { world, v1 } = await v1Serving();
    const engine = new NodeEngine({
      root: world.root,
      stagingRoot: world.staging,
      logger: pino({ level: 'silent' }),
    });
    engines.push(engine);
    await engine.recover();
    const v2 = await aCandidate(world, { version: '2.0.0', network: 'unix' }, fast);
    expect((await engine.activate(v2.spec)).phase).toBe('Active');
    await engine.close();
    // A crash mid-swap back to v1 (say), and then someone removed v1's release.
    const journal = JSON.parse(readFileSync(journalPath(world.root, 'echo'), 'utf8'));
    journal.intent = {
      op: 'swap',
      from: v1,
      fromPrevious: null,
      to: v2.spec.revision,
      at: journal.updatedAt,
    };
    writeFileSync(journalPath(world.root, 'echo'), JSON.stringify(journal));
    rmSync(join(world.root, PLUGIN, 'releases', v1), { recursive: true });

    const run = await tryActivate(world);
    expect(run.result.status).toBe('probe_ok');
    expect(run.result.recovery?.echo).toContainEqual(expect.stringContaining('(RestoreTargetMissing)'));
    expect(run.result.recovery?.echo?.join(' ')).toContain(`recovered to ${v2.spec.revision}`);

    const after = await restartAgent(world);
    expect(after.actions).toEqual([
      `Adopted the running ${v2.spec.revision} process (pid ${journal.active.process.pid}).`,
    ]);
    expect(current(world)).toBe(v2.spec.revision);
    expect(after.journal?.intent).toBeNull();
    expect(after.served).toEqual({ ok: true, version: '2.0.0' });
  });

  it('keeps journal fields it does not know (written by a newer agent) through recovery and an activation', async () => {
    const { world, v1 } = await v1Serving();
    const journal = JSON.parse(readFileSync(journalPath(world.root, 'echo'), 'utf8'));
    journal.lease = { holder: 'agent-2', until: '2099-01-01T00:00:00Z' };
    journal.active.note = 'kept';
    journal.active.process.cgroupV3 = { path: '/x' };
    writeFileSync(journalPath(world.root, 'echo'), JSON.stringify(journal));

    const run = await tryActivate(world);
    expect(run.result).toMatchObject({
      status: 'probe_ok',
      recovery: { echo: [expect.stringContaining('Adopted')] },
    });
    const recovered = JSON.parse(readFileSync(journalPath(world.root, 'echo'), 'utf8'));
    expect(recovered.lease).toEqual(journal.lease);
    expect(recovered.active).toMatchObject({
      revision: v1,
      note: 'kept',
      process: { cgroupV3: { path: '/x' } },
    });

    const after = await restartAgent(world);
    const v2 = await aCandidate(world, { version: '2.0.0', network: 'unix' }, fast);
    expect((await after.engine.activate(v2.spec)).phase).toBe('Active');
    expect(JSON.parse(readFileSync(journalPath(world.root, 'echo'), 'utf8')).lease).toEqual(journal.lease);
  });

  it('names a front.sock that is a regular file (FrontUnavailable), touching nothing, and serves once it is removed', async () => {
    const { world, v1, v1Pid } = await v1Serving();
    const journalBefore = readFileSync(journalPath(world.root, 'echo'), 'utf8');
    writeFileSync(world.frontSocket, 'not a socket\n');

    const run = await tryActivate(world);
    expect(run.code).toBe(1);
    expect(run.result).toMatchObject({ status: 'error', reason: 'FrontUnavailable' });
    expect(run.result.message).toContain(world.frontSocket);
    expect(statSync(world.frontSocket).isFile()).toBe(true);
    expect(readFileSync(journalPath(world.root, 'echo'), 'utf8')).toBe(journalBefore);
    expect(liveRunDirs(world)).toHaveLength(1);

    rmSync(world.frontSocket);
    const after = await restartAgent(world);
    expect(after.actions).toEqual([`Adopted the running ${v1} process (pid ${v1Pid}).`]);
    expect(after.served).toEqual({ ok: true, version: '1.0.0' });
  });

  it.skipIf(!canMountTmpfs())(
    'names a full disk at the journal write (JournalWriteFailed), leaves no temp file and the old journal, and recovers once there is space',
    async () => {
      const base = mkdtempSync(join(tmpdir(), 'agent-enospc-'));
      const root = join(base, 'root');
      mkdirSync(root);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', root]);
      cleanups.push(() => execFileSync('umount', ['-l', root]));
      const staging = join(base, 'staging');
      const engine = new NodeEngine({ root, stagingRoot: staging, logger: pino({ level: 'silent' }) });
      await engine.recover();
      const world: AgentWorld = {
        base,
        root,
        staging,
        engine,
        frontSocket: join(root, PLUGIN, 'front.sock'),
      };
      const { v1 } = await v1Serving(world);
      const journalBefore = readFileSync(journalPath(root, 'echo'), 'utf8');
      const filler = join(root, 'filler');
      fill(filler);
      const run = await tryActivate(world);
      expect(run.code).toBe(1);
      expect(run.result).toMatchObject({ status: 'error', reason: 'JournalWriteFailed' });
      expect(run.result.message).toMatch(/ENOSPC|no space/i);
      expect(readdirSync(join(root, PLUGIN)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      expect(readFileSync(journalPath(root, 'echo'), 'utf8')).toBe(journalBefore);

      rmSync(filler);
      const after = await restartAgent(world);
      expect(after.active).toBe(v1);
      expect(after.served).toEqual({ ok: true, version: '1.0.0' });
    },
  );

  it('prints a JSON error with a named reason when the plugin directory is not a directory (RecoveryFailed)', async () => {
    const world = await anAgent();
    engines.push(world.engine);
    mkdirSync(join(world.root, 'plugins'), { recursive: true });
    writeFileSync(join(world.root, PLUGIN), 'a file where the plugin directory belongs\n');
    await world.engine.close();

    const run = await tryActivate(world);
    expect(run.code).toBe(1);
    expect(run.result).toMatchObject({ status: 'error', reason: 'RecoveryFailed' });
    expect(run.result.message).toMatch(/ENOTDIR|not a directory/);
  });

  it('refuses a try-activate beside a live agent (RootLocked), touching nothing of what it serves', async () => {
    const { world, v1 } = await v1Serving();
    const live = new NodeEngine({
      root: world.root,
      stagingRoot: world.staging,
      logger: pino({ level: 'silent' }),
    });
    engines.push(live);
    await live.recover();
    const journalBefore = readFileSync(journalPath(world.root, 'echo'), 'utf8');
    const run = await tryActivate(world);
    expect(run.code).toBe(1);
    expect(run.result).toMatchObject({ status: 'error', reason: 'RootLocked' });
    expect(run.result.message).toMatch(/held by a live agent/);
    expect(readFileSync(journalPath(world.root, 'echo'), 'utf8')).toBe(journalBefore);
    expect(await live.activeRevision('echo')).toBe(v1);
    expect(await getVersion(world.frontSocket)).toEqual({ ok: true, version: '1.0.0' });
  });

  it('leaves nothing of its candidate in --root after a dry run: no release dir, no run dirs', async () => {
    const { world, v1 } = await v1Serving();
    const runDirsBefore = readdirSync(join(world.root, PLUGIN, 'run'));

    const run = await tryActivate(world);
    expect(run.result.status).toBe('probe_ok');
    expect(readdirSync(join(world.root, PLUGIN, 'releases'))).toEqual([v1]);
    expect(readdirSync(join(world.root, PLUGIN, 'run'))).toEqual(runDirsBefore);
    expect(liveRunDirs(world)).toHaveLength(1);
  });

  // Needs launchPlugin to hand the plugin a socket directory it owns (see docs/recovery.md and issue 12);
  // it runs as soon as PLUGIN_UNIX_SOCKET_DIR is no longer the root-owned run directory itself.
  it.skipIf(process.getuid?.() !== 0 || !socketDirIsSeparate())(
    'starts a runAsUser plugin that listens on a unix socket in the directory it was handed',
    async () => {
      const world = await anAgent();
      engines.push(world.engine);
      for (const dir of [world.base, world.root, world.staging]) {
        mkdirSync(dir, { recursive: true });
        chmodSync(dir, 0o755);
      }
      const v1 = await aCandidate(
        world,
        { version: '1.0.0', network: 'unix' },
        {
          ...fast,
          process: { runAsUser: 65534, runAsGroup: 65534 },
        },
      );
      chmodSync(v1.fixture.path, 0o755);
      const status = await world.engine.activate(v1.spec);
      expect(status, status.message).toMatchObject({ phase: 'Active', reason: 'Activated' });
      expect(await getVersion(world.frontSocket)).toEqual({ ok: true, version: '1.0.0' });
    },
  );
});

function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), 'tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe]);
    return true;
  } catch {
    console.warn('damaged-root: cannot mount a tmpfs here, skipping the full-disk test');
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

function socketDirIsSeparate(): boolean {
  const env = pluginEnvironment({
    runDir: '/r/run/x',
    entrypoint: '/bin/true',
    args: [],
    cwd: '/',
    env: {},
    handshake: {
      magicCookie: { key: 'K', value: 'V' },
      protocolVersions: [1],
      timeoutSeconds: 1,
      requiredCapabilities: [],
    },
    logger: pino({ level: 'silent' }),
  } as Parameters<typeof pluginEnvironment>[0]);
  return env.PLUGIN_UNIX_SOCKET_DIR !== '/r/run/x';
}

/** Fills the file system holding `file` until a write fails with ENOSPC. */
function fill(file: string) {
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeFileSync(file, chunk, { flag: 'a' });
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
  }
  try {
    for (;;) writeFileSync(file, Buffer.alloc(512), { flag: 'a' });
  } catch {
    // full to the last block
  }
}

async function waitUntil(check: () => boolean, timeoutMs = 5000) {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
