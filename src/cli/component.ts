// What the two long-running components, `plugin-release controller` and `plugin-release agent`, share on
// the command line: their common flags, bad flags answered with the help, start-up failures reported in
// one line, and a run until a signal.
import type { ParseArgsOptionsConfig } from 'node:util';
import type { Logger } from 'pino';
import { z } from 'zod';
import { PluginReleaseError } from '../runtime/errors.ts';
import { HOST_PORT, parseFlags, UsageError, untilSignal } from './flags.ts';

/** The flags every component takes, for its parseArgs table. */
export const commonOptions = {
  kubeconfig: { type: 'string' },
  'metrics-addr': { type: 'string' },
  'cache-sync-timeout': { type: 'string' },
  'log-level': { type: 'string' },
} as const satisfies ParseArgsOptionsConfig;

/** The same flags' schema, spread into each component's z.object. */
export const commonFlags = {
  kubeconfig: z.string().min(1).optional(),
  'metrics-addr': z.string().regex(HOST_PORT, 'must be host:port').optional(),
  /** Seconds a component waits for its caches before it gives up starting. */
  'cache-sync-timeout': z.coerce.number().positive().max(3600).default(60),
  'log-level': z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
};

/**
 * The component's flags: its own `options` plus the common ones, with `env` fallbacks ($LOG_LEVEL
 * for every component). Bad flags print the message and `help` on stderr and give undefined (exit 1).
 */
export function componentFlags<S extends z.ZodType>(
  command: string,
  help: string,
  argv: string[],
  options: ParseArgsOptionsConfig,
  schema: S,
  env: Record<string, string | undefined> = {},
): z.infer<S> | undefined {
  try {
    return parseFlags(argv, { ...options, ...commonOptions }, schema, {
      'log-level': process.env.LOG_LEVEL,
      ...env,
    });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`plugin-release ${command}: ${error.message}\n\n${help}`);
    return undefined;
  }
}

/**
 * Awaits a component's start-up. A failure a person can act on (a PluginReleaseError: caches that
 * cannot sync, a root another agent holds) becomes one fatal log line and undefined (exit 1), not a
 * stack trace; anything else is a bug and propagates.
 */
export async function started<T>(logger: Logger, starting: Promise<T>): Promise<T | undefined> {
  try {
    return await starting;
  } catch (error) {
    if (!(error instanceof PluginReleaseError)) throw error;
    logger.fatal({ err: error }, 'cannot start: %s', error.message);
    return undefined;
  }
}

/**
 * Logs `<command> running`, then waits for SIGINT or SIGTERM and stops the component (`stopping` is the
 * line that says so), or for `ended`: the component stopped by itself, and the line to log. Resolves
 * with the exit code: 0.
 */
export async function runUntilSignal(
  logger: Logger,
  command: string,
  component: { readonly metricsUrl: string | undefined; stop(): Promise<void> },
  options: { stopping?: string; ended?: Promise<string> } = {},
): Promise<number> {
  logger.info({ metrics: component.metricsUrl }, `${command} running`);
  const ended = options.ended?.then((line) => ({ line }));
  const first = await Promise.race(ended ? [untilSignal(), ended] : [untilSignal()]);
  if (typeof first === 'object') {
    logger.info(first.line);
    return 0;
  }
  logger.info({ signal: first }, options.stopping ?? 'stopping');
  await component.stop();
  return 0;
}
