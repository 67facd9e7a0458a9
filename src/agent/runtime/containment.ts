// Containment of a plugin (or exec probe) and every descendant: a cgroup v2 leaf where the agent can make
// one, else an environment marker found by scanning /proc; both are killed as a whole.
//
// Why both: a process group is not a container (a child that calls setsid() or setpgid() leaves it), but
// a cgroup is (a process cannot leave its cgroup without write access to cgroup.procs above it), and
// `cgroup.kill` SIGKILLs every member atomically. Where no writable cgroup2 hierarchy exists, the marker
// PLUGIN_RELEASE_INSTANCE=<instance> in the environment the process was started with, which every
// descendant inherits, names the tree; a scan of /proc/*/environ finds it. The marker is set in cgroup
// mode too, as a second net. docs/containment.md has the whole story.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The environment variable that marks every process of one containment. */
export const INSTANCE_ENV = 'PLUGIN_RELEASE_INSTANCE';
/** The directory the agent's containment cgroups live in, under the cgroup parent. */
export const CGROUP_SUBTREE = 'plugin-release';
/** `auto` (default): a cgroup where possible, else the marker. `marker`: never a cgroup (forced fallback). */
export type ContainmentMode = 'auto' | 'cgroup' | 'marker';

/** Where and how to contain; every field defaults from the environment (see containmentDefaults). */
export interface ContainmentOptions {
  mode?: ContainmentMode;
  /** An absolute cgroup2 directory the agent may create children in. Default: the agent's own cgroup. */
  cgroupParent?: string;
}

/** What identifies one containment, persisted (containment.json, the journal) to kill it after a restart. */
export interface ContainmentRecord {
  /** The PLUGIN_RELEASE_INSTANCE value every process of this containment carries. */
  instance: string;
  /** The absolute cgroup2 directory, when a cgroup holds the processes. */
  cgroup?: string;
}

/** A containment being set up: the record, plus why no cgroup was made (when none was). */
export interface Containment {
  record: ContainmentRecord;
  /** Set when mode was not `marker` but no cgroup could be made: say so once in the logs. */
  noCgroupReason?: string;
}

/**
 * Options from the agent's environment: PLUGIN_RELEASE_CONTAINMENT=auto|cgroup|marker and
 * PLUGIN_RELEASE_CGROUP_PARENT=/sys/fs/cgroup/..., overridden field by field by `opts`.
 */
export function containmentDefaults(
  opts: ContainmentOptions = {},
): Required<Pick<ContainmentOptions, 'mode'>> & ContainmentOptions {
  const env = process.env.PLUGIN_RELEASE_CONTAINMENT;
  const mode = opts.mode ?? (env === 'marker' || env === 'cgroup' || env === 'auto' ? env : 'auto');
  const cgroupParent = opts.cgroupParent ?? process.env.PLUGIN_RELEASE_CGROUP_PARENT;
  return { mode, ...(cgroupParent ? { cgroupParent } : {}) };
}

/** The mount point of the cgroup2 hierarchy (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
export function cgroup2Mount(): string | undefined {
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of mountinfo.split('\n')) {
    // "<id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> <source> <super opts>"
    const [left, right] = line.split(' - ');
    if (!left || !right || right.split(' ')[0] !== 'cgroup2') continue;
    const fields = left.split(' ');
    if (fields[3] === '/' && fields[4]) return fields[4].replace(/\\040/g, ' ');
  }
  return undefined;
}

/** The agent's own cgroup2 directory (from /proc/self/cgroup's "0::" line), or undefined. */
export function ownCgroup(): string | undefined {
  const mount = cgroup2Mount();
  if (!mount) return undefined;
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    if (!line) return undefined;
    return join(mount, line.slice(3));
  } catch {
    return undefined;
  }
}

/**
 * Makes a containment for one process tree named after `label` (letters, digits, '.', '_', '-').
 * Effects: in cgroup mode, creates `<parent>/plugin-release/<instance>` (the agent stays where it is: the
 * new cgroups are leaves, so cgroup v2's no-internal-processes rule does not bite; only enabling
 * controllers for limits needs a process-free parent, see applyLimits). Falls back to the marker when the
 * directory cannot be made, unless mode is `cgroup` (then it throws). Never throws in `auto`/`marker`.
 */
