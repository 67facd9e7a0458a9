// The spawn gate: a contained process starts as a shell that waits on fd 3, so it is in its cgroup
// before the plugin (or an exec probe) runs a single instruction.
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Writable } from 'node:stream';
import { type ContainmentRecord, GATE_SCRIPT, GATE_SHELL } from './containment.ts';

/** Whether a spawn into `record` goes through the gate: only a cgroup must be joined first, and only a shell can wait. */
export function usesGate(record: ContainmentRecord): boolean {
  return record.cgroup !== undefined && canRun(GATE_SHELL);
}

/** One slot of a contained spawn's stdio: what the spawner passes for fds 0 to 2. */
type StdioSlot = 'ignore' | 'pipe' | number;

/**
 * Spawns `file` with `args`: directly, or (`gated`) through the gate shell, which takes one more pipe
 * (fd 3) and execs `file` once `openGate` writes to it; a gate whose command cannot run exits 125.
 */
export function spawnContained(
  gated: boolean,
  file: string,
  args: readonly string[],
  options: Omit<SpawnOptions, 'stdio'> & { stdio: StdioSlot[] },
): ChildProcess {
  if (!gated) return spawn(file, args, options);
  return spawn(GATE_SHELL, ['-c', GATE_SCRIPT, 'plugin-release-gate', file, ...args], {
    ...options,
    stdio: [...options.stdio, 'pipe'],
  });
}

/** Lets a gated process exec its command: call it once the process is in its cgroup (or cannot be). */
export function openGate(child: ChildProcess): void {
  const gate = child.stdio[3] as Writable;
  gate.on('error', () => {}); // the gate exited (its command could not run): the exit reports it
  gate.end('go\n');
}

/** Whether `path` exists and this process may execute it. */
function canRun(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
