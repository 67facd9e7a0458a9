// vitest globalSetup: one temporary directory for the whole run, and a teardown that ends every process
// the run left behind (a failed test's plugin, keeper or agent), so nothing outlives `npm test`.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Set for the workers: the run's directory, which every temp dir, root and HOME of a test lives under. */
export const RUN_DIR_ENV = 'PLUGIN_RELEASE_TEST_RUN_DIR';

interface Leftover {
  pid: number;
  pgid: number;
  command: string;
}

const read = (file: string) => {
  try {
    return readFileSync(file);
  } catch {
    return undefined; // the process exited, or is not ours to read
  }
};

/** /proc/<pid>/stat after "(comm)", which may hold spaces: [state, ppid, pgrp, …]; [""] once it is gone. */
export function stat(pid: number): string[] {
  const text = read(`/proc/${pid}/stat`)?.toString() ?? '';
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/**
 * Processes that mention `dir` in their command line, environment or working directory: what this run
 * started, directly or not. Plugins run from agent roots under it; keepers, agents and CLIs get its
 * TMPDIR, HOME or KUBECONFIG; none of another run's processes does.
 */
export function processesUsing(dir: string, except: Set<number>): Leftover[] {
  const found: Leftover[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || except.has(pid)) continue;
    const cmdline = read(`/proc/${pid}/cmdline`);
    if (!cmdline || cmdline.length === 0) continue; // kernel threads and zombies
    let cwd = '';
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {}
    const mentions =
      cmdline.includes(dir) || (read(`/proc/${pid}/environ`)?.includes(dir) ?? false) || cwd.startsWith(dir);
    if (!mentions) continue;
    const [, ppid, pgid] = stat(pid);
    // vitest's own helpers (workers, its watchdog) are children of the main process: not ours.
    if (Number(ppid) === process.pid) continue;
    found.push({ pid, pgid: Number(pgid), command: cmdline.toString().replaceAll('\0', ' ').trim() });
  }
  return found;
}

/** This process and its ancestors: never ours to reap (vitest, npm, the shell). */
function ancestors(): Set<number> {
  const pids = new Set<number>();
  let pid = process.pid;
  while (pid > 1 && !pids.has(pid)) {
    pids.add(pid);
    pid = Number(stat(pid)[1]);
  }
  return pids;
}

function signal(target: number, sig: NodeJS.Signals) {
  try {
    process.kill(target, sig);
  } catch {}
}

export default function setup() {
  // Short: unix socket paths under it must fit in 107 bytes (sun_path).
  const dir = mkdtempSync(join(tmpdir(), 'prt-'));
  // It stands in for /tmp, so it has /tmp's mode (sticky, world-writable): plugins run as other uids
  // (65534) traverse it, and where a socket path would be too long they create their socket in it.
  chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  process.env[RUN_DIR_ENV] = dir;
  // kubectl's discovery cache is keyed by host:port, and every dev cluster or realkube on the same port
  // would read the last one's: a CRD that changed its names since would resolve as it was.
  process.env.KUBECACHEDIR = join(dir, 'kube-cache');

  return async function teardown() {
    const own = ancestors();
    const ownGroup = Number(stat(process.pid)[2]);
    const kill = (sig: NodeJS.Signals) => {
      const left = processesUsing(dir, own);
      for (const p of left) {
        // A group leader (detached plugins, keepers) takes its whole group; never our own group.
        if (p.pgid === p.pid && p.pgid !== ownGroup) signal(-p.pgid, sig);
        signal(p.pid, sig);
      }
      return left;
    };
    const left = kill('SIGTERM');
    if (left.length > 0) {
      console.warn(
        `test teardown: ${left.length} process(es) the tests left running were stopped:\n` +
          left.map((p) => `  ${p.pid} ${p.command.slice(0, 160)}`).join('\n'),
      );
      const deadline = Date.now() + 5000;
      while (processesUsing(dir, own).length > 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
}
