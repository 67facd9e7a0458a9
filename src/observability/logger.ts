// The one pino root logger, and the child loggers each reconcile and node action gets.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** Human-readable output (the demo); JSON otherwise, which is what production log pipelines want. */
  pretty?: boolean;
  /** Default "info"; "silent" for tests. */
  level?: Level | 'silent';
  /** Base fields on every line, e.g. { component: 'controller' }. */
  base?: Record<string, unknown>;
  /** Where JSON lines go (default stdout). Ignored when pretty. */
  destination?: DestinationStream;
}

/**
 * Creates the process's root logger: JSON lines with ISO timestamps and `err` serialised with its
 * stack and `code`. Pretty printing loads pino-pretty synchronously (a dev dependency, used by the
 * demo only), so a production install without it still logs JSON.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = {
    level: options.level ?? 'info',
    base: options.base ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: pino.stdSerializers.err },
  };
  if (options.pretty) {
    const pretty = loadPretty();
    if (pretty) return pino(settings, pretty({ colorize: process.stdout.isTTY ?? false, sync: true }));
  }
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/** A child logger for one reconcile of `key`, with a fresh short `reconcileId` to correlate its lines. */
export function reconcileLogger(root: Logger, key: string): Logger {
  return root.child({ reconcileId: randomBytes(4).toString('hex'), key });
}

/** A child logger for one node action on a plugin revision. */
export function actionLogger(root: Logger, plugin: string, revision: string): Logger {
  return root.child({ plugin, revision });
}

type PrettyFactory = (options: { colorize: boolean; sync: boolean }) => DestinationStream;

function loadPretty(): PrettyFactory | undefined {
  try {
    const mod = createRequire(import.meta.url)('pino-pretty') as PrettyFactory | { default: PrettyFactory };
    return typeof mod === 'function' ? mod : mod.default;
  } catch {
    return undefined;
  }
}
