// `kubectl pluginrelease status/resume/pause/history` through the real kubectl binary, with the plugin
// on PATH, against a dev cluster running the real controller and agents: a canary pause, end to end.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PluginFleet, startPluginFleet } from './fleet.ts';
import { onPath } from './support.ts';

const KUBECTL = onPath('kubectl');
if (!KUBECTL)
  console.warn('kubectl is not on PATH: skipping the kubectl plugin tests (install kubectl to run them)');

describe.skipIf(!KUBECTL)('kubectl pluginrelease on a rollout paused after its canary', () => {
  let f: PluginFleet;
  let rev = '';

  beforeAll(async () => {
    f = await startPluginFleet(KUBECTL ?? 'kubectl');
    const echo = await f.stageEcho(join(f.fleet.stagingRoot, 'echo', '1.0.0'), '1.0.0');
    await f.create('echo', {
      ...f.echoSpec('echo', echo.path, echo.digest),
      rollout: { maxUnavailable: 1, canary: { nodes: 1, pauseAfter: true } },
    });
    rev =
      (await f.until('echo', 'paused after its canary', (r) => r.status?.phase === 'Paused', 100_000)).status
        ?.revision ?? '';
  }, 120_000); // a fleet start and a first rollout; generous for a loaded CI machine

  afterAll(() => f?.stop(), 60_000);

  it('shows the phase, READY 1/2, the revision, the CanaryPaused condition and the canary node', async () => {
    const { code, stdout, stderr } = await f.kubectl(['status', 'echo']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Name:\s+echo$/m);
    expect(stdout).toMatch(/^Namespace:\s+default$/m);
    expect(stdout).toMatch(/^Phase:\s+Paused$/m);
    expect(stdout).toMatch(/^Ready:\s+1\/2$/m);
    expect(stdout).toMatch(new RegExp(`^Revision:\\s+${rev}$`, 'm'));
    expect(stdout).toMatch(/^Rollout:\s+paused after the canary nodes/m);
    expect(stdout).toMatch(/^ {2}Ready\s+False\s+CanaryPaused\s+\d+s\s+\S/m);
    expect(stdout).toMatch(/^ {2}NODE\s+PHASE\s+REVISION\s+ACTIVE\s+REASON\s+AGE\s+MESSAGE$/m);
    expect(stdout).toMatch(
      new RegExp(`^ {2}node-1\\s+Active\\s+${rev}\\s+${rev}\\s+Activated\\s+\\d+s\\s+\\S`, 'm'),
    );
    expect(stdout).not.toMatch(/^ {2}node-2\s+Active/m);
  });

  it('resumes by promoting the revision (an annotation, the spec untouched), and the rollout finishes on every node', async () => {
    const resumed = await f.kubectl(['resume', 'echo']);
    expect(resumed).toMatchObject({
      code: 0,
      stdout: `pluginrelease.pluginrelease.io/echo promoted (pluginrelease.io/promote=${rev})\n`,
    });
    const promoted = await f.get('echo');
    expect(promoted.spec.rollout).toMatchObject({ canary: { pauseAfter: true } });
    expect(promoted.metadata.annotations?.['pluginrelease.io/promote']).toBe(rev);

    await f.until(
      'echo',
      'Ready on both nodes',
      (r) => r.status?.phase === 'Ready' && r.status.ready === '2/2',
      80_000,
    );
    const { code, stdout } = await f.kubectl(['status', 'echo']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Phase:\s+Ready$/m);
    expect(stdout).toMatch(/^Ready:\s+2\/2$/m);
    expect(stdout).toMatch(/^ {2}Ready\s+True\s+RolloutComplete\s/m);
    for (const node of ['node-1', 'node-2']) {
      expect(stdout).toMatch(new RegExp(`^ {2}${node}\\s+Active\\s+${rev}\\s+${rev}\\s+Activated\\s`, 'm'));
    }
  }, 90_000); // a second node's whole activation: generous for a loaded machine

  it('prints the history with the completed revision marked as current', async () => {
    const { code, stdout } = await f.kubectl(['history', 'echo']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^NUMBER\s+REVISION\s+VERSION\s+OUTCOME\s+STARTED\s+DURATION\s+MESSAGE$/m);
    expect(stdout).toMatch(
      new RegExp(
        `^1\\s+${rev}\\*\\s+1\\.0\\.0\\s+Complete\\s+\\d+s ago\\s+\\d+s\\s+Revision ${rev} \\(version 1\\.0\\.0\\) is active`,
        'm',
      ),
    );
  });

  it('pauses once, says "already paused" the second time, and status shows the pause', async () => {
    const first = await f.kubectl(['pause', 'echo']);
    expect(first).toMatchObject({ code: 0, stdout: 'pluginrelease.pluginrelease.io/echo paused\n' });
    expect((await f.get('echo')).spec.rollout.paused).toBe(true);
    const [again, status] = await Promise.all([f.kubectl(['pause', 'echo']), f.kubectl(['status', 'echo'])]);
    expect(again).toMatchObject({ code: 0, stdout: 'pluginrelease.pluginrelease.io/echo already paused\n' });
    expect(status.stdout).toMatch(/^Rollout:\s+paused \(resume with: kubectl pluginrelease resume echo\)/m);
  });
});
