// What client-node's config.js imports, as stand-ins that load the real thing on first use (see
// loader.ts, which points config.js here). KubeConfig needs them only for makeApiClient(),
// createDispatcher(), proxies and auth-provider users, none of which a token, certificate or exec
// kubeconfig without a proxy reaches: those stay unloaded, and with them about 100 MB resident.
import { createRequire } from 'node:module';
import { http } from '../runtime/node-http.ts';

const require = createRequire(import.meta.url);

/** A class whose constructor returns an instance of `load()`'s class, loaded on the first `new`. */
function onDemand<C extends new (...args: never[]) => object>(load: () => C): C {
  return class {
    constructor(...args: ConstructorParameters<C>) {
      // biome-ignore lint/correctness/noConstructorReturn: the stand-in hands out the real class's instance.
      return new (load())(...args);
    }
  } as unknown as C;
}

type Gen = typeof import('@kubernetes/client-node/dist/gen/index.js');
type Undici = typeof import('undici');
const gen = () => require('@kubernetes/client-node/dist/gen/index.js') as Gen;
const undici = () => require('undici') as Undici;

// ./gen/index.js: every generated API class and model (about 2,700 modules, 70 MB resident).
export function createConfiguration(...args: Parameters<Gen['createConfiguration']>) {
  return gen().createConfiguration(...args);
}
export const ServerConfiguration = onDemand(() => gen().ServerConfiguration);

// undici: its whole index (about 25 MB resident), for createDispatcher().
export const Agent = onDemand(() => undici().Agent);
export const ProxyAgent = onDemand(() => undici().ProxyAgent);

// js-yaml, for a kubeconfig file (about 1.4 MB resident): the in-cluster service account needs no YAML.
type JsYaml = typeof import('js-yaml');
export const load: JsYaml['load'] = (...args) => (require('js-yaml') as JsYaml).load(...args);

// socks-proxy-agent and socks, for a socks proxy-url.
export const SocksProxyAgent = onDemand(
  () => (require('socks-proxy-agent') as typeof import('socks-proxy-agent')).SocksProxyAgent,
);
export const SocksClient = {
  createConnection: (...args: Parameters<typeof import('socks')['SocksClient']['createConnection']>) =>
    (require('socks') as typeof import('socks')).SocksClient.createConnection(...args),
};

// node:http: as an ES module it also loads Node's bundled undici (src/runtime/node-http.ts).
export default http;

/** The interface config.js calls on each of its authenticators. */
interface Authenticator {
  isAuthProvider(user: { authProvider?: unknown }): boolean;
  applyAuthentication(user: { authProvider?: unknown }, opts: object): Promise<void>;
}

/**
 * ./azure_auth.js, ./gcp_auth.js, ./oidc_auth.js (jsonpath-plus, openid-client and through it Node's
 * own fetch): each is loaded when a user has an auth-provider, which every one of them requires first.
 */
function onDemandAuthenticator(module: string, name: string): new () => Authenticator {
  return class {
    #real: Authenticator | undefined;

    isAuthProvider(user: { authProvider?: unknown }): boolean {
      return Boolean(user?.authProvider) && this.#authenticator().isAuthProvider(user);
    }

    applyAuthentication(user: { authProvider?: unknown }, opts: object): Promise<void> {
      return this.#authenticator().applyAuthentication(user, opts);
    }

    #authenticator(): Authenticator {
      const Real = require(`@kubernetes/client-node/dist/${module}`)[name] as new () => Authenticator;
      this.#real ??= new Real();
      return this.#real;
    }
  };
}
export const AzureAuth = onDemandAuthenticator('azure_auth.js', 'AzureAuth');
export const GoogleCloudPlatformAuth = onDemandAuthenticator('gcp_auth.js', 'GoogleCloudPlatformAuth');
export const OpenIDConnectAuth = onDemandAuthenticator('oidc_auth.js', 'OpenIDConnectAuth');
