// Runtime Host on one node: the node engine drives a real reference host process through its admin API.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeEngine } from '../../../src/agent/node-engine.ts';
import { PluginActivationSpec, type PluginActivationSpecInput } from '../../../src/api/index.ts';
import {
  hostConfig,
  hostPlugin,
  type ReferenceHost,
  startReferenceHost,
  treeOf,
} from '../../support/reference-host.ts';
import { NODE, REPO, runProcess } from '../cli/support.ts';

interface World {
  dir: string;
  host: ReferenceHost;
  engine: NodeEngine;
  staging: string;
}
const worlds: World[] = [];

async function aWorld(): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'plr-host-'));
  const host = await startReferenceHost(join(dir, 'h'));
  const staging = join(dir, 'staging');
  const engine = new NodeEngine({
    root: join(dir, 'root'),
    stagingRoot: staging,
    logger: pino({ level: 'silent' }),
  });
  const world = { dir, host, engine, staging };
  worlds.push(world);
  await hostConfig(join(staging, 'seed.json'), 'seed'); // the staging root exists
  await engine.recover();
  return world;
}

afterEach(async () => {
  for (const w of worlds.splice(0)) {
    await w.engine.close();
    await w.host.stop();
    await rm(w.dir, { recursive: true, force: true });
  }
});

function aSpec(w: World, revision: string, extra: Partial<PluginActivationSpecInput> = {}) {
  return PluginActivationSpec.parse({
    release: { name: 'engine' },
    nodeName: 'node-1',
    plugin: 'engine',
    version: revision,
    revision,
    runtime: 'Host',
    host: { url: w.host.url, plugins: { dir: w.host.pluginsDir } },
    activation: { verifySeconds: 2 },
    ...extra,
  });
}

const withConfig = async (w: World, revision: string, modules?: Parameters<typeof hostConfig>[2]) =>
  aSpec(w, revision, { config: await hostConfig(join(w.staging, `${revision}.json`), revision, modules) });

describe('runtime Host on one node', { timeout: 60_000 }, () => {
  it('activates a good config: the host runs it, and the status says so', async () => {
    const w = await aWorld();
    const status = await w.engine.activate(await withConfig(w, 'v1'));
    expect(status).toMatchObject({ phase: 'Active', reason: 'Activated', activeRevision: 'v1' });
    expect(JSON.parse(status.hostAnswer ?? '{}')).toMatchObject({ status: 'build_ok' });
    expect((await w.host.state()).config).toBe('v1');
  });

  it('rolls back a config the host refuses at try-activate, with its error, never telling it to change', async () => {
    const w = await aWorld();
    await w.engine.activate(await withConfig(w, 'v1'));
    const before = await w.host.state();
    const status = await w.engine.activate(await withConfig(w, 'v2', [{ type: 'bad.type' }]));
    expect(status).toMatchObject({
      phase: 'RolledBack',
      reason: 'TryActivateRejected',
      activeRevision: 'v1',
    });
    expect(status.message).toContain('module type "bad.type" not found');
    const after = await w.host.state();
    expect(after.activations).toBe(before.activations);
    expect(after.config).toBe('v1');
  });

  it('restores the previous config when the candidate builds but fails to start', async () => {
    const w = await aWorld();
    await w.engine.activate(await withConfig(w, 'v1'));
    const status = await w.engine.activate(
      await withConfig(w, 'v2', [{ type: 'http.server', failStart: true }]),
    );
    expect(status).toMatchObject({ phase: 'RolledBack', reason: 'ActivateFailed', activeRevision: 'v1' });
    expect(status.message).toMatch(/failed to start/);
    expect((await w.host.state()).config).toBe('v1');
  });

  // With verifySeconds 1 the window holds one check of a period of 1 s: it is extended to the threshold (2).
  it.each([2, 1])(
    'restores the previous config when the host turns unhealthy inside verifySeconds %i',
    async (verifySeconds) => {
      const w = await aWorld();
      await w.engine.activate(await withConfig(w, 'v1'));
      const started = Date.now();
      const status = await w.engine.activate(
        aSpec(w, 'v2', {
          config: await hostConfig(join(w.staging, 'v2.json'), 'v2', [
            { type: 'http.server', unhealthyAfterMs: 300 },
          ]),
          activation: { verifySeconds },
        }),
      );
      expect(status).toMatchObject({ phase: 'RolledBack', reason: 'HostUnhealthy', activeRevision: 'v1' });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await w.host.state()).config).toBe('v1');
    },
  );

  it("restores the previous config when the release's own probe against the host fails after activation", async () => {
    const w = await aWorld();
    await w.engine.activate(await withConfig(w, 'v1'));
    const status = await w.engine.activate(
      aSpec(w, 'v2', {
        config: await hostConfig(join(w.staging, 'v2.json'), 'v2'),
        health: { probes: [{ httpGet: { path: '/api/v2/ready' }, periodSeconds: 1, failureThreshold: 1 }] },
      }),
    );
    expect(status).toMatchObject({ phase: 'RolledBack', reason: 'ProbeFailed', activeRevision: 'v1' });
    expect(status.lastProbe).toMatchObject({ probe: 'httpGet', success: false });
    expect((await w.host.state()).config).toBe('v1');
  });

  it('stops a dry run at Probed and changes nothing', async () => {
    const w = await aWorld();
    await w.engine.activate(await withConfig(w, 'v1'));
    const before = await w.host.state();
    const status = await w.engine.activate({ ...(await withConfig(w, 'v2')), dryRun: true });
    expect(status).toMatchObject({ phase: 'Probed', activeRevision: 'v1' });
    const after = await w.host.state();
    expect({ ...after, tryActivations: 0 }).toEqual({ ...before, tryActivations: 0 });
    expect(after.tryActivations).toBe(before.tryActivations + 1);
  });

  it('reports a dead host as HostUnreachable, not as a bad candidate', async () => {
    const w = await aWorld();
    await w.host.stop();
    const status = await w.engine.activate(await withConfig(w, 'v1'));
    expect(status).toMatchObject({ phase: 'RolledBack', reason: 'HostUnreachable' });
    expect(status.message).toMatch(/admin\.sock/);
    await startReferenceHostAgain(w);
  });

  it('installs a plugin into plugins.dir and restores the snapshot byte for byte when its reload fails', async () => {
    const w = await aWorld();
    const v1 = aSpec(w, 'v1', {
      artifact: await hostPlugin(join(w.staging, 'p1'), {
        name: 'engine',
        version: 'v1',
        moduleTypes: ['x.one'],
      }),
    });
    expect(await w.engine.activate(v1)).toMatchObject({ phase: 'Active' });
    expect((await w.host.state()).plugins).toEqual({ engine: 'v1' });
    const live = join(w.host.pluginsDir, 'engine');
    const before = await treeOf(live);
    expect(before['.complete']).toBeDefined();
    const v2 = aSpec(w, 'v2', {
      artifact: await hostPlugin(join(w.staging, 'p2'), { name: 'engine', version: 'v2', failLoad: true }),
    });
    const status = await w.engine.activate(v2);
    expect(status).toMatchObject({ phase: 'RolledBack', reason: 'PluginReloadFailed', activeRevision: 'v1' });
    expect(await treeOf(live)).toEqual(before);
    expect((await w.host.state()).plugins).toEqual({ engine: 'v1' });
  });

  it('sends the bearer token from tokenFile, and reports a host that refuses it as the host failing', async () => {
    const w = await aWorld();
    await w.host.stop();
    const tokenFile = join(w.dir, 'token');
    await writeFile(tokenFile, 's3cr3t-token\n');
    w.host = await startReferenceHost(join(w.dir, 'h'), { tokenFile });
    const spec = await withConfig(w, 'v1');
    const refused = await w.engine.activate(spec);
    expect(refused).toMatchObject({ phase: 'RolledBack', reason: 'HostError' });
    expect(refused.message).toMatch(/HTTP 401: unauthorized/);
    const status = await w.engine.activate({ ...spec, revision: 'v1b', host: { ...spec.host!, tokenFile } });
    expect(status).toMatchObject({ phase: 'Active' });
    expect(status.message).not.toContain('s3cr3t');
    expect((await w.host.state()).config).toBe('v1');
  });

  it('refuses a plugins dir the host did not mark as managed', async () => {
    const w = await aWorld();
    const spec = aSpec(w, 'v1', {
      host: { url: w.host.url, plugins: { dir: w.staging } },
      artifact: await hostPlugin(join(w.staging, 'p1'), { name: 'engine', version: 'v1' }),
    });
    expect(await w.engine.activate(spec)).toMatchObject({
      phase: 'RolledBack',
      reason: 'HostPluginDirRefused',
    });
  });
});

