// Containment: a plugin, an adopted plugin, an orphan and an exec probe are stopped with every descendant,
// in a cgroup v2 leaf (where this machine allows one) and with the environment-marker fallback.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ActivationError } from '../../../../src/agent/errors.ts';
import {
  type ContainmentMode,
  ownCgroup,
  parseCpuMax,
  parseMemoryMax,
} from '../../../../src/agent/runtime/containment.ts';
import {
  adoptPlugin,
  type LaunchOptions,
  launchPlugin,
  type PluginProcessRecord,
  readProcessIdentity,
  runProbes,
  stopOrphan,
} from '../../../../src/agent/runtime/index.ts';
import { Handshake, Health } from '../../../../src/api/index.ts';
import {
  aShellPlugin,
  cgroupUnavailable,
  ESCAPE,
  killMarked,
  leftAfter,
  processesMarked,
  SETSID_CHILD,
} from '../../../support/contained-plugins.ts';

const AGENT = fileURLToPath(new URL('./agent-child.ts', import.meta.url));
const logger = pino({ level: 'silent' });
const noCgroup = cgroupUnavailable();
let root: string;
let runs = 0;
const marks: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pr-contain-'));
  if (noCgroup) console.warn(`cgroup containment tests skipped: ${noCgroup}`);
});
afterEach(() => {
  for (const mark of marks.splice(0)) killMarked(mark);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function plugin(name: string, body: string) {
  const p = await aShellPlugin(join(root, 'plugins'), `${name}-${++runs}`, body);
  marks.push(p.mark);
  return p;
}

function options(
  p: { entrypoint: string; dir: string },
  mode: ContainmentMode,
  more: Partial<LaunchOptions> = {},
): LaunchOptions {
  return {
    runDir: join(root, 'run', String(++runs)),
    entrypoint: p.entrypoint,
    args: [],
    cwd: p.dir,
    env: {},
    handshake: Handshake.parse({ timeoutSeconds: 5 }),
    logger,
    stopGraceMs: 300,
    containment: { mode },
    ...more,
  };
}

const modes: { mode: ContainmentMode; label: string; skip: boolean }[] = [
  { mode: 'cgroup', label: 'in a cgroup', skip: noCgroup !== undefined },
  { mode: 'marker', label: 'by its environment marker (no cgroup)', skip: false },
];

for (const { mode, label, skip } of modes) {
  describe.skipIf(skip)(`containment ${label}`, () => {
    it('stops a plugin together with a child that left its process group with setsid', async () => {
      const p = await plugin('setsid', SETSID_CHILD);
      const handle = await launchPlugin(options(p, mode));
      await expect.poll(() => processesMarked(p.mark).length).toBe(2);
      const { containment } = handle.record();
      expect(containment?.instance).toMatch(/.+-[0-9a-f]{12}$/);
      if (mode === 'cgroup') expect(existsSync(containment!.cgroup!)).toBe(true);
      else expect(containment?.cgroup).toBeUndefined();
      await handle.stop(300);
      expect(await leftAfter(p.mark)).toEqual([]);
      if (mode === 'cgroup') expect(existsSync(containment!.cgroup!)).toBe(false);
    });

    it('stops an adopted plugin (after an agent restart) with its escaped descendants', async () => {
      const p = await plugin('adopted', SETSID_CHILD);
      const first = await launchPlugin(options(p, mode));
      await expect.poll(() => processesMarked(p.mark).length).toBe(2);
      const record = JSON.parse(JSON.stringify(first.record())) as PluginProcessRecord;
      const adopted = adoptPlugin(record);
      expect(adopted).toBeDefined();
      await adopted!.stop(300);
      expect(await leftAfter(p.mark)).toEqual([]);
    });

    it('stops a plugin adopted from the record a SIGKILLed agent printed, with its escaped child', async () => {
      const p = await plugin('restart', SETSID_CHILD);
      const agent = spawn(
        process.execPath,
        [AGENT, join(root, 'run', `restart-${++runs}`), p.entrypoint, p.dir],
        {
          stdio: ['ignore', 'pipe', 'ignore'],
          env: { ...process.env, PLUGIN_RELEASE_CONTAINMENT: mode },
        },
      );
      const line = await new Promise<string>((resolve) => {
        let out = '';
        agent.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
      });
      const gone = new Promise((resolve) => agent.once('exit', resolve));
      agent.kill('SIGKILL');
      await gone;
      const record = JSON.parse(line) as PluginProcessRecord;
      expect(record.containment?.cgroup !== undefined).toBe(mode === 'cgroup');
      expect(processesMarked(p.mark)).toHaveLength(2);
      const adopted = adoptPlugin(record);
      expect(adopted).toBeDefined();
      await adopted!.stop(300);
      expect(await leftAfter(p.mark)).toEqual([]);
    });

    it('kills what a plugin left running when the plugin itself exits', async () => {
      const p = await plugin('exits', `${ESCAPE}\necho "$HANDSHAKE"\nsleep 0.3\nexit 3`);
      const handle = await launchPlugin(options(p, mode));
      expect(await handle.exited).toEqual({ code: 3, signal: null });
      expect(await leftAfter(p.mark)).toEqual([]);
    });

    it('kills the escaped children of a candidate that fails its handshake', async () => {
      const p = await plugin('bad', `${ESCAPE}\necho "1|1|carrier-pigeon|x|grpc"\nexec sleep 1000`);
      const error = await launchPlugin(options(p, mode)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ActivationError);
      expect((error as ActivationError).reason).toBe('HandshakeInvalid');
      expect(await leftAfter(p.mark)).toEqual([]);
    });

    it('finds and stops a candidate an agent SIGKILLed right after the spawn, before pid.json', async () => {
      const p = await plugin('window', SETSID_CHILD);
      const runDir = join(root, 'run', `window-${++runs}`);
      const agent = spawn(process.execPath, [AGENT, runDir, p.entrypoint, p.dir], {
        stdio: 'ignore',
        env: {
          ...process.env,
          PLUGIN_RELEASE_CRASH_AT: 'launch:spawned',
          PLUGIN_RELEASE_CONTAINMENT: mode,
        },
      });
      const exit = await new Promise<string | null>((resolve) => agent.once('exit', (_c, s) => resolve(s)));
      expect(exit).toBe('SIGKILL');
      expect(readProcessIdentity(runDir)).toBeUndefined();
      await expect.poll(() => processesMarked(p.mark).length).toBe(2);
      expect(await stopOrphan(runDir, 300)).toBe(true);
      expect(await leftAfter(p.mark)).toEqual([]);
      expect(await stopOrphan(runDir, 300)).toBe(false);
    });

    it('ends an exec probe whose background child holds stderr as soon as the probe exits', async () => {
      // The probe: background children inherit its stderr pipe and outlive its main process.
      const probe = await plugin('probe-bg', `${ESCAPE}\nsleep 1000 &\nexit 0`);
      const health = Health.parse({
        probes: [{ exec: { command: [probe.entrypoint] }, timeoutSeconds: 5 }],
      });
      const started = Date.now();
      await runProbes({ coreProtocol: 1, appProtocol: 1, network: 'tcp', address: '127.0.0.1:1' }, health, {
        containment: { mode },
      });
      expect(Date.now() - started).toBeLessThan(2000);
      expect(await leftAfter(probe.mark)).toEqual([]);
    });

    it('fails an exec probe that hangs with an escaped child within its timeout, leaving nothing', async () => {
      const probe = await plugin('probe-hang', `${ESCAPE}\necho waiting >&2\nexec sleep 1000`);
      const health = Health.parse({
        probes: [{ exec: { command: [probe.entrypoint] }, timeoutSeconds: 1, failureThreshold: 1 }],
      });
      const started = Date.now();
      const error = await runProbes(
        { coreProtocol: 1, appProtocol: 1, network: 'tcp', address: '127.0.0.1:1' },
        health,
        { containment: { mode } },
      ).catch((e: unknown) => e);
      expect((error as ActivationError).reason).toBe('ProbeFailed');
      expect((error as Error).message).toMatch(/timed out after 1s/);
      expect(Date.now() - started).toBeLessThan(2500);
      expect(await leftAfter(probe.mark)).toEqual([]);
    });
  });
}

describe('resource limits', () => {
  const parent = ownCgroup();
  const controllers = parent ? readFileSync(join(parent, 'cgroup.controllers'), 'utf8').split(/\s+/) : [];
  const limitable = !noCgroup && controllers.includes('memory') && controllers.includes('cpu');
  if (!noCgroup && !limitable) {
    console.warn(`cgroup limits cannot be applied here: ${parent} offers only "${controllers.join(' ')}"`);
  }

  it('reads memory and CPU quantities as the kernel wants them', () => {
    expect(parseMemoryMax('256Mi')).toBe(256 * 2 ** 20);
    expect(parseMemoryMax('1G')).toBe(1e9);
    expect(parseMemoryMax('12.5Mi')).toBeUndefined();
    expect(parseCpuMax('500m')).toBe('50000 100000');
    expect(parseCpuMax('2')).toBe('200000 100000');
    expect(parseCpuMax('1m')).toBe('1000 100000');
    expect(parseCpuMax('-1')).toBeUndefined();
  });

  it('says that limits were not applied when the plugin has no cgroup, and runs it anyway', async () => {
    const p = await plugin('limits-marker', SETSID_CHILD);
    const handle = await launchPlugin(options(p, 'marker', { resources: { memoryMax: '64Mi' } }));
    expect(handle.unappliedLimits).toMatch(/^Resource limits were not applied: .*no cgroup/);
    await handle.stop(300);
    expect(await leftAfter(p.mark)).toEqual([]);
  });

  it.skipIf(noCgroup !== undefined || limitable)(
    'names the missing controller when the cgroup cannot take the limits',
    async () => {
      const p = await plugin('limits-missing', SETSID_CHILD);
      const handle = await launchPlugin(
        options(p, 'cgroup', { resources: { memoryMax: '64Mi', cpuMax: '500m' } }),
      );
      expect(handle.unappliedLimits).toMatch(/memory\.max could not be set: the memory controller/);
      expect(handle.unappliedLimits).toMatch(/cpu\.max could not be set: the cpu controller/);
      await handle.stop(300);
      expect(await leftAfter(p.mark)).toEqual([]);
    },
  );

  it.skipIf(!limitable)('writes memory.max and cpu.max into the plugin cgroup before it runs', async () => {
    const p = await plugin('limits', SETSID_CHILD);
    const handle = await launchPlugin(
      options(p, 'cgroup', { resources: { memoryMax: '64Mi', cpuMax: '500m' } }),
    );
    const cgroup = handle.record().containment!.cgroup!;
    expect(handle.unappliedLimits).toBeUndefined();
    expect(readFileSync(join(cgroup, 'memory.max'), 'utf8').trim()).toBe(String(64 * 2 ** 20));
    expect(readFileSync(join(cgroup, 'cpu.max'), 'utf8').trim()).toBe('50000 100000');
    await handle.stop(300);
    expect(await leftAfter(p.mark)).toEqual([]);
  });
});
