// The real kubectl against a dev cluster with the real controller and agents: `get`/`describe` by the
// singular name, `kubectl pluginrelease status -o json|yaml|--watch`, and `wait` on Ready, Stalled and
// a rollout that never finishes.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exited } from '../../support/processes.ts';
import { type PluginFleet, startPluginFleet } from './fleet.ts';
import { onPath } from './support.ts';

const KUBECTL = onPath('kubectl');
if (!KUBECTL)
  console.warn('kubectl is not on PATH: skipping the kubectl plugin tests (install kubectl to run them)');

describe.skipIf(!KUBECTL)('kubectl with a Ready release and a Stalled one', () => {
  let f: PluginFleet;
  let staging = '';

  beforeAll(async () => {
    f = await startPluginFleet(KUBECTL ?? 'kubectl');
    staging = f.fleet.stagingRoot;
    const echo = await f.stageEcho(join(staging, 'echo', '1.0.0'), '1.0.0');
    await f.create('good', { ...f.echoSpec('good', echo.path, echo.digest), rollout: { maxUnavailable: 2 } });
    await f.until('good', 'Ready', (r) => r.status?.phase === 'Ready', 100_000);
  }, 120_000); // a fleet start and a first rollout; generous for a loaded CI machine

  afterAll(() => f?.stop(), 60_000);

  it('gets and describes one release by its singular name; `get pluginrelease` lists releases only', async () => {
    const get = await f.kubectlRaw(['get', 'pluginrelease', 'good', '--no-headers']);
    expect(get).toMatchObject({ code: 0, stderr: '' });
    expect(get.stdout.split(/\s+/).slice(0, 6)).toEqual(['good', 'good', '1.0.0', '2/2', '2', 'Ready']);
    const describe = await f.kubectlRaw(['describe', 'pluginrelease', 'good']);
    expect(describe).toMatchObject({ code: 0, stderr: '' });
    expect(describe.stdout).toMatch(/^Name:\s+good$/m);
    expect(describe.stdout).toMatch(/^Kind:\s+PluginRelease$/m);
    const list = await f.kubectlRaw(['get', 'pluginrelease', '-o', 'name']);
    expect(list.stdout.trim().split('\n')).toEqual(['pluginrelease.pluginrelease.io/good']);
    const all = await f.kubectlRaw(['get', 'pluginreleases-all', '-o', 'name']);
    expect(all.stdout.trim().split('\n').sort()).toEqual([
      'pluginactivation.pluginrelease.io/good-node-1',
      'pluginactivation.pluginrelease.io/good-node-2',
      'pluginrelease.pluginrelease.io/good',
    ]);
  });

  it('prints status -o json with the state, the conditions and one entry per node; -o yaml alike', async () => {
    const json = await f.kubectl(['status', 'good', '-o', 'json']);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ name: 'good', state: 'Ready', reason: 'RolloutComplete', ready: '2/2' });
    expect(doc.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'True', reason: 'RolloutComplete' }),
    );
    expect(doc.nodes.map((n: { node: string; phase: string }) => [n.node, n.phase])).toEqual([
      ['node-1', 'Active'],
      ['node-2', 'Active'],
    ]);
    expect(doc.nodes[0].activeRevision).toBe(doc.revision);
    const yaml = await f.kubectl(['status', 'good', '-o', 'yaml']);
    expect(parse(yaml.stdout)).toEqual(doc);
    const text = await f.kubectl(['status', 'good']);
    expect(text.stdout).toMatch(/^Rollout:\s+Ready; failure policy Halt$/m);
  });

  it('waits for a Ready release: exit 0 and the Ready message', async () => {
    const run = await f.kubectl(['wait', 'good']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^pluginrelease\.pluginrelease\.io\/good is Ready \(RolloutComplete\): /);
  });

  it('fails a wait at once when the release goes Stalled, and when it already is', async () => {
    // Nobody staged this artifact: the first node rejects it and the rollout halts. The release starts
    // paused, so the wait is up and watching (it says so) before anything can stall.
    const missing = join(staging, 'missing', '1.0.0');
    await f.create('late', {
      ...f.echoSpec('late', missing, `sha256:${'a'.repeat(64)}`),
      rollout: { paused: true },
    });
    const child = f.spawnKubectl(['wait', 'late', '--timeout', '10m']);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    const exit = exited(child).then((code) => ({ code, at: Date.now() }));
    while (!stderr.includes('pluginrelease "late" is paused')) {
      if (child.exitCode !== null) throw new Error(`wait exited early: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await f.fleet.clients.releases.mergePatch(
      { namespace: 'default', name: 'late' },
      { spec: { rollout: { paused: false } } },
    );
    const { code, at } = await exit;
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^error: pluginrelease "late" is Stalled \(RolloutHalted\): .*ArtifactNotFound/m);
    const stalled = (await f.get('late')).status?.conditions?.find((c) => c.type === 'Stalled');
    expect(stalled?.status).toBe('True');
    const afterStalled = at - Date.parse(stalled?.lastTransitionTime ?? '');
    console.log(`wait exited ${afterStalled} ms after Stalled=True`);
    // About 0.1 s on a quiet machine and 2.7 s at a load average of 25 on 2 cores: the bound says "at
    // once, not at --timeout" (10 minutes here) with room for a machine that busy.
    expect(afterStalled).toBeLessThan(10_000);

    const started = Date.now();
    const again = await f.kubectl(['wait', 'late', '--timeout', '10m']);
    console.log(`wait on an already Stalled release: exit ${again.code} after ${Date.now() - started} ms`);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is Stalled (RolloutHalted)');
  });

  it('times out a wait on a rollout that cannot finish, saying what it is doing', async () => {
    const echo = join(staging, 'echo', '1.0.0');
    const spec = f.echoSpec('nowhere', echo, (await f.get('good')).spec.artifact?.digest ?? '');
    await f.create('nowhere', { ...spec, rollout: { nodeSelector: { 'pluginrelease.io/pool': 'none' } } });
    await f.until('nowhere', 'reported on', (r) => r.status?.observedGeneration === 1);
    const run = await f.kubectl(['wait', 'nowhere', '--timeout', '2s']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^error: timed out after 2s waiting for pluginrelease "nowhere" to be Ready; it is Progressing \(NoMatchingNodes\)/,
    );
  });

  it('prints status again after every change with --watch, and stops on Ctrl-C', async () => {
    const child = f.spawnKubectl(['status', 'good', '--watch']);
    let out = '';
    child.stdout?.on('data', (chunk) => {
      out += chunk;
    });
    const blocks = () => out.match(/^Name:\s+good$/gm)?.length ?? 0;
    const untilBlocks = async (n: number) => {
      while (blocks() < n) {
        if (child.exitCode !== null) throw new Error(`status --watch exited early: ${out}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    await untilBlocks(1);
    await f.kubectlRaw(['annotate', 'plr', 'good', 'watched=yes']);
    await untilBlocks(2);
    child.kill('SIGINT');
    expect(await exited(child)).toBe(0);
  });

  it('refuses flags a command does not take, and a malformed --timeout', async () => {
    const runs = await Promise.all([
      f.kubectl(['history', 'good', '--watch']),
      f.kubectl(['wait', 'good', '-o', 'json']),
      f.kubectl(['wait', 'good', '--timeout', 'soon']),
      f.kubectl(['status', 'good', '-o', 'wide']),
    ]);
    expect(runs.map((r) => r.code)).toEqual([1, 1, 1, 1]);
    expect(runs[0]?.stderr).toContain('history does not take --watch');
    expect(runs[1]?.stderr).toContain('wait does not take --output');
    expect(runs[2]?.stderr).toContain('--timeout must be a duration such as 30s');
    expect(runs[3]?.stderr).toContain('--output must be json or yaml');
  });
});
