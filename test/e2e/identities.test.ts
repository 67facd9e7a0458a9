// The controller and the agents as processes under their own identities on a real API server: deploy/rbac
// bound to the users of shared/realkube's kubeconfig-controller and kubeconfig-agent-N (or those named by
// E2E_CONTROLLER_KUBECONFIG and E2E_AGENT_KUBECONFIGS). Proves the grants are enough (roll out, canary,
// fail, retry, delete with the real garbage collector, leader election between two controllers) and no
// more (what each identity is refused), and that a component without its grants fails fast.
// Runs only against a real cluster: the dev cluster has no RBAC.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { writeEchoConfig } from '../../dev/demo/echo.ts';
import { servingVersion } from '../../dev/demo/traffic.ts';
import { stopOrphan } from '../../src/agent/runtime/index.ts';
import {
  Annotations,
  API_VERSION,
  type PluginActivation,
  type PluginRelease,
  type PluginReleaseSpecInput,
} from '../../src/api/index.ts';
import {
  createKubeClients,
  type KubeApiError,
  type KubeClients,
  loadKubeConfig,
  type ResourceStore,
} from '../../src/kube/index.ts';
import { exited, freePort, until } from '../support/processes.ts';
import { KUBECTL, REAL, stagedPlugin } from './support.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/plugin-release.js');
const beside = (name: string) => join(dirname(process.env.KUBECONFIG ?? ''), name);
const CONTROLLER_KC = process.env.E2E_CONTROLLER_KUBECONFIG ?? beside('kubeconfig-controller');
const AGENT_KCS = (
  process.env.E2E_AGENT_KUBECONFIGS?.split(',') ?? [1, 2, 3].map((n) => beside(`kubeconfig-agent-${n}`))
).filter((path) => existsSync(path));
const IDENTITIES = REAL && existsSync(CONTROLLER_KC) && AGENT_KCS.length >= 3;
const SYSTEM = 'plugin-release-system';
const SELECTOR = { 'pluginrelease.io/e2e': 'identities' };

let dir: string;
let admin: KubeClients;
let namespace: string;
const nodes = [1, 2, 3].map((n) => `plr-id-node-${n}`);
const roots = new Map<string, string>();
const children: (ChildProcess & { output: () => string })[] = [];
let nobodyKubeconfig: string;

const kubectl = (...args: string[]) =>
  run(KUBECTL, ['--kubeconfig', process.env.KUBECONFIG ?? '', ...args], { timeout: 60_000 });

function start(args: string[]): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const withOutput = Object.assign(child, { output: () => output });
  children.push(withOutput);
  return withOutput;
}

function controller(kubeconfig: string, port: number) {
  return start([
    'controller',
    '--kubeconfig',
    kubeconfig,
    '--leader-elect',
    '--lease-namespace',
    SYSTEM,
    '--leader-elect-lease-duration',
    '4',
    '--metrics-addr',
    `127.0.0.1:${port}`,
    '--cache-sync-timeout',
    '30',
    '--log-level',
    'warn',
  ]);
}

function agent(kubeconfig: string, node: string) {
  return start([
    'agent',
    '--kubeconfig',
    kubeconfig,
    '--node',
    node,
    '--root',
    roots.get(node) ?? join(dir, 'nobody-root'),
    '--staging-root',
    join(dir, 'staging'),
    '--fronts',
    'local',
    '--cache-sync-timeout',
    '30',
    '--log-level',
    'warn',
  ]);
}

/** A kubeconfig like the controller's, for a ServiceAccount token that nothing grants anything. */
async function kubeconfigFor(token: string): Promise<string> {
  const config = parse(await readFile(CONTROLLER_KC, 'utf8'));
  config.users = [{ name: 'nobody', user: { token } }];
  config.contexts[0].context.user = 'nobody';
  const path = join(dir, 'kubeconfig-nobody');
  await writeFile(path, stringify(config), { mode: 0o600 });
  return path;
}

/** The API server's answer to `call`: 'ok', or the HTTP status it refused with. */
async function answer(call: () => Promise<unknown>): Promise<'ok' | number> {
  try {
    await call();
    return 'ok';
  } catch (error) {
    // A KubeApiError from src/kube, or client-node's own ApiException (Secrets go straight to CoreV1Api).
    const e = error as Partial<KubeApiError> & { code?: number };
    return e.statusCode ?? e.code ?? -1;
  }
}

