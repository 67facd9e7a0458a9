// The process runtime against real fixture processes: handshake, contract, probes, stop and adopt.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActivationError } from '../../../../src/agent/errors.ts';
import {
  adoptPlugin,
  checkContract,
  type LaunchOptions,
  launchPlugin,
  type PluginProcess,
  readProcessIdentity,
  runProbes,
} from '../../../../src/agent/runtime/index.ts';
import { Handshake, type HandshakeResult, Health, type ProbeResult } from '../../../../src/api/index.ts';
import { FIXTURE_PROGRAM, type FixtureSettings, fixtureEnv, stageFixture } from '../../../support/plugins.ts';

const logger = pino({ level: 'silent' });
let root: string;
let runs = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pr-runtime-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function optionsFor(settings: FixtureSettings, handshake: object = {}): Promise<LaunchOptions> {
  const fixture = await stageFixture(join(root, 'staging'), settings);
  return {
    runDir: join(root, 'run', String(++runs)),
    entrypoint: fixture.entrypointPath,
    args: [],
    cwd: fixture.path,
    env: {},
    handshake: Handshake.parse({ timeoutSeconds: 5, ...handshake }),
    logger,
    stopGraceMs: 500,
  };
}

async function launch(settings: FixtureSettings = {}, handshake: object = {}): Promise<PluginProcess> {
  return launchPlugin(await optionsFor(settings, handshake));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function rejection(promise: Promise<unknown>): Promise<ActivationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ActivationError);
  return error as ActivationError;
}

const grpcProbe = { grpc: {}, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 };

describe('launchPlugin', () => {
  it('starts a good plugin and reads its go-plugin handshake', async () => {
    const plugin = await launch({ version: '1.2.3' }, { protocolVersions: [1, 2] });
    try {
      expect(plugin.handshake).toMatchObject({ coreProtocol: 1, appProtocol: 1, network: 'tcp' });
      expect(plugin.handshake.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(plugin.startTime).toMatch(/^\d+$/);
      expect(alive(plugin.pid)).toBe(true);
      expect(plugin.stderrTail().join('\n')).toContain('fixture echo 1.2.3 starting');
    } finally {
      await plugin.stop(1000);
    }
    expect(alive(plugin.pid)).toBe(false);
  });

  it('runs the fixture program itself as an entrypoint through its node shebang', async () => {
    const opts = await optionsFor({});
    const plugin = await launchPlugin({
      ...opts,
      entrypoint: FIXTURE_PROGRAM,
      env: { ...fixtureEnv({ version: '9.9.9' }), PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
    });
    await plugin.stop(1000);
    expect(plugin.stderrTail().join('\n')).toContain('fixture echo 9.9.9 starting');
  });

  it('negotiates the highest protocol version both sides support', async () => {
    const plugin = await launch({ protocols: [1, 2, 3] }, { protocolVersions: [2, 3, 4] });
    await plugin.stop(1000);
    expect(plugin.handshake.appProtocol).toBe(3);
  });

  it('hosts a plugin that announces a unix socket', async () => {
    const plugin = await launch({ network: 'unix' });
    try {
      expect(plugin.handshake.network).toBe('unix');
      await runProbes(plugin.handshake, Health.parse({ probes: [grpcProbe, { httpGet: {} }] }), {
        process: plugin,
      });
    } finally {
      await plugin.stop(1000);
    }
  });

  it.each([
    ['wrong-cookie', 'PluginExited', 'This binary is a plugin'],
    ['bad-handshake', 'HandshakeInvalid', 'starting in mode bad-handshake'],
    ['incompatible-protocol', 'ProtocolVersionMismatch', 'starting in mode incompatible-protocol'],
    ['hang-before-handshake', 'HandshakeTimeout', 'SIGTERM ignored'],
    ['flood-stdout', 'HandshakeInvalid', 'flooding stdout'],
  ] as const)('rejects a %s plugin with %s, kills it and quotes its stderr', async (mode, reason, stderr) => {
    const opts = await optionsFor({ mode }, { timeoutSeconds: 1 });
    const error = await rejection(launchPlugin(opts));
    expect(error.reason).toBe(reason);
    expect(error.message).toContain(stderr);
    const identity = readProcessIdentity(opts.runDir);
    expect(identity).toBeDefined();
    expect(alive(identity!.pid)).toBe(false);
  });

  it('times the handshake out by the injected clock', async () => {
    const opts = await optionsFor({ mode: 'hang-before-handshake' }, { timeoutSeconds: 300 });
    // The first reading sets the deadline; every later one is past it, so the test never waits 300 s.
    let readings = 0;
    const clock = { now: () => new Date(readings++ === 0 ? 0 : 301_000) };
    const error = await rejection(launchPlugin({ ...opts, clock }));
    expect(error.reason).toBe('HandshakeTimeout');
    expect(error.message).toContain('within 300s');
  });

  it('rejects an entrypoint that cannot be executed with SpawnFailed', async () => {
    const opts = await optionsFor({});
    const error = await rejection(launchPlugin({ ...opts, entrypoint: join(opts.cwd, 'plugin.missing') }));
    expect(error.reason).toBe('SpawnFailed');
  });

  it('rejects a run directory it cannot create with SpawnFailed', async () => {
    const opts = await optionsFor({});
    const error = await rejection(launchPlugin({ ...opts, runDir: join(opts.entrypoint, 'run') }));
    expect(error.reason).toBe('SpawnFailed');
  });

  it('reports a plugin that exits right after its handshake as PluginExited', async () => {
    const opts = await optionsFor({ mode: 'exit-after-handshake' });
    const error = await rejection(
      launchPlugin(opts).then((plugin) =>
        runProbes(plugin.handshake, Health.parse({ probes: [grpcProbe] }), { process: plugin }),
      ),
    );
    expect(error.reason).toBe('PluginExited');
    expect(error.message).toContain('exiting right after the handshake');
    expect(alive(readProcessIdentity(opts.runDir)!.pid)).toBe(false);
  });

  it('kills the plugin when the launch is aborted', async () => {
    const opts = await optionsFor({ mode: 'hang-before-handshake' }, { timeoutSeconds: 30 });
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('shutting down')), 300);
    await expect(launchPlugin({ ...opts, signal: abort.signal })).rejects.toThrow('shutting down');
    expect(alive(readProcessIdentity(opts.runDir)!.pid)).toBe(false);
  });
});

