// The dev cluster's public API: start an in-process Kubernetes API server over HTTPS on loopback,
// with its kubeconfig, simulated nodes (Node objects plus per-node directories), faults, request
// counts and restart. See docs/devcluster.md.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { arch, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { stringify } from 'yaml';
import { Api } from './api.ts';
import { builtinTypes } from './builtins.ts';
import { Controllers } from './controllers.ts';
import { type CrdObject, DEFAULT_CRD_DIR, establishedCrd, readCrds, typesFromCrd } from './crds.ts';
import { type KubeObject, nowRfc3339, ResourceRegistry } from './resources.ts';
import { ApiServer } from './server.ts';
import { ApiError } from './status.ts';
import { Store } from './store.ts';
import { createServingCertificate } from './tls.ts';

export interface DevClusterOptions {
  /** 0 (default) = ephemeral loopback port. */
  port?: number;
  /** Where kubeconfig + node dirs live; default: a fresh mkdtemp under os.tmpdir() (removed by stop()). */
  dir?: string;
  /** Simulated nodes; a number N means node-1..node-N. */
  nodes?: number | Array<{ name: string; labels?: Record<string, string> }>;
  /** Events retained for watch resume; an older resourceVersion answers 410 Gone (default 1000). */
  watchHistory?: number;
  logger?: Logger;
  /** Directory of CRD YAML files to serve (default: the repository's crds/). */
  crdDir?: string;
  /** How often an idle watch with allowWatchBookmarks gets a BOOKMARK (default 60 s, as the real server). */
  bookmarkIntervalMs?: number;
  /** Keep a default temporary dir after stop() (a given `dir` is never removed). */
  keepDir?: boolean;
  /** Hook for the agent issue: called after a simulated node is added (at start and by addNode). */
  onNodeAdded?(node: SimulatedNode): void | Promise<void>;
  /** Hook called before a simulated node's Node object is deleted. */
  onNodeRemoved?(node: SimulatedNode): void | Promise<void>;
}

export interface SimulatedNode {
  name: string;
  labels: Record<string, string>;
  /** <dir>/nodes/<name>/root (agent --root). */
  root: string;
  /** <dir>/nodes/<name>/staging (agent --staging-root). */
  stagingRoot: string;
}

export interface Faults {
  /** End every open watch stream now (the clients see the stream end and re-watch). */
  dropWatches(): void;
  /** Answer the next `count` requests with this status (and a Retry-After header when given). */
  failNext(count: number, status: 500 | 429 | 503, retryAfterSeconds?: number): void;
  /** Delay every response by `ms` (0 clears). */
  delay(ms: number): void;
  clear(): void;
}

export interface RequestCount {
  verb: string;
  resource: string;
  subresource?: string;
  count: number;
}

export interface DevCluster {
  /** e.g. https://127.0.0.1:34567 */
  url: string;
  /** Bearer token. */
  token: string;
  /** <dir>/kubeconfig, written at start; context "devcluster", namespace "default". */
  kubeconfigPath: string;
  dir: string;
  /** Live list of the simulated nodes. */
  nodes: SimulatedNode[];
  addNode(name: string, labels?: Record<string, string>): Promise<SimulatedNode>;
  removeNode(name: string): Promise<void>;
  faults: Faults;
  /** Server-side counts since start/reset; verb is the Kubernetes verb. */
  requestCounts(): RequestCount[];
  resetRequestCounts(): void;
  /** Close the listener and all watches, keep the data, listen again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

/** The kubeconfig a client needs: server, CA (the self-signed serving certificate) and token. */
export function kubeconfigYaml(url: string, caPem: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'devcluster',
        cluster: { server: url, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
      },
    ],
    users: [{ name: 'devcluster', user: { token } }],
    contexts: [
      { name: 'devcluster', context: { cluster: 'devcluster', user: 'devcluster', namespace: 'default' } },
    ],
    'current-context': 'devcluster',
    preferences: {},
  });
}

function nodeObject(name: string, labels: Record<string, string>): KubeObject {
  const now = nowRfc3339();
  const goArch = arch() === 'x64' ? 'amd64' : arch();
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': goArch,
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': goArch,
        ...labels,
      },
    },
    spec: {},
    status: {
      capacity: { cpu: '2', memory: '4Gi', pods: '110' },
      allocatable: { cpu: '2', memory: '4Gi', pods: '110' },
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
          reason: 'KubeletReady',
          message: 'simulated node of the dev cluster is ready',
        },
      ],
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: name },
      ],
      nodeInfo: {
        machineID: '',
        systemUUID: '',
        bootID: '',
        kernelVersion: release(),
        osImage: 'devcluster simulated node',
        containerRuntimeVersion: 'devcluster://0.1.0',
        kubeletVersion: 'v1.32.0-devcluster',
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: goArch,
      },
    },
  };
}

/**
 * Starts the dev cluster: loads the CRDs, seeds the system namespaces, creates the simulated nodes
 * and their directories, listens on 127.0.0.1 over HTTPS and writes the kubeconfig.
 */