export async function createContainment(label: string, opts: ContainmentOptions = {}): Promise<Containment> {
  const { mode, cgroupParent } = containmentDefaults(opts);
  const instance = `${label.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64)}-${randomBytes(6).toString('hex')}`;
  if (mode === 'marker') return { record: { instance } };
  const parent = cgroupParent ?? ownCgroup();
  let reason: string;
  if (!parent) {
    reason = 'no cgroup2 hierarchy is mounted';
  } else {
    const cgroup = join(parent, CGROUP_SUBTREE, instance);
    try {
      await mkdir(cgroup, { recursive: true });
      return { record: { instance, cgroup } };
    } catch (error) {
      reason = `the agent cannot create ${cgroup}: ${(error as Error).message}`;
    }
  }
  if (mode === 'cgroup') throw new Error(`No cgroup for ${instance}: ${reason}.`);
  return { record: { instance }, noCgroupReason: reason };
}

/** Moves `pid` into the containment's cgroup. Throws when the kernel refuses (the caller falls back). */
export function joinCgroup(record: ContainmentRecord, pid: number): void {
  if (record.cgroup) writeFileSync(join(record.cgroup, 'cgroup.procs'), `${pid}\n`);
}

/** The pids in a cgroup (empty when it is gone). */
export function cgroupMembers(cgroup: string): number[] {
  try {
    return readFileSync(join(cgroup, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** Every pid whose start-time environment carries `INSTANCE_ENV=instance` (zombies have none). */
export function markedProcesses(instance: string, env = INSTANCE_ENV): number[] {
  return processesWithEnv(`${env}=${instance}`);
}

/** Every pid whose start-time environment holds the exact entry `entry` ("NAME=value"). */
export function processesWithEnv(entry: string): number[] {
  const found: number[] = [];
  const needle = Buffer.from(`\0${entry}\0`);
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const name of names) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${name}/environ`);
      const padded = Buffer.concat([Buffer.from([0]), environ, Buffer.from([0])]);
      if (padded.includes(needle)) found.push(pid);
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return found;
}

/**
 * SIGKILLs every process of the containment and removes its cgroup. Resolves with how many processes it
 * killed once none is left (or after `timeoutMs`). Safe on a containment that is already empty or gone.
 * Cgroup: `cgroup.kill` (kernel ≥ 5.14), else SIGKILL to each pid in cgroup.procs, repeated until empty.
 * Marker: scan /proc and SIGKILL every marked pid, repeated until a scan finds none (a fork between scan
 * and kill is caught by the next scan). Both run when both exist.
 */
export async function killContainment(record: ContainmentRecord, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const killed = new Set<number>();
  for (let round = 0; ; round++) {
    const members = new Set<number>();
    if (record.cgroup) {
      for (const pid of cgroupMembers(record.cgroup)) members.add(pid);
      if (members.size > 0) {
        try {
          writeFileSync(join(record.cgroup, 'cgroup.kill'), '1');
        } catch {
          // an older kernel: kill the members one by one below
        }
      }
    }
    for (const pid of markedProcesses(record.instance)) members.add(pid);
    for (const pid of members) {
      killed.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (members.size === 0 || Date.now() >= deadline) break;
    await sleep(round < 5 ? 5 : 25);
  }
  if (record.cgroup) await removeCgroup(record.cgroup, deadline);
  return killed.size;
}

async function removeCgroup(cgroup: string, deadline: number): Promise<void> {
  for (;;) {
    try {
      await rmdir(cgroup);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // EBUSY: killed members are still exiting; anything else (ENOENT...) means nothing to remove.
      if (code !== 'EBUSY' || Date.now() >= deadline) return;
      await sleep(10);
    }
  }
}

/**
 * The shell script that holds a process at a gate until the agent moved it into its cgroup, then execs
 * the real command ("$@"). The agent writes a line to fd 3 after writing the pid to cgroup.procs; if the
 * agent dies first, fd 3 reaches EOF and the gate exits 125 without ever running the command, so no
 * process runs outside its cgroup, not even for the microseconds between spawn and the move.
 */
export const GATE_SCRIPT = 'IFS= read -r go <&3 || exit 125; exec 3<&-; exec "$@"';
export const GATE_SHELL = '/bin/sh';

/** Memory and CPU limits for one containment, as the spec gives them (Kubernetes quantities). */
export interface ResourceLimits {
  /** memory.max: bytes with an optional binary or decimal suffix, "256Mi", "1G", "1048576". */
  memoryMax?: string;
  /** cpu.max: Kubernetes CPU, "500m" (half a core) or "2" (two cores). */
  cpuMax?: string;
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};
/** The period cpu.max quotas are expressed in: 100 ms, the kernel's (and the kubelet's) default. */
export const CPU_PERIOD_US = 100_000;

/** Bytes of a memory quantity ("256Mi" → 268435456), or undefined when it is not one. */
export function parseMemoryMax(quantity: string): number | undefined {
  const match = /^([0-9]+)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/.exec(quantity);
  if (!match) return undefined;
  const bytes = Number(match[1]) * (MEMORY_UNITS[match[2] ?? ''] ?? 1);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/** The cpu.max line of a CPU quantity ("500m" → "50000 100000"), or undefined when it is not one. */
export function parseCpuMax(quantity: string): string | undefined {
  const match = /^(?:([0-9]+)m|([0-9]+(?:\.[0-9]{1,3})?))$/.exec(quantity);
  if (!match) return undefined;
  const millicores = match[1] !== undefined ? Number(match[1]) : Math.round(Number(match[2]) * 1000);
  if (millicores <= 0) return undefined;
  // The kernel refuses quotas below 1 ms.
  return `${Math.max(1000, (millicores * CPU_PERIOD_US) / 1000)} ${CPU_PERIOD_US}`;
}

/**
 * Writes the limits into the containment's cgroup before any process joins it. Enables the controllers
 * they need (memory, cpu) in `<parent>/cgroup.subtree_control` and `<parent>/plugin-release/...`; the
 * parent must then have no processes of its own (cgroup v2's no-internal-processes rule), so with the
 * default parent (the agent's own cgroup) this works only when that is the root cgroup or a delegated,
 * process-free one (docs/containment.md). Returns undefined when every limit is in place, else a sentence
 * saying which limit was not applied and why. Never throws.
 */
export function applyLimits(record: ContainmentRecord, limits: ResourceLimits): string | undefined {
  const wanted: { controller: 'memory' | 'cpu'; file: string; value: string }[] = [];
  const problems: string[] = [];
  if (limits.memoryMax !== undefined) {
    const bytes = parseMemoryMax(limits.memoryMax);
    if (bytes === undefined) problems.push(`memoryMax ${JSON.stringify(limits.memoryMax)} is not a quantity`);
    else wanted.push({ controller: 'memory', file: 'memory.max', value: String(bytes) });
  }
  if (limits.cpuMax !== undefined) {
    const line = parseCpuMax(limits.cpuMax);
    if (line === undefined) problems.push(`cpuMax ${JSON.stringify(limits.cpuMax)} is not a CPU quantity`);
    else wanted.push({ controller: 'cpu', file: 'cpu.max', value: line });
  }
  if (wanted.length > 0 && !record.cgroup) {
    problems.push('the plugin has no cgroup (the environment-marker fallback cannot limit anything)');
  } else if (record.cgroup) {
    const subtree = join(record.cgroup, '..');
    const parent = join(subtree, '..');
    for (const { controller, file, value } of wanted) {
      try {
        for (const dir of [parent, subtree]) {
          const available = readFileSync(join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/);
          if (!available.includes(controller)) {
            throw new Error(`the ${controller} controller is not available in ${dir} (cgroup.controllers)`);
          }
          const enabled = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
          if (!enabled.includes(controller))
            writeFileSync(join(dir, 'cgroup.subtree_control'), `+${controller}`);
        }
        writeFileSync(join(record.cgroup, file), value);
      } catch (error) {
        const why =
          (error as NodeJS.ErrnoException).code === 'EBUSY'
            ? `${parent} has processes of its own`
            : (error as Error).message;
        problems.push(`${file} could not be set: ${why}`);
      }
    }
  }
  if (problems.length === 0) return undefined;
  return `Resource limits were not applied: ${problems.join('; ')}.`;
}