describe('checkContract', () => {
  let plugin: PluginProcess;
  beforeAll(async () => {
    plugin = await launch({ version: '2.0.0', capabilities: ['echo', 'reverse'] });
  });
  afterAll(async () => {
    await plugin.stop(1000);
  });
  const expectation = { plugin: 'echo', version: '2.0.0', requiredCapabilities: ['echo'] };

  it('returns what a matching plugin reports', async () => {
    await expect(checkContract(plugin.handshake, expectation, 2000)).resolves.toEqual({
      pluginName: 'echo',
      pluginVersion: '2.0.0',
      capabilities: ['echo', 'reverse'],
    });
  });

  it('rejects a plugin reporting another version with ContractMismatch', async () => {
    const error = await rejection(
      checkContract(plugin.handshake, { ...expectation, version: '2.0.1' }, 2000),
    );
    expect(error.reason).toBe('ContractMismatch');
  });

  it('names every missing capability with MissingCapability', async () => {
    const error = await rejection(
      checkContract(
        plugin.handshake,
        { ...expectation, requiredCapabilities: ['echo', 'sign', 'seal'] },
        2000,
      ),
    );
    expect(error.reason).toBe('MissingCapability');
    expect(error.message).toContain('sign, seal');
  });

  it('rejects a missing-capability plugin', async () => {
    const candidate = await launch({ mode: 'missing-capability' });
    try {
      const error = await rejection(
        checkContract(candidate.handshake, { ...expectation, version: '1.0.0' }, 2000),
      );
      expect(error.reason).toBe('MissingCapability');
    } finally {
      await candidate.stop(1000);
    }
  });

  it('rejects an unreachable plugin with ContractMismatch', async () => {
    const gone: HandshakeResult = { ...plugin.handshake, address: '127.0.0.1:1' };
    const error = await rejection(checkContract(gone, expectation, 1000));
    expect(error.reason).toBe('ContractMismatch');
  });
});

