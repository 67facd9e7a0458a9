// Loading client-node's KubeConfig without the rest of client-node: a module resolution hook that
// points some of its config.js's imports at client-node-stand-ins.ts, which loads each on first use.
import module from 'node:module';
import { extname } from 'node:path';

// The stand-ins beside this file: .ts in a checkout, .js in the build (scripts/build.ts), which
// rewrites import specifiers but not this URL, and emits the stand-ins as an entry of their own.
const STAND_INS = new URL(`./client-node-stand-ins${extname(import.meta.filename)}`, import.meta.url).href;
/** config.js's imports that the stand-ins replace. */
const REPLACED = new Set([
  './gen/index.js',
  'undici',
  'js-yaml',
  'socks-proxy-agent',
  'socks',
  'node:http',
  './azure_auth.js',
  './gcp_auth.js',
  './oidc_auth.js',
]);

let registered = false;

/**
 * Registers the hook for this process; call it before anything imports src/kube. Idempotent.
 * Without it (e.g. under vitest) everything works the same, with client-node's full footprint.
 */
export function narrowClientNode(): void {
  if (registered) return;
  registered = true;
  module.registerHooks({
    resolve(specifier, context, next) {
      if (REPLACED.has(specifier) && context.parentURL?.endsWith('/@kubernetes/client-node/dist/config.js')) {
        return { url: STAND_INS, shortCircuit: true };
      }
      return next(specifier, context);
    },
  });
}
