// What the two long-running components, `plugin-release controller` and `plugin-release agent`, share on
// the command line: the cache-sync flag, and start-up failures reported in one line.
import type { Logger } from 'pino';
import { z } from 'zod';
import { PluginReleaseError } from '../runtime/errors.ts';

/** --cache-sync-timeout: seconds a component waits for its caches before it gives up starting. */
export const cacheSyncTimeout = () => z.coerce.number().positive().max(3600).default(60);

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