describe('runProbes', () => {
  it('passes a good plugin on every probe kind and reports each result', async () => {
    const plugin = await launch();
    const results: ProbeResult[] = [];
    try {
      const health = Health.parse({
        probes: [
          grpcProbe,
          { name: 'any-service', grpc: { service: '' } },
          { httpGet: { path: '/healthz' } },
          { tcpSocket: {} },
          { exec: { command: [process.execPath, '-e', 'process.exit(process.env.PLUGIN_ADDRESS ? 0 : 1)'] } },
        ],
      });
      await runProbes(plugin.handshake, health, { process: plugin, onResult: (r) => results.push(r) });
    } finally {
      await plugin.stop(1000);
    }
    expect(new Set(results.map((r) => r.probe))).toEqual(
      new Set(['grpc', 'any-service', 'httpGet', 'tcpSocket', 'exec']),
    );
    expect(results.every((r) => r.success)).toBe(true);
  });

  it('resolves at once without probes', async () => {
    await runProbes(
      { coreProtocol: 1, appProtocol: 1, network: 'tcp', address: '127.0.0.1:1' },
      Health.parse({}),
      {},
    );
  });

  it('rejects a never-healthy plugin with ProbeFailed naming the probe and its last error', async () => {
    const plugin = await launch({ mode: 'never-healthy' });
    try {
      const error = await rejection(
        runProbes(plugin.handshake, Health.parse({ probes: [{ ...grpcProbe, name: 'liveness' }] }), {
          process: plugin,
        }),
      );
      expect(error.reason).toBe('ProbeFailed');
      expect(error.message).toContain('liveness');
      expect(error.message).toContain('NOT_SERVING');
      expect(error.message).toContain('starting in mode never-healthy');
    } finally {
      await plugin.stop(1000);
    }
  });

  it('rejects a plugin that turns unhealthy during the soak', async () => {
    const plugin = await launch({ mode: 'healthy-then-fail', failAfterMs: 1500 });
    try {
      const health = Health.parse({
        probes: [{ httpGet: {}, periodSeconds: 1, failureThreshold: 1 }],
        soakSeconds: 20,
      });
      const error = await rejection(runProbes(plugin.handshake, health, { process: plugin }));
      expect(error.reason).toBe('ProbeFailed');
      expect(error.message).toContain('503');
    } finally {
      await plugin.stop(1000);
    }
  });

  it('fails a verification window when the plugin turns unhealthy within it', async () => {
    const plugin = await launch({ mode: 'healthy-then-fail', failAfterMs: 1000 });
    try {
      const health = Health.parse({ probes: [{ ...grpcProbe, failureThreshold: 1 }] });
      const error = await rejection(
        runProbes(plugin.handshake, health, { process: plugin, until: 'window', windowMs: 20_000 }),
      );
      expect(error.reason).toBe('ProbeFailed');
    } finally {
      await plugin.stop(1000);
    }
  });

  it('passes a verification window the plugin stays healthy through', async () => {
    const plugin = await launch();
    const results: ProbeResult[] = [];
    try {
      const health = Health.parse({ probes: [grpcProbe] });
      await runProbes(plugin.handshake, health, {
        process: plugin,
        until: 'window',
        windowMs: 1500,
        onResult: (r) => results.push(r),
      });
    } finally {
      await plugin.stop(1000);
    }
    expect(results.length).toBeGreaterThan(0);
  });

  it('rejects with PluginExited when the plugin dies during a verification window without probes', async () => {
    const plugin = await launch();
    setTimeout(() => process.kill(plugin.pid, 'SIGKILL'), 200);
    const error = await rejection(
      runProbes(plugin.handshake, Health.parse({}), { process: plugin, until: 'window', windowMs: 20_000 }),
    );
    expect(error.reason).toBe('PluginExited');
    expect(error.message).toContain('SIGKILL');
  });
});

describe('adoptPlugin', () => {
  it('recognises the very process a record names and can stop it', async () => {
    const plugin = await launch();
    const adopted = adoptPlugin(plugin.record());
    expect(adopted?.pid).toBe(plugin.pid);
    expect(adopted?.handshake).toEqual(plugin.handshake);
    await adopted!.stop(1000);
    await adopted!.exited;
    expect(alive(plugin.pid)).toBe(false);
  });

  it('refuses a live pid whose start time differs (a reused pid)', async () => {
    const plugin = await launch();
    try {
      expect(
        adoptPlugin({ ...plugin.record(), startTime: String(Number(plugin.startTime) - 1) }),
      ).toBeUndefined();
    } finally {
      await plugin.stop(1000);
    }
  });

  it('refuses a pid that is gone', async () => {
    const plugin = await launch();
    await plugin.stop(1000);
    expect(adoptPlugin(plugin.record())).toBeUndefined();
  });
});
