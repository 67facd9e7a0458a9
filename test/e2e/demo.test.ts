// `npm run demo`, run as a user would (not on a TTY): the three acts happen and the process says so.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '../../bin/plugin-release.js');

describe('the demo', () => {
  it('rolls out 1.0.0, upgrades to 2.0.0 without a failed request, and rejects the broken 3.0.0', () => {
    const run = spawnSync(process.execPath, [BIN, 'demo'], { encoding: 'utf8', timeout: 90_000 });
    const out = run.stdout;
    expect(run.status, `${out}\n${run.stderr}`).toBe(0);
    expect(out).toMatch(/Act 1: 1\.0\.0 is Active on 3\/3 nodes\./);
    expect(out).toMatch(
      /Act 2: 2\.0\.0 is Active on 3\/3 nodes; [1-9]\d* requests through the fronts, 0 failed\./,
    );
    expect(out).toMatch(
      /Act 3: the canary node-1 rolled back \(ProbeFailed\); the release is Stalled \(RolloutHalted\)/,
    );
    expect(out).toMatch(/every node still serves 2\.0\.0, 2\.0\.0, 2\.0\.0; 0 of \d+ requests failed/);
    // Without --keep the cluster stops with the demo: no kubectl line for it, only how to keep it.
    expect(out).not.toMatch(/kubectl --kubeconfig/);
    expect(out).toContain('npm run demo -- --keep');
    expect(out).toMatch(/Done in [\d.]+s/);
  }, 120_000);
});
