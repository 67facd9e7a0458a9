// Logs, metrics and health endpoints of plugin-release processes.
//
// Contracts in brief:
// - createLogger({pretty?, level?}): the ONE pino root per process; JSON unless pretty (demo only).
//   reconcileLogger(root, key) → child with {reconcileId, key}; actionLogger(root, plugin, revision).
// - createMetrics(): a fresh prom-client Registry with the pluginrelease_* metrics; trackQueue(queue)
//   exports a WorkQueue's depth at scrape time.
// - startHealthServer({addr, registry, ready}): GET /metrics, /healthz, /readyz on host:port.
export {
  AddressError,
  type HealthServer,
  type HealthServerOptions,
  parseAddress,
  startHealthServer,
} from './health.ts';
export { actionLogger, createLogger, type Logger, type LoggerOptions, reconcileLogger } from './logger.ts';
export { createMetrics, METRIC_PREFIX, type Metrics, type MetricsOptions, Registry } from './metrics.ts';