const release = (name: string) => admin.releases.get({ namespace, name });
const untilRelease = (name: string, check: (r: PluginRelease) => boolean, what: string) =>
  until(
    `${name} ${what}`,
    async () => {
      const r = await release(name);
      return r.status?.observedGeneration === r.metadata.generation && check(r) ? r : undefined;
    },
    90_000,
  );
const frontOf = (node: string, plugin: string) =>
  join(roots.get(node) ?? '', 'plugins', plugin, 'front.sock');

async function apply(name: string, spec: PluginReleaseSpecInput, annotations?: Record<string, string>) {
  const existing = await release(name).catch(() => undefined);
  if (!existing) {
    return admin.releases.create({
      apiVersion: API_VERSION,
      kind: 'PluginRelease',
      metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
      spec,
    } as PluginRelease);
  }
  return admin.releases.replace({
    ...existing,
    metadata: { ...existing.metadata, annotations: { ...existing.metadata.annotations, ...annotations } },
    spec: spec as PluginRelease['spec'],
  });
}

beforeAll(async () => {
  if (!IDENTITIES) return;
  dir = await mkdtemp(join(tmpdir(), 'plr-identities-'));
  await kubectl('apply', '-f', join(ROOT, 'deploy/namespace.yaml'));
  await kubectl('apply', '-f', join(ROOT, 'crds'));
  await kubectl('apply', '-f', join(ROOT, 'deploy/rbac'));
  admin = createKubeClients(loadKubeConfig(process.env.KUBECONFIG));
  const core = admin.kubeConfig.makeApiClient(CoreV1Api);
  for (const name of nodes) {
    await core.deleteNode({ name }).catch(() => {});
    await core.createNode({ body: { metadata: { name, labels: SELECTOR } } });
    roots.set(name, join(dir, 'nodes', name));
  }
  namespace = `plr-id-${Date.now().toString(36)}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  // A ServiceAccount no role is bound to, and a token for it (TokenRequest, GA since 1.20).
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'nobody' } } });
  const token = await core.createNamespacedServiceAccountToken({
    namespace,
    name: 'nobody',
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  nobodyKubeconfig = await kubeconfigFor(token.status?.token ?? '');
  // RBAC is cached by the API server: wait until the bindings just applied are in force.
  await until(
    'the controller grants to be in force',
    async () => {
      const { stdout } = await run(KUBECTL, [
        '--kubeconfig',
        CONTROLLER_KC,
        'auth',
        'can-i',
        'create',
        'pluginactivations.pluginrelease.io',
        '-A',
      ]);
      return stdout.trim() === 'yes' ? true : undefined;
    },
    20_000,
  );
}, 120_000);

afterAll(async () => {
  if (!IDENTITIES) return;
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(children.map(exited));
  // Plugin processes outlive their agents by design; this test owns them, so it stops them.
  for (const root of roots.values()) {
    for (const plugin of await readdir(join(root, 'plugins')).catch(() => [])) {
      const runs = join(root, 'plugins', plugin, 'run');
      const dirs = await readdir(runs).catch(() => []);
      await Promise.all(dirs.map((d) => stopOrphan(join(runs, d), 1000)));
    }
  }
  const core = admin.kubeConfig.makeApiClient(CoreV1Api);
  await core.deleteNamespace({ name: namespace }).catch(() => {});
  for (const name of nodes) await core.deleteNode({ name }).catch(() => {});
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!IDENTITIES)('the components under their own identities', { timeout: 180_000 }, () => {
  it('installs from deploy/ on 1.22 or later, and from deploy-compat/kubernetes-1.20 before', async () => {
    const { stdout } = await kubectl('version', '-o', 'json');
    const minor = Number.parseInt(JSON.parse(stdout).serverVersion.minor, 10);
    const dryRun = (dir: string) =>
      kubectl('apply', '-k', join(ROOT, dir), '--dry-run=server').then(
        () => 'ok',
        (error: { stderr?: string }) => error.stderr ?? String(error),
      );
    if (minor >= 22) {
      expect(await dryRun('deploy')).toBe('ok');
    } else {
      // What deploy/ says on an older server: the two things the compat overlay changes, by name.
      const refused = await dryRun('deploy');
      expect(refused).toMatch(
        /unknown field "maxSurge"|no matches for kind "PodDisruptionBudget" in version "policy\/v1"/,
      );
      expect(await dryRun('deploy-compat/kubernetes-1.20')).toBe('ok');
    }
  });

  it('fails fast, naming the verb and the resource, when its identity may not list what it caches', async () => {
    const started = Date.now();
    const c = controller(nobodyKubeconfig, await freePort());
    const a = agent(nobodyKubeconfig, 'plr-id-nobody');
    expect(await exited(c)).toBe(1);
    expect(await exited(a)).toBe(1);
    // Well inside the 30 s sync timeout: a refused list is final.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(c.output()).toMatch(/cannot start: caches did not sync \(the API server refused a list\)/);
    expect(c.output()).toMatch(/list pluginreleases\.pluginrelease\.io.*forbidden.*cannot list resource/);
    expect(c.output()).toMatch(/list pluginactivations\.pluginrelease\.io/);
    expect(a.output()).toMatch(/list pluginactivations\.pluginrelease\.io.*forbidden/);
    expect(`${c.output()}${a.output()}`).not.toMatch(/\n\s+at /); // no stack trace
  });

  // Plugin names of its own: one plugin per node, and other suites' releases of "echo" may still be
  // terminating on this shared cluster (their controller would not be this one).
  it('rolls out, stops a broken canary, retries, and deletes through the garbage collector', async () => {
    controller(CONTROLLER_KC, await freePort());
    for (const [i, node] of nodes.entries()) agent(AGENT_KCS[i] ?? '', node);
    const plugin = stagedPlugin(join(dir, 'staging', 'rbac-echo'), 'rbac-echo');
    const rollout = { maxUnavailable: '100%', nodeSelector: SELECTOR };

    await apply('rbac-echo', await plugin.spec('1.0.0', { rollout }));
    const ready = await untilRelease('rbac-echo', (r) => r.status?.phase === 'Ready', 'Ready');
    expect(ready.status?.ready).toBe('3/3');
    const { stdout } = await kubectl(
      'wait',
      '-n',
      namespace,
      '--for=condition=Ready',
      'plr/rbac-echo',
      '--timeout=30s',
    );
    expect(stdout).toMatch(/condition met/);
    expect(await Promise.all(nodes.map((n) => servingVersion(frontOf(n, 'rbac-echo'))))).toEqual([
      '1.0.0',
      '1.0.0',
      '1.0.0',
    ]);

    // A release that is unhealthy until its flag files exist: the canary rejects it, the others stay.
    const v2 = await plugin.spec('2.0.0', { rollout: { ...rollout, canary: { nodes: 1 } } }, []);
    await apply('rbac-echo', v2);
    const stalled = await untilRelease('rbac-echo', (r) => r.status?.phase === 'Stalled', 'Stalled');
    expect(stalled.status?.conditions?.find((c) => c.type === 'Stalled')?.reason).toBe('RolloutHalted');
    expect(await Promise.all(nodes.map((n) => servingVersion(frontOf(n, 'rbac-echo'))))).toEqual([
      '1.0.0',
      '1.0.0',
      '1.0.0',
    ]);

    // The cause fixed on the nodes, the same spec retried: it rolls out.
    for (const node of nodes)
      await writeEchoConfig(join(dir, 'staging', 'rbac-echo', '2.0.0-flags', node), {});
    await apply('rbac-echo', v2, { [Annotations.retryAt]: String(Math.floor(Date.now() / 1000)) });
    await untilRelease('rbac-echo', (r) => r.status?.phase === 'Ready', 'Ready after the retry');
    expect(await Promise.all(nodes.map((n) => servingVersion(frontOf(n, 'rbac-echo'))))).toEqual([
      '2.0.0',
      '2.0.0',
      '2.0.0',
    ]);

    // Delete: the real garbage collector removes the activations the release owns.
    const owned = await admin.activations.list(namespace, {
      labelSelector: 'pluginrelease.io/release=rbac-echo',
    });
    expect(owned.items).toHaveLength(3);
    await admin.releases.delete({ namespace, name: 'rbac-echo' });
    await until(
      'the garbage collector to delete the activations',
      async () => {
        const left = await admin.activations.list(namespace, {
          labelSelector: 'pluginrelease.io/release=rbac-echo',
        });
        return left.items.length === 0 ? true : undefined;
      },
      60_000,
    );
  });

  it('refuses each identity what deploy/rbac does not grant it', async () => {
    const plugin = stagedPlugin(join(dir, 'staging', 'probe'), 'probe');
    await apply(
      'probe',
      await plugin.spec('1.0.0', { rollout: { maxUnavailable: '100%', nodeSelector: SELECTOR } }),
    );
    await untilRelease('probe', (r) => r.status?.phase === 'Ready', 'Ready');
    const activation = (
      await admin.activations.list(namespace, { labelSelector: 'pluginrelease.io/release=probe' })
    ).items[0] as PluginActivation;
    const ref = { namespace, name: activation.metadata.name ?? '' };
    const as = (kubeconfig: string) =>
      createKubeClients(loadKubeConfig(kubeconfig), { fieldManager: 'rbac-probe' });
    const agentId = as(AGENT_KCS[0] ?? '');
    const controllerId = as(CONTROLLER_KC);
    const secrets = (kc: string) => () =>
      loadKubeConfig(kc).makeApiClient(CoreV1Api).listNamespacedSecret({ namespace });
    const aRelease = {
      apiVersion: API_VERSION,
      kind: 'PluginRelease',
      metadata: { name: 'intruder', namespace },
      spec: await plugin.spec('9.9.9'),
    } as PluginRelease;
    const editSpec = (store: ResourceStore<PluginActivation> | ResourceStore<PluginRelease>) => () =>
      (store as ResourceStore<PluginActivation>).mergePatch(ref, { spec: { revision: 'tampered' } } as never);

    expect({
      'agent creates a release': await answer(() => agentId.releases.create(aRelease)),
      'agent edits a release spec': await answer(() =>
        agentId.releases.mergePatch({ namespace, name: 'probe' }, { spec: { version: '6.6.6' } } as never),
      ),
      'agent deletes a release': await answer(() => agentId.releases.delete({ namespace, name: 'probe' })),
      'agent creates an activation': await answer(() =>
        agentId.activations.create({ ...activation, metadata: { name: 'intruder', namespace } }),
      ),
      'agent edits an activation spec': await answer(editSpec(agentId.activations)),
      'agent deletes an activation': await answer(() => agentId.activations.delete(ref)),
      'agent reads Secrets': await answer(secrets(AGENT_KCS[0] ?? '')),
      'agent patches an activation status': await answer(() => agentId.activations.patchStatus(ref, {})),
      'controller writes an activation status': await answer(() =>
        controllerId.activations.patchStatus(ref, {}),
      ),
      'controller edits a release spec': await answer(() =>
        controllerId.releases.mergePatch({ namespace, name: 'probe' }, {
          spec: { version: '6.6.6' },
        } as never),
      ),
      'controller reads Secrets': await answer(secrets(CONTROLLER_KC)),
      'controller patches a release status': await answer(() =>
        controllerId.releases.patchStatus({ namespace, name: 'probe' }, {}),
      ),
    }).toEqual({
      'agent creates a release': 403,
      'agent edits a release spec': 403,
      'agent deletes a release': 403,
      'agent creates an activation': 403,
      'agent edits an activation spec': 403,
      'agent deletes an activation': 403,
      'agent reads Secrets': 403,
      'agent patches an activation status': 'ok',
      'controller writes an activation status': 403,
      'controller edits a release spec': 403,
      'controller reads Secrets': 403,
      'controller patches a release status': 'ok',
    });
    await admin.releases.delete({ namespace, name: 'probe' });
  });

  it('hands the work to a standby controller when the leader dies', async () => {
    const lease = () =>
      admin.kubeConfig
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: 'plugin-release-controller', namespace: SYSTEM });
    const leaderOf = async () => (await lease()).spec?.holderIdentity ?? undefined;
    // The first test's controller leads; a second one stands by.
    const first = children.find((c) => c.spawnargs.includes('controller') && c.exitCode === null);
    const standby = controller(CONTROLLER_KC, await freePort());
    const leader = await until('a leader', leaderOf);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await leaderOf()).toBe(leader); // the standby does not steal a renewed lease
    first?.kill('SIGKILL');
    await until(
      'the standby to take the lease',
      async () => ((await leaderOf()) !== leader ? true : undefined),
      30_000,
    );
    const plugin = stagedPlugin(join(dir, 'staging', 'after'), 'after');
    await apply(
      'after',
      await plugin.spec('1.0.0', { rollout: { maxUnavailable: '100%', nodeSelector: SELECTOR } }),
    );
    const r = await untilRelease('after', (x) => x.status?.phase === 'Ready', 'Ready under the new leader');
    expect(r.status?.ready).toBe('3/3');
    expect(standby.exitCode).toBeNull();
  });

  it('was never refused anything it needed: no component under its own identity logged a 403', () => {
    const own = children.filter((c) => !c.spawnargs.includes(nobodyKubeconfig));
    expect(own.length).toBeGreaterThanOrEqual(5);
    for (const c of own) expect(c.output()).not.toMatch(/forbidden|\b403\b/i);
  });
});
