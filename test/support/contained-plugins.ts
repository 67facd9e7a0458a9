// Test helper for containment: shell-script plugins that escape their process group, and a /proc scan
// that finds every process carrying a test's own environment marker (independent of the agent's marker).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroup2Mount, ownCgroup } from '../../src/agent/runtime/containment.ts';

/** The variable a test plugin exports before anything else, so every descendant carries it. */
export const TEST_MARK = 'PR_TEST_MARK';

/** A handshake line the agent accepts with the default handshake settings (nothing needs to listen). */
export const HANDSHAKE_LINE = '1|1|tcp|127.0.0.1:1|grpc';

export interface ShellPlugin {
  /** Absolute path of the executable script. */
  entrypoint: string;
  /** Its directory (the cwd to launch it in). */
  dir: string;
  /** The PR_TEST_MARK value every process of this plugin carries. */
  mark: string;
}

/**
 * Writes `<dir>/<name>/plugin`: a /bin/sh script that exports PR_TEST_MARK=<fresh mark>, then runs
 * `body` (which prints the handshake with `echo "$HANDSHAKE"` when it wants one).
 */
export async function aShellPlugin(dir: string, name: string, body: string): Promise<ShellPlugin> {
  const mark = `${name}-${randomBytes(6).toString('hex')}`;
  const path = join(dir, name);
  await mkdir(path, { recursive: true });
  const entrypoint = join(path, 'plugin');
  await writeFile(
    entrypoint,
    `#!/bin/sh\n${TEST_MARK}='${mark}'; export ${TEST_MARK}\nHANDSHAKE='${HANDSHAKE_LINE}'\n${body}\n`,
    { mode: 0o755 },
  );
  return { entrypoint, dir: path, mark };
}

/**
 * Shell lines that start `sleep 1000` in a new session (escaping the process group) and wait until it is
 * there (setsid() has run), so a test cannot pass because a group kill caught it before it escaped.
 */
export const ESCAPE =
  'ready="$(dirname "$0")/escaped.$$"\n' +
  'setsid sh -c \': > "$1"; exec sleep 1000\' sh "$ready" &\n' +
  'while [ ! -e "$ready" ]; do sleep 0.01; done';

/** A plugin that starts `sleep 1000` in a new session (escaping its process group), then handshakes. */
export const SETSID_CHILD = `${ESCAPE}\necho "$HANDSHAKE"\nexec sleep 1000`;

/** Pids of live processes whose start-time environment holds PR_TEST_MARK=<mark> (zombies have none). */
export function processesMarked(mark: string): number[] {
  const entry = Buffer.from(`${TEST_MARK}=${mark}\0`);
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const environ = readFileSync(`/proc/${name}/environ`);
      for (let i = environ.indexOf(entry); i >= 0; i = environ.indexOf(entry, i + 1)) {
        if (i === 0 || environ[i - 1] === 0) {
          found.push(Number(name));
          break;
        }
      }
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Waits until no process carries the mark (killed processes take a moment to exit); returns the rest. */
export async function leftAfter(mark: string, ms = 1000): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = processesMarked(mark);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** SIGKILLs whatever still carries the mark, in rounds until none is found (test cleanup, so a failing
 * test leaks nothing: a shell forking while it is killed shows up in the next round). */
export function killMarked(mark: string): void {
  for (let round = 0; round < 50; round++) {
    const pids = processesMarked(mark);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

/** Why this machine cannot run the cgroup path, or undefined when it can (a cgroup2 leaf can be made). */
export function cgroupUnavailable(): string | undefined {
  if (!cgroup2Mount()) return 'no cgroup2 hierarchy is mounted';
  const own = ownCgroup();
  if (!own) return 'the test runner is in no cgroup2 cgroup';
  const probe = join(own, 'plugin-release', `probe-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(probe, { recursive: true });
    rmdirSync(probe);
    return undefined;
  } catch (error) {
    return `cannot create ${probe}: ${(error as Error).message}`;
  }
}
