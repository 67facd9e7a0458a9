// Stage against an attacker (docs/security.md): hostile activation names, planted `.complete`
// records, and staging trees with absolute symlinks, hard links, devices, FIFOs, sockets and names
// that are not UTF-8. Each case ends in its named reason with nothing outside the agent root changed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import {
  chmod,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { stage } from '../../../src/agent/actions/stage.ts';
import { digestPath } from '../../../src/agent/digest.ts';
import { ActivationError } from '../../../src/agent/errors.ts';
import {
  isComplete,
  loadReleaseRecord,
  newRunDir,
  pluginDir,
  releaseDir,
  verifyRelease,
} from '../../../src/agent/store.ts';
import { PluginActivationSpec, type PluginActivationSpecInput } from '../../../src/api/index.ts';
import { main as digestCli } from '../../../src/cli/digest.ts';

interface World {
  base: string;
  staging: string;
  root: string;
  artifact: string;
  config: string;
  /** A directory outside the agent root and the staging root that an attacker aims at. */
  victim: string;
}

async function aWorld(): Promise<World> {
  const base = await mkdtemp(join(tmpdir(), 'stage-sec-'));
  const staging = join(base, 'staging');
  const artifact = join(staging, 'echo', '2.0.0');
  await mkdir(artifact, { recursive: true });
  await writeFile(join(artifact, 'plugin'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const config = join(staging, 'echo.conf');
  await writeFile(config, 'greeting: hello\n');
  const victim = join(base, 'victim');
  await mkdir(victim);
  await writeFile(join(victim, 'precious'), 'do not delete\n');
  const root = join(base, 'root');
  await mkdir(root);
  return { base, staging, root, artifact, config, victim };
}

/** A spec that passed the schema; `revision`/`rollbackTo` may then be forced past it, as an attacker with a patched controller could. */
async function specFor(w: World, overrides: Partial<PluginActivationSpecInput> = {}) {
  return PluginActivationSpec.parse({
    release: { name: 'echo' },
    nodeName: 'node-1',
    plugin: 'echo',
    version: '2.0.0',
    revision: 'rev-new',
    // Digests only of what the overrides leave alone: a tree with a device in it has none.
    artifact: overrides.artifact ?? {
      path: w.artifact,
      digest: await digestPath(w.artifact),
      entrypoint: 'plugin',
    },
    config: overrides.config ?? { path: w.config, digest: await digestPath(w.config) },
    ...overrides,
  });
}

/** Everything under `dir` except the agent root: names (as bytes), kinds, modes, sizes, contents, link targets. */
function snapshotOutside(dir: string, root: string): string[] {
  const out: string[] = [];
  const walk = (path: Buffer) => {
    for (const name of readdirSync(path, { encoding: 'buffer' })) {
      const full = Buffer.concat([path, Buffer.from('/'), name]);
      if (full.toString() === root) continue;
      const st = lstatSync(full);
      const id = `${full.toString('hex')} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs}`;
      if (st.isSymbolicLink())
        out.push(`${id} -> ${readlinkSync(full, { encoding: 'buffer' }).toString('hex')}`);
      else if (st.isFile())
        out.push(`${id} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`);
      else out.push(id);
      if (st.isDirectory()) walk(full);
    }
  };
  walk(Buffer.from(dir));
  return out.sort();
}

async function refusal(w: World, spec: PluginActivationSpec): Promise<ActivationError> {
  const error = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ActivationError);
  return error as ActivationError;
}

const asRoot = process.getuid?.() === 0;

describe('stage refuses hostile revisions (confinement at the point of use)', () => {
  const hostile = [
    '../../../victim',
    '../../../../victim',
    '..',
    '.',
    'a/../../../../victim',
    '/abs/victim',
    'Rev',
    'rev\nnew',
  ];
  it.each(hostile)(
    'refuses revision %j with InvalidRevision and changes nothing outside the root',
    async (revision) => {
      const w = await aWorld();
      const before = snapshotOutside(w.base, w.root);
      const spec = { ...(await specFor(w)), revision };
      const error = await refusal(w, spec);
      expect(error.reason).toBe('InvalidRevision');
      expect(snapshotOutside(w.base, w.root)).toEqual(before);
      expect(await readFile(join(w.victim, 'precious'), 'utf8')).toBe('do not delete\n');
    },
  );

  it.each(hostile)(
    'refuses rollbackTo.revision %j with InvalidRevision and changes nothing outside the root',
    async (revision) => {
      const w = await aWorld();
      // The attacker's planted record, where a traversal would find it.
      await writeFile(
        join(w.victim, '.complete'),
        JSON.stringify({ revision, entrypoint: '/bin/sh', args: ['-c', 'touch /tmp/pwned'] }),
      );
      const before = snapshotOutside(w.base, w.root);
      const spec = { ...(await specFor(w)), rollbackTo: { revision } };
      const error = await refusal(w, spec);
      expect(error.reason).toBe('InvalidRevision');
      expect(snapshotOutside(w.base, w.root)).toEqual(before);
    },
  );

  it('refuses the same names in the store helpers themselves', () => {
    const root = '/var/lib/plugin-release';
    const reasonOf = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        return (error as ActivationError).reason;
      }
      return 'accepted';
    };
    expect(reasonOf(() => releaseDir(root, 'echo', '../../../../victim'))).toBe('InvalidRevision');
    expect(reasonOf(() => releaseDir(root, 'echo', '..'))).toBe('InvalidRevision');
    expect(reasonOf(() => pluginDir(root, '../../etc'))).toBe('PathOutsideRoot');
    expect(reasonOf(() => pluginDir(root, '..'))).toBe('PathOutsideRoot');
    expect(reasonOf(() => releaseDir(root, 'echo', '3f2a9c0d1e4b'))).toBe('accepted');
  });

  it('creates run directories only under the plugin, for a safe revision only', async () => {
    const w = await aWorld();
    const before = snapshotOutside(w.base, w.root);
    const error = await newRunDir(w.root, 'echo', '../../../../victim').catch((e: ActivationError) => e);
    expect((error as ActivationError).reason).toBe('InvalidRevision');
    expect(snapshotOutside(w.base, w.root)).toEqual(before);
  });
});

