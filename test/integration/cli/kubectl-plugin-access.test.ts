// `kubectl pluginrelease` through the real kubectl binary against a bare dev cluster (no controller):
// finding the cluster and namespace as kubectl does, and saying clearly what is wrong when it cannot.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type DevCluster, startDevCluster } from '../../../dev/cluster/index.ts';
import { API_VERSION, type PluginRelease } from '../../../src/api/index.ts';
import { createKubeClients, loadKubeConfig } from '../../../src/kube/index.ts';
import { type Kubectl, kubectlPlugin, NODE, onPath, pluginBinDir, REPO, runProcess } from './support.ts';

const KUBECTL = onPath('kubectl');
/** A system node older than 24, if this machine has one (the plugin must refuse it clearly). */
const OLD_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find((file) => {
  if (!existsSync(file)) return false;
  return Number(execFileSync(file, ['-p', 'process.versions.node'], { encoding: 'utf8' }).split('.')[0]) < 24;
});
if (!KUBECTL)
  console.warn('kubectl is not on PATH: skipping the kubectl plugin tests (install kubectl to run them)');

describe.skipIf(!KUBECTL)('kubectl pluginrelease, finding its cluster', () => {
  let cluster: DevCluster;
  let bare: DevCluster;
  let binDir: string;
  let home: string;
  let kubectl: Kubectl;
  /** A kubeconfig with a second context, "team-a", whose namespace is team-a. */
  let twoContexts: string;

  beforeAll(async () => {
    const emptyCrdDir = await mkdtemp(join(tmpdir(), 'no-crds-'));
    [cluster, bare, binDir, home] = await Promise.all([
      startDevCluster({ nodes: 1 }),
      startDevCluster({ nodes: 1, crdDir: emptyCrdDir }),
      pluginBinDir(),
      mkdtemp(join(tmpdir(), 'kubectl-home-')),
    ]);
    kubectl = kubectlPlugin(KUBECTL ?? 'kubectl', binDir, home, cluster.kubeconfigPath);
    const config = parse(await readFile(cluster.kubeconfigPath, 'utf8'));
    config.contexts.push({
      name: 'team-a',
      context: { cluster: 'devcluster', user: 'devcluster', namespace: 'team-a' },
    });
    twoContexts = join(home, 'two-contexts.yaml');
    await writeFile(twoContexts, stringify(config));
    // No controller runs here: the release never gets a status.
    await createKubeClients(loadKubeConfig(cluster.kubeconfigPath)).releases.create({
      apiVersion: API_VERSION,
      kind: 'PluginRelease',
      metadata: { name: 'echo', namespace: 'default' },
      spec: {
        plugin: 'echo',
        version: '1.0.0',
        artifact: { path: '/staging/echo/1.0.0', digest: `sha256:${'a'.repeat(64)}` },
      },
    } as PluginRelease);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([cluster?.stop(), bare?.stop()]);
  });

  it('is listed by `kubectl plugin list` when it is on the PATH', async () => {
    const list = await runProcess(KUBECTL ?? 'kubectl', ['plugin', 'list'], {
      PATH: `${binDir}:${process.env.PATH}`,
      HOME: home,
    });
    expect(list.stdout).toContain(join(binDir, 'kubectl-pluginrelease'));
  });

  it('runs from a symlink on the PATH, the `ln -s` install, when Node 24 is the node on PATH', async () => {
    const linkDir = await mkdtemp(join(tmpdir(), 'kubectl-plugin-link-'));
    await symlink(join(REPO, 'bin/kubectl-pluginrelease.js'), join(linkDir, 'kubectl-pluginrelease'));
    const run = await runProcess(KUBECTL ?? 'kubectl', ['pluginrelease', 'status', 'echo'], {
      PATH: [linkDir, dirname(NODE), process.env.PATH].join(delimiter),
      HOME: home,
      KUBECONFIG: cluster.kubeconfigPath,
    });
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Name:\s+echo$/m);
  });

  it.skipIf(!OLD_NODE)('says it needs Node 24 when an older node runs it', async () => {
    const run = await runProcess(OLD_NODE ?? 'node', [join(REPO, 'bin/kubectl-pluginrelease.js'), '--help'], {
      PATH: process.env.PATH ?? '',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('error: kubectl-pluginrelease needs Node 24 or later');
  });

  it('shows a release the controller has not reported on yet, with no node rows', async () => {
    const { code, stdout } = await kubectl(['status', 'echo']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Phase:\s+Pending \(the controller has not reported on this release yet\)$/m);
    expect(stdout).toMatch(/^Ready:\s+0\/0$/m);
    expect(stdout).toMatch(/^Conditions:\n {2}<none>$/m);
    expect(stdout).toMatch(
      /^Nodes:\n {2}<none> \(no PluginActivation carries pluginrelease\.io\/release=echo yet\)$/m,
    );
  });

  it('fails with exit 1 naming the release and namespace when the release does not exist', async () => {
    const [missing, elsewhere] = await Promise.all([
      kubectl(['status', 'nope']),
      kubectl(['pause', 'echo', '-n', 'elsewhere']),
    ]);
    expect(missing).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: pluginrelease "nope" not found in namespace "default"\n',
    });
    expect(elsewhere).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: pluginrelease "echo" not found in namespace "elsewhere"\n',
    });
  });

  it("defaults the namespace to the chosen context's, which --namespace overrides", async () => {
    const [inTeamA, overridden, allFlags] = await Promise.all([
      kubectl(['status', 'echo', '--context', 'team-a'], { KUBECONFIG: twoContexts }),
      kubectl(['status', 'echo', '--context=team-a', '--namespace=default'], { KUBECONFIG: twoContexts }),
      kubectl(['status', '--kubeconfig', twoContexts, '--context', 'team-a', '-n', 'default', 'echo'], {
        KUBECONFIG: undefined,
      }),
    ]);
    expect(inTeamA.stderr).toBe('error: pluginrelease "echo" not found in namespace "team-a"\n');
    expect(overridden).toMatchObject({ code: 0, stderr: '' });
    expect(overridden.stdout).toMatch(/^Name:\s+echo$/m);
    expect(allFlags).toEqual(overridden);
  });

  it('explains a kubeconfig problem: an unknown context, a missing file, or none at all', async () => {
    const [context, missingFile, none] = await Promise.all([
      kubectl(['status', 'echo', '--context', 'prod']),
      kubectl(['status', 'echo', '--kubeconfig', join(home, 'absent.yaml')]),
      kubectl(['status', 'echo'], { KUBECONFIG: undefined }),
    ]);
    expect(context.code).toBe(1);
    expect(context.stderr).toMatch(
      /^error: context "prod" not found in kubeconfig \S+ \(it has: devcluster\)$/m,
    );
    expect(missingFile.code).toBe(1);
    expect(missingFile.stderr).toContain(`error: cannot load kubeconfig ${join(home, 'absent.yaml')}`);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(
      'error: no cluster access configured: pass --kubeconfig <path>, set KUBECONFIG',
    );
  });

  it('says when the server has no PluginRelease API, and when it cannot be reached', async () => {
    const config = parse(await readFile(cluster.kubeconfigPath, 'utf8'));
    config.clusters[0].cluster.server = 'https://127.0.0.1:1';
    const unreachable = join(home, 'unreachable.yaml');
    await writeFile(unreachable, stringify(config));
    const [noCrds, down] = await Promise.all([
      kubectl(['status', 'echo'], { KUBECONFIG: bare.kubeconfigPath }),
      kubectl(['status', 'echo'], { KUBECONFIG: unreachable }),
    ]);
    expect(noCrds.code).toBe(1);
    expect(noCrds.stderr).toContain(
      `error: the server at ${bare.url} does not serve pluginreleases.pluginrelease.io`,
    );
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(
      'error: cannot reach the API server at https://127.0.0.1:1 (context "devcluster")',
    );
  });

  it('rejects bad usage with exit 1 and a message that names the problem', async () => {
    const cases: Array<[string[], string]> = [
      [
        ['status', 'echo', '--bogus'],
        "error: unknown flag: --bogus\nSee 'kubectl pluginrelease status --help' for usage.\n",
      ],
      [
        ['status'],
        "error: status needs a release name\nSee 'kubectl pluginrelease status --help' for usage.\n",
      ],
      [
        ['rollback', 'echo'],
        'error: unknown command "rollback"\nSee \'kubectl pluginrelease --help\' for usage.\n',
      ],
      // Not a command, though every object has it: commands are own properties only.
      [['toString', 'echo'], 'error: unknown command "toString"'],
      [
        ['history', 'echo', 'extra'],
        'error: unexpected argument "extra"\nSee \'kubectl pluginrelease history --help\' for usage.\n',
      ],
      [['status', 'echo', '-n', 'Not_A_Namespace'], 'error: --namespace must be a DNS label'],
      [['status', 'echo', '--namespace'], "error: Option '-n, --namespace <value>' argument missing"],
      [[], 'error: a command is required'],
    ];
    const runs = await Promise.all(cases.map(([args]) => kubectl(args)));
    runs.forEach((run, i) => {
      const [args, message] = cases[i] ?? [[], ''];
      expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 1, stdout: '' });
      expect(run.stderr.startsWith(message), `${args.join(' ')} → ${run.stderr}`).toBe(true);
    });
  });

  it('prints help for the plugin and for each command with exit 0, without needing a cluster', async () => {
    const commands = ['status', 'wait', 'retry', 'pause', 'resume', 'history'];
    const noCluster = { KUBECONFIG: undefined };
    const [top, version, ...each] = await Promise.all([
      kubectl(['--help'], noCluster),
      kubectl(['--version'], noCluster),
      ...commands.map((c) => kubectl([c, '--help'], noCluster)),
    ]);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Usage: kubectl pluginrelease <command> <release> [flags]');
    for (const c of commands) expect(top.stdout).toMatch(new RegExp(`^ {2}${c} <release>`, 'm'));
    expect(version).toMatchObject({
      code: 0,
      stdout: `${JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')).version}\n`,
    });
    each.forEach((run, i) => {
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(
        new RegExp(`^Usage: kubectl pluginrelease ${commands[i]} <release> (\\[.+\\] )?\\[flags\\]$`, 'm'),
      );
      expect(run.stdout).toContain('--context <name>');
    });
  });
});
