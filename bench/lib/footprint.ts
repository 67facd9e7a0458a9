// Memory and start-up of real plugin-release processes, read from outside as `ps` would: resident and
// private memory from /proc (Linux), and the wall time of a command from spawn to exit.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { binOf, type Tree } from './tree.ts';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat on Linux. */
const CLOCK_TICKS = 100;

export interface ProcessMemory {
  /** Resident set (VmRSS), what `ps -o rss` shows: shared pages of the node binary included. */
  rssBytes: number;
  /** Private pages only (Private_Clean + Private_Dirty): what this process alone adds. */
  privateBytes: number;
  cpuSeconds: number;
}

export function processMemory(pid: number): ProcessMemory {
  const kb = (text: string, field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  // Fields after the command (which may hold spaces) start after the last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    rssBytes: kb(status, 'VmRSS'),
    privateBytes: kb(rollup, 'Private_Clean') + kb(rollup, 'Private_Dirty'),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
  };
}

/** The pids of `pid`'s children. */
export function childrenOf(pid: number): number[] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text ? text.split(' ').map(Number) : [];
}

/**
 * Resolves once every process in `pids()` has been alive for `settleMs` and then used less than
 * `cpuSeconds` of CPU over `windowMs`; rejects after `timeoutMs`.
 */
export async function idleProcesses(
  pids: () => number[],
  { settleMs, windowMs = 1000, cpuSeconds = 0.02, timeoutMs = 60_000 }: IdleOptions,
): Promise<void> {
  await new Promise((r) => setTimeout(r, settleMs));
  const deadline = Date.now() + timeoutMs;
  let before = pids().map((p) => processMemory(p).cpuSeconds);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, windowMs));
    const now = pids().map((p) => processMemory(p).cpuSeconds);
    if (now.length === before.length && now.every((c, i) => c - before[i]! < cpuSeconds)) return;
    before = now;
  }
  throw new Error(`processes ${pids().join(', ')} were not idle within ${timeoutMs / 1000} s`);
}

export interface IdleOptions {
  settleMs: number;
  windowMs?: number;
  cpuSeconds?: number;
  timeoutMs?: number;
}

/** What the agent DaemonSet's container runs, measured at rest. */
export interface NodeFootprint {
  keeper: ProcessMemory;
  agent: ProcessMemory;
}

/**
 * Runs `tree`'s `plugin-release keeper --run -- agent …` (the DaemonSet's command) for `node` against
 * `kubeconfig`, waits until both are idle, and samples them; then stops them (SIGTERM).
 */
export async function nodeFootprint(
  tree: Tree,
  kubeconfig: string,
  node: string,
  dirs: { root: string; staging: string },
  idle: IdleOptions,
  env: Record<string, string> = {},
): Promise<NodeFootprint> {
  const agentArgs = ['agent', '--node', node, '--root', dirs.root, '--staging-root', dirs.staging];
  const keeper = spawn(
    process.execPath,
    [
      binOf(tree),
      'keeper',
      '--root',
      dirs.root,
      '--log-level',
      'warn',
      '--run',
      '--',
      ...agentArgs,
      '--kubeconfig',
      kubeconfig,
      '--metrics-addr',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } },
  );
  let stderr = '';
  keeper.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4096);
  });
  const exited = new Promise<void>((resolve) => keeper.once('exit', () => resolve()));
  try {
    const pid = keeper.pid!;
    const agentPid = () => {
      if (keeper.exitCode !== null || keeper.signalCode !== null) {
        throw new Error(`the keeper exited (${keeper.exitCode ?? keeper.signalCode}):\n${stderr}`);
      }
      return childrenOf(pid)[0];
    };
    const deadline = Date.now() + 30_000;
    while (agentPid() === undefined) {
      if (Date.now() > deadline) throw new Error(`no agent started:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await idleProcesses(() => [pid, agentPid() ?? pid], idle);
    return { keeper: processMemory(pid), agent: processMemory(agentPid()!) };
  } finally {
    keeper.kill('SIGTERM');
    await exited;
  }
}

/** Median wall time (ms) of `tree`'s `plugin-release <args>` from spawn to exit, over `runs` runs. */
export function startupMs(tree: Tree, args: string[], runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const result = spawnSync(process.execPath, [binOf(tree), ...args], { stdio: 'ignore' });
    if (result.status !== 0) throw new Error(`plugin-release ${args.join(' ')} exited ${result.status}`);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