describe('stage trusts a .complete record only inside its own releases directory', () => {
  /** Stages rev-old for real, so the tests can tamper with a genuine kept release. */
  async function aKeptRelease(w: World) {
    const spec = await specFor(w, { revision: 'rev-old' });
    const record = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() });
    return { spec, record, dir: releaseDir(w.root, 'echo', 'rev-old') };
  }
  const rollbackTo = async (w: World) => ({
    ...(await specFor(w, { revision: 'rev-new' })),
    rollbackTo: { revision: 'rev-old' },
  });

  const cases: { name: string; tamper: (w: World, dir: string) => Promise<void>; reason: string }[] = [
    {
      name: 'a planted record whose entrypoint is outside its release',
      tamper: async (w, dir) => {
        await writeFile(join(w.victim, 'evil.sh'), '#!/bin/sh\ntouch /tmp/pwned\n', { mode: 0o755 });
        const record = JSON.parse(await readFile(join(dir, '.complete'), 'utf8'));
        await writeFile(
          join(dir, '.complete'),
          JSON.stringify({ ...record, entrypoint: join(w.victim, 'evil.sh') }),
        );
      },
      reason: 'PathOutsideRoot',
    },
    {
      name: 'a record whose entrypoint leads out through a symlink',
      tamper: async (w, dir) => {
        await writeFile(join(w.victim, 'evil.sh'), '#!/bin/sh\n', { mode: 0o755 });
        await symlink(join(w.victim, 'evil.sh'), join(dir, 'artifact', 'evil'));
        const record = JSON.parse(await readFile(join(dir, '.complete'), 'utf8'));
        await writeFile(
          join(dir, '.complete'),
          JSON.stringify({ ...record, entrypoint: join(dir, 'artifact', 'evil') }),
        );
      },
      reason: 'PathOutsideRoot',
    },
    {
      name: 'a release directory that is a symlink to a planted one elsewhere',
      tamper: async (w, dir) => {
        const planted = join(w.victim, 'planted');
        await mkdir(planted);
        spawnSync('cp', ['-a', `${dir}/.`, planted]);
        spawnSync('rm', ['-rf', dir]);
        await symlink(planted, dir);
      },
      reason: 'PathOutsideRoot',
    },
    {
      name: 'a kept artifact rewritten after it was staged',
      tamper: async (_w, dir) => {
        await writeFile(join(dir, 'artifact', 'plugin'), '#!/bin/sh\ntouch /tmp/pwned\n');
      },
      reason: 'SnapshotCorrupt',
    },
    {
      name: 'a kept config rewritten after it was staged',
      tamper: async (_w, dir) => {
        await writeFile(join(dir, 'config'), 'greeting: pwned\n');
      },
      reason: 'SnapshotCorrupt',
    },
    {
      name: 'a record that is not a release record',
      tamper: async (_w, dir) => {
        await writeFile(join(dir, '.complete'), '{"entrypoint": "/bin/sh"}');
      },
      reason: 'SnapshotCorrupt',
    },
    {
      name: 'a record that names another revision',
      tamper: async (_w, dir) => {
        const record = JSON.parse(await readFile(join(dir, '.complete'), 'utf8'));
        await writeFile(join(dir, '.complete'), JSON.stringify({ ...record, revision: 'rev-other' }));
      },
      reason: 'SnapshotCorrupt',
    },
    {
      name: 'a .complete that is a symlink to a record elsewhere',
      tamper: async (w, dir) => {
        const record = await readFile(join(dir, '.complete'), 'utf8');
        await writeFile(join(w.victim, 'record.json'), record);
        spawnSync('rm', [join(dir, '.complete')]);
        await symlink(join(w.victim, 'record.json'), join(dir, '.complete'));
      },
      reason: 'SnapshotCorrupt',
    },
  ];

  it.each(cases)('refuses a rollbackTo onto $name with $reason', async ({ tamper, reason }) => {
    const w = await aWorld();
    const kept = await aKeptRelease(w);
    await tamper(w, kept.dir);
    const before = snapshotOutside(w.base, w.root);
    const error = await refusal(w, await rollbackTo(w));
    expect(error.reason).toBe(reason);
    expect(error.message.length).toBeGreaterThan(20);
    expect(snapshotOutside(w.base, w.root)).toEqual(before);
    // The store will not hand it to anything else either (recovery, rollback) once it is checked.
    const checked = loadReleaseRecord(w.root, 'echo', 'rev-old').then(async (record) => {
      await verifyRelease(w.root, 'echo', record!);
      return record;
    });
    await expect(checked).rejects.toMatchObject({ reason });
  });

  it('restores a kept release whose copy still matches its record', async () => {
    const w = await aWorld();
    const kept = await aKeptRelease(w);
    const restored = await stage({
      root: w.root,
      stagingRoot: w.staging,
      spec: await rollbackTo(w),
      now: new Date(),
    });
    expect(restored).toEqual(kept.record);
    expect(restored).toMatchObject({ digestFormat: 2, configDigest: kept.spec.config?.digest });
  });

  it('refuses the same tampering when a revision is staged again', async () => {
    const w = await aWorld();
    const kept = await aKeptRelease(w);
    await writeFile(join(kept.dir, 'artifact', 'plugin'), '#!/bin/sh\ntouch /tmp/pwned\n');
    const error = await refusal(w, kept.spec);
    expect(error.reason).toBe('SnapshotCorrupt');
  });
});