export async function startDevCluster(options: DevClusterOptions = {}): Promise<DevCluster> {
  const logger =
    options.logger ?? pino({ level: process.env.DEVCLUSTER_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const createdDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'devcluster-')));
  await mkdir(dir, { recursive: true });

  const api = seededApi(readCrds(options.crdDir ?? DEFAULT_CRD_DIR), options.watchHistory ?? 1000);
  const controllers = new Controllers(api, (message, error) => logger.error({ err: error }, message));
  const cert = createServingCertificate();
  const token = randomBytes(24).toString('base64url');
  const server = new ApiServer(api, {
    token,
    cert: cert.cert,
    key: cert.key,
    logger,
    watch: { bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000, maxBufferedBytes: 64 * 1024 * 1024 },
  });
  const port = await server.listen(options.port ?? 0);
  const url = `https://127.0.0.1:${port}`;
  const kubeconfigPath = join(dir, 'kubeconfig');
  await writeFile(kubeconfigPath, kubeconfigYaml(url, cert.cert, token), { mode: 0o600 });

  const nodes = new SimulatedNodes(api, dir, options);
  const requested = options.nodes ?? 0;
  const initial =
    typeof requested === 'number'
      ? Array.from({ length: requested }, (_, i) => ({ name: `node-${i + 1}`, labels: {} }))
      : requested;
  for (const n of initial) await nodes.add(n.name, n.labels ?? {});

  let stopped = false;
  logger.info({ url, dir, nodes: nodes.list.length }, 'devcluster: ready');
  return {
    url,
    token,
    kubeconfigPath,
    dir,
    nodes: nodes.list,
    addNode: (name, labels) => nodes.add(name, labels),
    removeNode: (name) => nodes.remove(name),
    faults: faultsOf(server),
    requestCounts: () => server.requestCounts(),
    resetRequestCounts: () => server.resetRequestCounts(),
    async restart() {
      await server.close();
      await server.listen(port);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      controllers.stop();
      await server.close();
      if (createdDir && !options.keepDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The registry over a fresh store, serving the built-in types and `crds`, with the system namespaces and the CRDs stored. */
function seededApi(crds: CrdObject[], watchHistory: number): Api {
  const types = new ResourceRegistry();
  for (const t of builtinTypes()) types.add(t);
  for (const crd of crds) for (const t of typesFromCrd(crd)) types.add(t);
  const customStorages = new Set(types.all.filter((t) => t.custom).map((t) => t.storage));
  const store = new Store(watchHistory, (storage) => customStorages.has(storage));
  const api = new Api(store, types);
  const namespaces = types.lookup('', 'v1', 'namespaces')!;
  for (const ns of SYSTEM_NAMESPACES)
    api.create(namespaces, undefined, { metadata: { name: ns } }, { fieldManager: 'kube-apiserver' });
  const crdType = types.lookup('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
  const now = nowRfc3339();
  for (const crd of crds) {
    // Stored directly: CRDs are served read-only, so they never pass the write path.
    const object = establishedCrd(crd, now) as KubeObject;
    object.metadata = { ...object.metadata, uid: randomUUID(), creationTimestamp: now, generation: 1 };
    store.put(crdType.storage, object.metadata.name!, object);
  }
  return api;
}

/** The simulated nodes: a Node object each, and a root and a staging directory under `<dir>/nodes/<name>`. */
class SimulatedNodes {
  /** Live: the cluster's `nodes` is this array. */
  readonly list: SimulatedNode[] = [];
  readonly #api: Api;
  readonly #dir: string;
  readonly #hooks: Pick<DevClusterOptions, 'onNodeAdded' | 'onNodeRemoved'>;

  constructor(api: Api, dir: string, hooks: Pick<DevClusterOptions, 'onNodeAdded' | 'onNodeRemoved'>) {
    this.#api = api;
    this.#dir = dir;
    this.#hooks = hooks;
  }

  get #type() {
    return this.#api.types.lookup('', 'v1', 'nodes')!;
  }

  async add(name: string, labels: Record<string, string> = {}): Promise<SimulatedNode> {
    const base = join(this.#dir, 'nodes', name);
    const node: SimulatedNode = {
      name,
      labels: { ...labels },
      root: join(base, 'root'),
      stagingRoot: join(base, 'staging'),
    };
    await mkdir(node.root, { recursive: true });
    await mkdir(node.stagingRoot, { recursive: true });
    this.#api.create(this.#type, undefined, nodeObject(name, labels), { fieldManager: 'kubelet' });
    this.list.push(node);
    await this.#hooks.onNodeAdded?.(node);
    return node;
  }

  /** Deletes the Node object (already gone is fine), after the onNodeRemoved hook. */
  async remove(name: string): Promise<void> {
    const index = this.list.findIndex((n) => n.name === name);
    if (index >= 0) await this.#hooks.onNodeRemoved?.(this.list[index]!);
    try {
      this.#api.delete(this.#type, undefined, name, { propagationPolicy: 'Background' });
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 404)) throw error;
    }
    if (index >= 0) this.list.splice(index, 1);
  }
}

/** The fault switches tests turn on the server. */
function faultsOf(server: ApiServer): Faults {
  return {
    dropWatches: () => server.dropWatches(),
    failNext: (count, status, retryAfterSeconds) => {
      server.faults.failNext = { count, status, retryAfterSeconds };
    },
    delay: (ms) => {
      server.faults.delayMs = Math.max(0, ms);
    },
    clear: () => {
      server.faults.failNext = { count: 0, status: 500 };
      server.faults.delayMs = 0;
    },
  };
}
