// `plugin-release` as a user runs it (bin/plugin-release.js in a child process, a clean environment):
// help and version everywhere, exit 0; bad flags and values refused with exit 1, naming the flag.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE, REPO, type Run, runProcess } from './support.ts';

const COMMANDS = ['controller', 'agent', 'devcluster', 'demo', 'try-activate', 'digest'];

/**
 * No KUBECONFIG, NODE_NAME, POD_NAMESPACE or LOG_LEVEL from the caller: only the flags count. V8's code
 * cache spares each of the ~30 processes most of the cost of compiling @kubernetes/client-node again.
 */
const cli = (...args: string[]): Promise<Run> =>
  runProcess(NODE, [join(REPO, 'bin/plugin-release.js'), ...args], {
    PATH: process.env.PATH ?? '',
    HOME: tmpdir(),
    NODE_COMPILE_CACHE: join(tmpdir(), 'plugin-release-test-compile-cache'),
  });

// Concurrent: every test is its own child processes, and most of their time is start-up.
describe.concurrent('plugin-release', () => {
  it('prints the command tree for --help, -h, help and no arguments, with exit 0', async () => {
    const runs = await Promise.all([cli('--help'), cli('-h'), cli('help'), cli()]);
    for (const run of runs) {
      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toContain('Usage: plugin-release <command> [flags]');
      for (const command of COMMANDS) expect(run.stdout).toMatch(new RegExp(`^ {2}${command}\\s+\\S`, 'm'));
      expect(run.stdout).toContain('docs/cli.md');
    }
    expect(new Set(runs.map((r) => r.stdout)).size).toBe(1);
  });

  it('prints the package version for --version and -v', async () => {
    const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8'));
    const runs = await Promise.all([cli('--version'), cli('-v')]);
    for (const run of runs) expect(run).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it.each(COMMANDS)('prints usage and an example for `%s --help`, with exit 0', async (command) => {
    const run = await cli(command, '--help');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(new RegExp(`^Usage: plugin-release ${command}\\b`, 'm'));
    expect(run.stdout).toMatch(/^Examples?:$/m);
  });

  it('refuses an unknown command with exit 1, naming it, and shows the command tree', async () => {
    const run = await cli('deploy');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('plugin-release: unknown command "deploy"');
    expect(run.stderr).toContain('Usage: plugin-release <command> [flags]');
  });

  it.each(COMMANDS)('refuses an unknown flag to `%s` with exit 1, naming the flag', async (command) => {
    const run = await cli(command, '--bogus');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`plugin-release ${command}: `);
    expect(run.stderr).toContain('--bogus');
  });

  it.each([
    ['controller --log-level loud', 'log-level'],
    ['controller --metrics-addr nowhere', 'metrics-addr: must be host:port'],
    ['controller --namespace a --all-namespaces', '--namespace and --all-namespaces exclude each other'],
    ['agent --staging-root /s --root /r', '--node (or $NODE_NAME) is required'],
    ['devcluster --kubeconfig-out /nonexistent/never.yaml --port abc', '--port'],
    ['devcluster', '--kubeconfig-out is required'],
    ['demo --nodes 0', 'nodes'],
    ['try-activate --staging-root /s --root /r', '--release is required'],
    ['digest', 'Usage: plugin-release digest <path>'],
  ])('refuses `%s` with exit 1 and says which flag is wrong', async (line, message) => {
    const run = await cli(...line.split(' '));
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(message);
  });

  it("refuses a release with typo'd fields in try-activate, naming each, before touching --root", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'try-activate-typo-'));
    const file = join(dir, 'release.yaml');
    await writeFile(
      file,
      [
        'apiVersion: pluginrelease.io/v1alpha1',
        'kind: PluginRelease',
        'metadata: {name: typo}',
        'spec:',
        '  plugin: echo',
        '  version: "1.0.0"',
        `  artifact: {path: ${dir}/a, digest: "sha256:${'0'.repeat(64)}"}`,
        '  helth: {probes: [{grpc: {}}]}',
        '  rollout: {maxUnavailble: 2, canery: {nodes: 1}}',
      ].join('\n'),
    );
    const root = join(dir, 'root');
    const run = await cli('try-activate', '--release', file, '--staging-root', dir, '--root', root);
    expect(run).toMatchObject({ code: 1, stdout: '' });
    expect(run.stderr).toContain(
      'unknown field "spec.helth", unknown field "spec.rollout.maxUnavailble", unknown field "spec.rollout.canery"',
    );
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('says in a sentence that a path given to digest does not exist', async () => {
    const run = await cli('digest', '/nonexistent/plugin');
    expect(run).toMatchObject({ code: 1, stdout: '' });
    expect(run.stderr).toBe(
      'plugin-release digest: /nonexistent/plugin does not exist (or a link on the way to it is broken).\n',
    );
  });
});