describe('stage refuses staging trees that would pull in what nobody verified', () => {
  const cases: {
    name: string;
    arrange: (w: World) => Promise<Partial<PluginActivationSpecInput> | undefined>;
    reason: string;
    message: RegExp;
    rootOnly?: boolean;
  }[] = [
    {
      name: 'an absolute symlink to a file inside the artifact',
      arrange: async (w) => {
        await symlink(join(w.artifact, 'plugin'), join(w.artifact, 'run'));
        return undefined;
      },
      reason: 'UnsafeSymlink',
      message: /run is absolute/,
    },
    {
      name: 'an entrypoint that is an absolute symlink into the staging source',
      arrange: async (w) => {
        await mkdir(join(w.artifact, 'bin'));
        await symlink(join(w.artifact, 'plugin'), join(w.artifact, 'bin', 'entry'));
        return {
          artifact: { path: w.artifact, digest: await digestPath(w.artifact), entrypoint: 'bin/entry' },
        };
      },
      reason: 'UnsafeSymlink',
      message: /is absolute/,
    },
    {
      name: 'a relative symlink that climbs out and back in',
      arrange: async (w) => {
        await symlink('../2.0.0/plugin', join(w.artifact, 'again'));
        return undefined;
      },
      reason: 'UnsafeSymlink',
      message: /outside the artifact/,
    },
    {
      name: 'a hard link to a file outside the staging root',
      arrange: async (w) => {
        await writeFile(join(w.victim, 'secret'), 'root only\n', { mode: 0o600 });
        await link(join(w.victim, 'secret'), join(w.artifact, 'secret'));
        return undefined;
      },
      reason: 'HardLinkRefused',
      message: /secret is a hard link/,
    },
    {
      name: 'a file artifact that is itself a hard link',
      arrange: async (w) => {
        await writeFile(join(w.victim, 'plugin'), '#!/bin/sh\n', { mode: 0o755 });
        const file = join(w.staging, 'plugin-file');
        await link(join(w.victim, 'plugin'), file);
        return { artifact: { path: file, digest: await digestPath(file) } };
      },
      reason: 'HardLinkRefused',
      message: /hard link/,
    },
    {
      name: 'a config that is a hard link',
      arrange: async (w) => {
        await writeFile(join(w.victim, 'shadow'), 'root:x:\n');
        const conf = join(w.staging, 'linked.conf');
        await link(join(w.victim, 'shadow'), conf);
        return { config: { path: conf, digest: await digestPath(conf) } };
      },
      reason: 'HardLinkRefused',
      message: /config .*linked\.conf is a hard link/,
    },
    {
      name: 'a character device in the artifact',
      arrange: async (w) => {
        const made = spawnSync('mknod', [join(w.artifact, 'null'), 'c', '1', '3']);
        expect(made.status).toBe(0);
        return { artifact: { path: w.artifact, digest: `sha256:${'0'.repeat(64)}`, entrypoint: 'plugin' } };
      },
      reason: 'UnsupportedFileType',
      message: /null is a character device/,
      rootOnly: true,
    },
    {
      name: 'a FIFO in the artifact',
      arrange: async (w) => {
        expect(spawnSync('mkfifo', [join(w.artifact, 'pipe')]).status).toBe(0);
        return { artifact: { path: w.artifact, digest: `sha256:${'0'.repeat(64)}`, entrypoint: 'plugin' } };
      },
      reason: 'UnsupportedFileType',
      message: /pipe is a FIFO/,
    },
    {
      name: 'a socket in the artifact',
      arrange: async (w) => {
        // A socket file outlives the process that bound it.
        const bind = `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(join(w.artifact, 'sock'))})`;
        expect(spawnSync('python3', ['-c', bind]).status).toBe(0);
        return { artifact: { path: w.artifact, digest: `sha256:${'0'.repeat(64)}`, entrypoint: 'plugin' } };
      },
      reason: 'UnsupportedFileType',
      message: /sock is a socket/,
    },
    {
      name: 'a FIFO as the config',
      arrange: async (w) => {
        const fifo = join(w.staging, 'fifo.conf');
        expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
        return { config: { path: fifo, digest: `sha256:${'0'.repeat(64)}` } };
      },
      reason: 'UnsupportedFileType',
      message: /fifo\.conf is a FIFO/,
    },
  ];

  it.each(cases)('refuses $name with $reason', async ({ arrange, reason, message, rootOnly }) => {
    if (rootOnly && !asRoot) {
      console.warn('skipped: creating a device node needs root (mknod)');
      return;
    }
    const w = await aWorld();
    const overrides = await arrange(w);
    const spec = await specFor(w, overrides ?? {});
    const before = snapshotOutside(w.base, w.root);
    const error = await refusal(w, spec);
    expect(error.reason).toBe(reason);
    expect(error.message).toMatch(message);
    expect(snapshotOutside(w.base, w.root)).toEqual(before);
    expect(await isComplete(w.root, 'echo', spec.revision)).toBe(false);
  });
});

