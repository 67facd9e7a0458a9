// Shared CLI plumbing: flags parsed by node:util and validated by zod, and a clean stop on signals.
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
// Types only: the keeper uses UsageError and untilSignal, and must not load zod (keeper.ts).
import type { z } from 'zod';

/** Thrown for bad flags; the command prints the message and its help, and exits 1. */
export class UsageError extends Error {}

/**
 * Parses `argv` with `options` (long flags only, no positionals unless `positionals`), applies `env`
 * fallbacks for flags not given, and validates the result with `schema`.
 */
export function parseFlags<S extends z.ZodType>(
  argv: string[],
  options: ParseArgsOptionsConfig,
  schema: S,
  env: Record<string, string | undefined> = {},
): z.infer<S> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, options, strict: true }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const withEnv = {
    ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
    ...values,
  };
  const parsed = schema.safeParse(withEnv);
  if (!parsed.success) {
    // Name each problem by its flag, as the user typed it.
    throw new UsageError(
      parsed.error.issues
        .map((issue) =>
          issue.path.length > 0 ? `--${issue.path.join('.')}: ${issue.message}` : issue.message,
        )
        .join('; '),
    );
  }
  return parsed.data;
}

/** Resolves on the first SIGINT or SIGTERM (a second one exits at once). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.once(signal, () => process.exit(130));
      resolve(signal);
    };
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
}

/** A listen address: `host:port`, `:port` or `[::1]:port` (for z.string().regex). */
export const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/;
