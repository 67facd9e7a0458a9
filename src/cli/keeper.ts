// `plugin-release keeper`: hold an agent root's fronts in a small process of their own, so they keep
// serving while the agent crashes, restarts or is upgraded (src/agent/front/keeper.ts).
import { z } from 'zod';
import { startKeeper } from '../agent/front/keeper.ts';
import { createLogger } from '../observability/index.ts';
import { parseFlags, UsageError, untilSignal } from './flags.ts';

export const help = `Usage: plugin-release keeper --root <dir> [--takeover] [--hold-ms <ms>] [--log-level <level>]

Holds the listening sockets of every front under the agent root <dir> and forwards their connections to
the backend the agent last chose. The agent starts one on demand (detached) and drives it over
<dir>/keeper.sock; run it yourself to give it its own lifecycle (a container or a systemd unit).

Flags:
  --root <dir>          the agent root whose fronts this keeper holds
  --takeover            replace the keeper already serving <dir> without dropping a connection: listen
                        beside it, take its fronts and backends, then retire it
  --hold-ms <ms>        how long a new connection waits while its backend refuses (default 5000)
  --log-level <level>   trace, debug, info (default), warn, error

Exits when retired by a successor, on SIGTERM (fronts close), when <dir> is removed, or after 10 s
without a front to hold and without an agent connected.`;

const Flags = z.object({
  root: z.string({ error: '--root is required' }).min(1, '--root is required'),
  takeover: z.boolean().default(false),
  'hold-ms': z.coerce.number().int().min(0).optional(),
  'log-level': z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
});

export async function main(argv: string[]): Promise<number> {
  let flags: z.infer<typeof Flags>;
  try {
    flags = parseFlags(
      argv,
      {
        root: { type: 'string' },
        takeover: { type: 'boolean' },
        'hold-ms': { type: 'string' },
        'log-level': { type: 'string' },
      },
      Flags,
      { 'log-level': process.env.LOG_LEVEL },
    );
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`plugin-release keeper: ${error.message}\n\n${help}`);
    return 1;
  }
  const logger = createLogger({ level: flags['log-level'] }).child({ component: 'keeper' });
  let keeper: Awaited<ReturnType<typeof startKeeper>>;
  try {
    keeper = await startKeeper({
      root: flags.root,
      logger,
      takeover: flags.takeover,
      ...(flags['hold-ms'] !== undefined ? { holdMs: flags['hold-ms'] } : {}),
    });
  } catch (error) {
    console.error(`plugin-release keeper: ${(error as Error).message}`);
    return 1;
  }
  const signalled = untilSignal().then(() => keeper.stop());
  await Promise.race([keeper.stopped, signalled]);
  return 0;
}