describe('plugin-release try-activate with a Host release', { timeout: 60_000 }, () => {
  const tryActivate = async (w: World, name: string, modules?: Parameters<typeof hostConfig>[2]) => {
    const release = join(w.dir, `${name}.yaml`);
    const config = await hostConfig(join(w.staging, `${name}.json`), name, modules);
    await writeFile(
      release,
      JSON.stringify({
        apiVersion: 'pluginrelease.io/v1alpha1',
        kind: 'PluginRelease',
        metadata: { name: 'engine' },
        spec: { plugin: 'engine', version: name, runtime: 'Host', host: { url: w.host.url }, config },
      }),
    );
    const run = await runProcess(
      NODE,
      [
        join(REPO, 'bin/plugin-release.js'),
        'try-activate',
        '--release',
        release,
        '--staging-root',
        w.staging,
        '--root',
        join(w.dir, 'root'),
      ],
      { PATH: process.env.PATH ?? '' },
    );
    return { code: run.code, out: JSON.parse(run.stdout) };
  };

  it("prints the host's build_ok answer and leaves the host as it was", async () => {
    const w = await aWorld();
    await w.engine.close(); // the CLI takes the root's lock
    const before = await w.host.state();
    const { code, out } = await tryActivate(w, 'candidate');
    expect(code).toBe(0);
    expect(out).toMatchObject({
      status: 'probe_ok',
      host: { status: 'build_ok', moduleTypes: ['http.server'] },
    });
    const after = await w.host.state();
    expect([after.config, after.activations]).toEqual([before.config, before.activations]);
  });

  it("prints the host's build_failed answer with exit 2", async () => {
    const w = await aWorld();
    await w.engine.close();
    const { code, out } = await tryActivate(w, 'broken', [{ type: 'no.such' }]);
    expect(code).toBe(2);
    expect(out).toMatchObject({
      status: 'probe_failed',
      reason: 'TryActivateRejected',
      host: { status: 'build_failed', error: 'module type "no.such" not found' },
    });
  });
});

async function startReferenceHostAgain(w: World) {
  w.host = await startReferenceHost(join(w.dir, 'h'));
}

describe('examples/host-runtime.yaml', () => {
  it('names the digest of the config it ships, examples/host/engine-v2.json', async () => {
    const { parse } = await import('yaml');
    const { readFile } = await import('node:fs/promises');
    const { digestPath } = await import('../../../src/agent/digest.ts');
    const release = parse(await readFile(join(REPO, 'examples/host-runtime.yaml'), 'utf8'));
    expect(release.spec.config.digest).toBe(await digestPath(join(REPO, 'examples/host/engine-v2.json')));
  });
});
