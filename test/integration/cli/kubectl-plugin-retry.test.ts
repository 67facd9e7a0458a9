// `kubectl pluginrelease status/retry` through the real kubectl binary against a dev cluster with the
// real controller and agents: a revision nodes reject, then a retry once its cause is fixed.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Annotations } from '../../../src/api/index.ts';
import { type PluginFleet, startPluginFleet } from './fleet.ts';
import { onPath } from './support.ts';

const KUBECTL = onPath('kubectl');
if (!KUBECTL)
  console.warn('kubectl is not on PATH: skipping the kubectl plugin tests (install kubectl to run them)');

describe.skipIf(!KUBECTL)('kubectl pluginrelease on a revision a node rejected', () => {
  let f: PluginFleet;
  let rev = '';
  let artifact = '';

  beforeAll(async () => {
    f = await startPluginFleet(KUBECTL ?? 'kubectl');
    // The release names an artifact nobody has staged yet (its digest taken from a copy elsewhere),
    // so the first node rejects it and the rollout halts until it appears and someone retries.
    artifact = join(f.fleet.stagingRoot, 'late', '1.0.0');
    const source = await f.stageEcho(join(f.fleet.stagingRoot, 'late-source', '1.0.0'), '1.0.0');
    await f.create('late', {
      ...f.echoSpec('late', artifact, source.digest),
      rollout: { maxUnavailable: 1 },
    });
    rev =
      (await f.until('late', 'stalled', (r) => r.status?.phase === 'Stalled', 100_000)).status?.revision ??
      '';
  }, 120_000); // a fleet start and a first rollout; generous for a loaded CI machine

  afterAll(() => f?.stop(), 60_000);

  it('shows why: the Stalled condition and the node row with its reason and no active revision', async () => {
    const { code, stdout } = await f.kubectl(['status', 'late']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Phase:\s+Stalled$/m);
    expect(stdout).toMatch(/^ {2}Stalled\s+True\s+RolloutHalted\s/m);
    expect(stdout).toMatch(
      new RegExp(`^ {2}node-1\\s+RolledBack\\s+${rev}\\s+<none>\\s+ArtifactNotFound\\s+\\d+s\\s+\\S`, 'm'),
    );
  });

  it('retries with a fresh retry-at token, and the fleet recovers once the artifact is staged', async () => {
    await f.stageEcho(artifact, '1.0.0');
    const before = Math.floor(Date.now() / 1000);
    const { code, stdout } = await f.kubectl(['retry', 'late']);
    expect(code).toBe(0);
    const token =
      /^pluginrelease\.pluginrelease\.io\/late retry requested \(pluginrelease\.io\/retry-at=(\d+)\)$/m.exec(
        stdout,
      )?.[1];
    expect(Number(token)).toBeGreaterThanOrEqual(before);
    expect(Number(token)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    expect(stdout).toContain(`1 node that failed revision ${rev} will try again.`);
    expect((await f.get('late')).metadata.annotations?.[Annotations.retryAt]).toBe(token);

    // A second retry within the same second must still be a new value, or the controller ignores it.
    const again = await f.kubectl(['retry', 'late']);
    expect(Number(/retry-at=(\d+)/.exec(again.stdout)?.[1])).toBeGreaterThan(Number(token));

    await f.until(
      'late',
      'Ready after the retry',
      (r) => r.status?.phase === 'Ready' && r.status.ready === '2/2',
    );
  });
});