describe('stage keeps what is safe', () => {
  afterEach(() => vi.restoreAllMocks());

  it('keeps a relative symlink that stays inside the artifact', async () => {
    const w = await aWorld();
    await mkdir(join(w.artifact, 'bin'));
    await symlink('../plugin', join(w.artifact, 'bin', 'entry'));
    const spec = await specFor(w, {
      artifact: { path: w.artifact, digest: await digestPath(w.artifact), entrypoint: 'bin/entry' },
    });
    const record = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() });
    expect(record.entrypoint).toBe(join(releaseDir(w.root, 'echo', 'rev-new'), 'artifact/bin/entry'));
    expect(readlinkSync(record.entrypoint)).toBe('../plugin');
  });

  it('stages a name that is not UTF-8 under its own bytes, with the digest `plugin-release digest` prints', async () => {
    const w = await aWorld();
    const name = Buffer.from([0x66, 0xff, 0xfe, 0x20, 0x0a, 0x6f]); // "f\xff\xfe \no"
    await writeFile(Buffer.concat([Buffer.from(`${w.artifact}/`), name]), 'odd bytes\n');
    const printed: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
    expect(await digestCli([w.artifact])).toBe(0);
    const spec = await specFor(w, {
      artifact: { path: w.artifact, digest: printed[0]!, entrypoint: 'plugin' },
    });
    const record = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() });
    const copied = await readdir(join(releaseDir(w.root, 'echo', 'rev-new'), 'artifact'), {
      encoding: 'buffer',
    });
    expect(copied.some((n) => n.equals(name))).toBe(true);
    expect(record.artifactDigest).toBe(printed[0]);
  });

  it('drops setuid and setgid bits from the copy', async () => {
    const w = await aWorld();
    await chmod(join(w.artifact, 'plugin'), 0o6755);
    const spec = await specFor(w);
    const record = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() });
    expect((await stat(record.entrypoint)).mode & 0o7777).toBe(0o755);
  });

  it('copies a file artifact with one link, keeping its execute bit', async () => {
    const w = await aWorld();
    const file = join(w.staging, 'plugin-file');
    await writeFile(file, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const spec = await specFor(w, { artifact: { path: file, digest: await digestPath(file) } });
    const record = await stage({ root: w.root, stagingRoot: w.staging, spec, now: new Date() });
    expect((await lstat(record.entrypoint)).isFile()).toBe(true);
    expect((await stat(record.entrypoint)).mode & 0o111).not.toBe(0);
  });
});
