// `plugin-release keeper`: hold an agent root's fronts in a small process of their own, so they keep
// serving while the agent crashes, restarts or is upgraded (src/agent/front/keeper.ts); with `--run`,
// also run the agent as its child and restart it when it crashes (the container's main process).
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { UsageError, untilSignal } from './flags.ts';

export const help = `Usage: plugin-release keeper --root <dir> [--takeover] [--hold-ms <ms>] [--log-level <level>]
                             [--run -- <plugin-release command and flags>]

Holds the listening sockets of every front under the agent root <dir> and forwards their connections to
the backend the agent last chose. The agent starts one on demand (detached) and drives it over
<dir>/keeper.sock; run it yourself to give it its own lifecycle (a container or a systemd unit).

Flags:
  --root <dir>          the agent root whose fronts this keeper holds
  --takeover            replace the keeper already serving <dir> without dropping a connection: listen
                        beside it, take its fronts and backends, then retire it
  --hold-ms <ms>        how long a new connection waits while its backend refuses (default 5000)
  --log-level <level>   trace, debug, info (default), warn, error
  --run -- <args>       also run \`plugin-release <args>\` (the agent) as a child: restart it after 1 s,
                        2 s, … 30 s when it fails; an exit 0 (it handed the root over, or stopped) is
                        final. SIGTERM goes to the child first. For a container whose main process must
                        outlive the agent: the agent's crash then restarts only the agent.

Exits when retired by a successor, on SIGTERM (fronts close), when <dir> is removed, or after 10 s
without a front to hold and without an agent connected. With --run it stays until SIGTERM instead, so a
retired keeper's container is not restarted (and does not take the fronts back).

Example (the agent DaemonSet's container):
  plugin-release keeper --root /var/lib/plugin-release/agent --takeover --run -- \\
    agent --node "$NODE_NAME" --root /var/lib/plugin-release/agent --takeover …`;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

interface Flags {
  root: string;
  takeover: boolean;
  holdMs: number | undefined;
  logLevel: (typeof LOG_LEVELS)[number];
}

/**
 * The keeper's four flags, checked by hand rather than with zod as the other commands' are: zod alone
 * is about 12 MB resident, and a keeper runs beside every agent (docs/benchmarks.md). Throws UsageError.
 */
function parseKeeperFlags(argv: string[]): Flags {
  let values: { root?: string; takeover?: boolean; 'hold-ms'?: string; 'log-level'?: string };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        root: { type: 'string' },
        takeover: { type: 'boolean' },
        'hold-ms': { type: 'string' },
        'log-level': { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (!values.root) throw new UsageError('--root is required');
  const holdMs = values['hold-ms'];
  if (holdMs !== undefined && !/^\d+$/.test(holdMs)) {
    throw new UsageError(`--hold-ms: must be a whole number of milliseconds, got "${holdMs}"`);
  }
  const logLevel = values['log-level'] ?? process.env.LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level: must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  return {
    root: values.root,
    takeover: values.takeover ?? false,
    holdMs: holdMs === undefined ? undefined : Number(holdMs),
    logLevel: logLevel as Flags['logLevel'],
  };
}

export async function main(argv: string[]): Promise<number> {
  const split = argv.indexOf('--');
  const child = split >= 0 ? argv.slice(split + 1) : undefined;
  let flags: Flags;
  try {
    if (argv.includes('--run') !== (child !== undefined && child.length > 0)) {
      throw new UsageError('--run needs the command to run after --, and -- needs --run');
    }
    flags = parseKeeperFlags(split >= 0 ? argv.slice(0, split).filter((a) => a !== '--run') : argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`plugin-release keeper: ${error.message}\n\n${help}`);
    return 1;
  }
  // Loaded only now, so --help and bad flags answer at once (docs/benchmarks.md, start-up).
  const [{ startKeeper }, { createLogger }] = await Promise.all([
    import('../agent/front/keeper.ts'),
    import('../observability/logger.ts'),
  ]);
  const logger = createLogger({ level: flags.logLevel }).child({ component: 'keeper' });
  let keeper: Awaited<ReturnType<typeof startKeeper>>;
  try {
    keeper = await startKeeper({
      root: flags.root,
      logger,
      takeover: flags.takeover,
      idleExit: !child,
      ...(flags.holdMs !== undefined ? { holdMs: flags.holdMs } : {}),
    });
  } catch (error) {
    console.error(`plugin-release keeper: ${(error as Error).message}`);
    return 1;
  }
  if (!child) {
    const signalled = untilSignal().then(() => keeper.stop());
    await Promise.race([keeper.stopped, signalled]);
  } else {
    const agent = superviseChild(child, logger);
    await untilSignal();
    await agent.stop();
    await keeper.stop();
  }
  if (keeper.retired) process.exit(0); // see RunningKeeper.retired: the successor's sockets must stay
  return 0;
}

const BIN = fileURLToPath(new URL('../../bin/plugin-release.js', import.meta.url));
const BACKOFF = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000 };

/**
 * Runs `plugin-release <args>` and restarts it with exponential backoff when it fails; an exit 0 is the
 * child's own decision (a hand-over, a clean stop) and is not restarted.
 */
function superviseChild(args: string[], logger: Logger): { stop(): Promise<void> } {
  let current: ChildProcess | undefined;
  let stopping = false;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  const start = () => {
    const startedAt = Date.now();
    const proc = spawn(process.execPath, [BIN, ...args], { stdio: 'inherit' });
    current = proc;
    logger.info({ pid: proc.pid, args }, 'started the agent');
    proc.once('exit', (code, signal) => {
      current = undefined;
      if (stopping) return;
      if (code === 0) {
        logger.info('the agent exited cleanly (it handed the root over, or stopped): not restarting it');
        return;
      }
      failures = Date.now() - startedAt > BACKOFF.resetAfterMs ? 1 : failures + 1;
      const delay = Math.min(BACKOFF.initialMs * 2 ** (failures - 1), BACKOFF.maxMs);
      logger.warn(
        { code, signal, restartInMs: delay },
        'the agent failed; the fronts keep serving while it restarts',
      );
      timer = setTimeout(start, delay);
    });
  };
  start();
  return {
    async stop() {
      stopping = true;
      clearTimeout(timer);
      const proc = current;
      if (!proc) return;
      const gone = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await gone;
    },
  };
}
