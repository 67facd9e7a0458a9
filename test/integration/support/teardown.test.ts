// The suite's own hygiene: the globalSetup's teardown stops whatever a test left running (a failed test's
// plugin, keeper or agent) and nothing else, so no process outlives `npm test`.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import setup, { RUN_DIR_ENV, stat } from '../../support/global-setup.ts';

const saved = { TMPDIR: process.env.TMPDIR, run: process.env[RUN_DIR_ENV], cache: process.env.KUBECACHEDIR };
const started: number[] = [];

/** Whether a pid runs (a zombie waiting for init to reap it has ended). */
const running = (pid: number) => !['', 'Z'].includes(stat(pid)[0] ?? '');

afterEach(() => {
  for (const pid of started.splice(0))
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  process.env.TMPDIR = saved.TMPDIR;
  process.env[RUN_DIR_ENV] = saved.run;
  process.env.KUBECACHEDIR = saved.cache;
});

/**
 * Starts `script` in the background of a shell that exits at once, so it is nobody's child here (as a
 * test's plugin is not the teardown's, which skips its own children: vitest's workers); returns its pid.
 */
function orphan(script: string, env: NodeJS.ProcessEnv = { PATH: process.env.PATH }): number {
  const pid = Number(
    execFileSync('sh', ['-c', `${script} >/dev/null 2>&1 </dev/null & echo $!`], { env }).toString(),
  );
  started.push(pid);
  return pid;
}

describe('the test run teardown', () => {
  it('stops the processes that use the run directory, a detached group and one ignoring SIGTERM included, and nothing else', async () => {
    const teardown = setup();
    const dir = process.env[RUN_DIR_ENV] as string;
    // A group leader of its own (setsid, as keepers and plugins are) with the run's TMPDIR, and its child.
    const leader = orphan(`setsid sh -c 'sleep 600 & wait'`, { PATH: process.env.PATH, TMPDIR: dir });
    // A process that only works in the directory (a plugin in its run dir) and shrugs off SIGTERM.
    const stubborn = orphan(`cd '${dir}' && (trap '' TERM; while :; do sleep 0.2; done)`);
    // Another run's process: it never mentions this run's directory.
    const stranger = orphan('sleep 600');
    expect([leader, stubborn, stranger].map(running)).toEqual([true, true, true]);

    await teardown();

    expect(running(leader)).toBe(false);
    expect(running(stubborn)).toBe(false); // only SIGKILL ends it
    expect(running(stranger)).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });
});
