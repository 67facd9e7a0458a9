// Writes PluginActivations (create, status merge patch) over one pool of keep-alive HTTPS connections,
// for benchmarks that stand in for many clients from one process: the same requests as src/kube
// makes, without a TLS handshake per request (client-node 2.0.1 opens a new connection for each).
import { Agent, request } from 'node:https';
import type { PluginActivation } from '../../src/api/index.ts';
import {
  ACTIVATIONS,
  errorFromStatus,
  type KubeConfig,
  type KubeStatus,
  serverUrl,
} from '../../src/kube/index.ts';

export class ActivationWriter {
  readonly #base: string;
  readonly #agent: Agent;
  readonly #headers: Record<string, string>;
  readonly #fieldManager: string;

  private constructor(base: string, agent: Agent, headers: Record<string, string>, fieldManager: string) {
    this.#base = base;
    this.#agent = agent;
    this.#headers = headers;
    this.#fieldManager = fieldManager;
  }

  /** A writer with the kubeconfig's server, CA and credentials, and at most `maxSockets` connections. */
  static async create(
    kubeConfig: KubeConfig,
    maxSockets: number,
    fieldManager: string,
  ): Promise<ActivationWriter> {
    const options: { headers?: Record<string, string> } = {};
    await kubeConfig.applyToHTTPSOptions(options as Parameters<KubeConfig['applyToHTTPSOptions']>[0]);
    const { headers = {}, ...tls } = options;
    const agent = new Agent({ ...tls, keepAlive: true, maxSockets });
    const { group, version } = ACTIVATIONS;
    return new ActivationWriter(
      `${serverUrl(kubeConfig)}/apis/${group}/${version}/namespaces`,
      agent,
      headers,
      fieldManager,
    );
  }

  /** POSTs `activation` into its namespace; resolves with the created object. */
  create(activation: PluginActivation): Promise<PluginActivation> {
    const namespace = activation.metadata.namespace ?? 'default';
    return this.#send('POST', `${namespace}/${ACTIVATIONS.plural}`, 'application/json', activation);
  }

  /** One merge patch of `namespace/name`'s status subresource; resolves with the object. */
  patchStatus(namespace: string, name: string, patch: unknown): Promise<PluginActivation> {
    return this.#send(
      'PATCH',
      `${namespace}/${ACTIVATIONS.plural}/${name}/status`,
      'application/merge-patch+json',
      patch,
    );
  }

  close(): void {
    this.#agent.destroy();
  }

  #send(method: string, path: string, contentType: string, payload: unknown): Promise<PluginActivation> {
    const body = JSON.stringify(payload);
    const url = `${this.#base}/${path}?fieldManager=${encodeURIComponent(this.#fieldManager)}`;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent: this.#agent,
          headers: {
            ...this.#headers,
            'Content-Type': contentType,
            'Content-Length': Buffer.byteLength(body),
            Accept: 'application/json',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            try {
              const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
              if ((res.statusCode ?? 500) >= 300)
                reject(errorFromStatus(json as KubeStatus, `${method} ${path}`));
              else resolve(json as PluginActivation);
            } catch (error) {
              reject(error);
            }
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}
