// Conformance with the real kubectl binary: apply, get (table and YAML), patch the status
// subresource, wait for a condition, watch, delete — the way an operator drives the cluster.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HAS_KUBECTL, KUBECTL, openTarget, type Target } from './target.ts';
import { byVersion } from './version.ts';

const EXAMPLE = join(import.meta.dirname, '../../examples/minimal.yaml');

if (!HAS_KUBECTL) {
  console.warn(`kubectl conformance skipped: no kubectl at ${KUBECTL} (install Debian's kubernetes-client).`);
}

let t: Target;
beforeAll(async () => {
  if (HAS_KUBECTL) t = await openTarget();
});
afterAll(async () => {
  await t?.close();
});

const ns = () => ['-n', t.namespace];
const name = () => parse(readFileSync(EXAMPLE, 'utf8')).metadata.name as string;
/** The columns `kubectl get` prints for PluginReleases (the CRD's printer columns). */
const RELEASE_COLUMNS = ['NAME', 'PLUGIN', 'VERSION', 'READY', 'UP-TO-DATE', 'STATUS', 'AGE'];

describe.skipIf(!HAS_KUBECTL)('kubectl', () => {
  it('applies examples/minimal.yaml without --validate=false', async () => {
    const res = await t.kubectl(['apply', '-f', EXAMPLE, ...ns()]);
    expect(res.stderr).toBe('');
    expect(res.stdout.trim()).toBe(`pluginrelease.pluginrelease.io/${name()} created`);
  });

  it('lists PluginReleases with the printer columns PLUGIN, VERSION, READY, UP-TO-DATE, STATUS and AGE', async () => {
    const res = await t.kubectl(['get', 'plr', ...ns()]);
    expect(res.code).toBe(0);
    const [header, row] = res.stdout.trim().split('\n');
    expect(header!.split(/\s+/)).toEqual(RELEASE_COLUMNS);
    expect(row!.split(/\s+/).slice(0, 3)).toEqual([name(), 'echo', '1.0.0']);
    expect(row).toMatch(/\d+s$/);
  });

  it('gets and describes one release by its singular name, and lists only releases by it', async () => {
    const get = await t.kubectl(['get', 'pluginrelease', name(), '--no-headers', ...ns()]);
    expect(get).toMatchObject({ code: 0, stderr: '' });
    expect(get.stdout.split(/\s+/).slice(0, 3)).toEqual([name(), 'echo', '1.0.0']);
    const describe = await t.kubectl(['describe', 'pluginrelease', name(), ...ns()]);
    expect(describe).toMatchObject({ code: 0, stderr: '' });
    expect(describe.stdout).toMatch(new RegExp(`^Name:\\s+${name()}$`, 'm'));
    expect(describe.stdout).toMatch(/^Kind:\s+PluginRelease$/m);
    // The category names both kinds, and no resource name: `pluginrelease` stays the release alone.
    const all = await t.kubectl(['get', 'pluginreleases-all', '-o', 'name', ...ns()]);
    expect(all.stdout.trim()).toBe(`pluginrelease.pluginrelease.io/${name()}`);
    const list = await t.kubectl(['get', 'pluginrelease', ...ns()]);
    expect(list.stdout.split('\n')[0]!.split(/\s+/)).toEqual(RELEASE_COLUMNS);
  });

  it.each([
    [0, 'should be greater than or equal to 1'],
    [-1, 'should be greater than or equal to 1'],
    ['-10%', "should match '^(100|[1-9]?[0-9])%$'"],
  ])('refuses maxUnavailable %j, as the controller would', async (value, message) => {
    const release = parse(readFileSync(EXAMPLE, 'utf8'));
    release.metadata.name = 'bounds';
    release.spec.rollout = { maxUnavailable: value };
    const res = await t.kubectl(['apply', '--dry-run=server', '-f', '-', ...ns()], JSON.stringify(release));
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`spec.rollout.maxUnavailable: Invalid value: ${JSON.stringify(value)}`);
    expect(res.stderr).toContain(message);
  });

  it('shows priority columns with -o wide', async () => {
    const res = await t.kubectl(['get', 'plr', '-o', 'wide', ...ns()]);
    expect(res.stdout.split('\n')[0]!.split(/\s+/)).toContain('REVISION');
  });

  it('prints the stored object with -o yaml, defaults included', async () => {
    const res = await t.kubectl(['get', 'plr', name(), '-o', 'yaml', ...ns()]);
    expect(res.code).toBe(0);
    const object = parse(res.stdout);
    expect(object.kind).toBe('PluginRelease');
    expect(object.metadata.generation).toBe(1);
    expect(object.spec.activation.strategy).toBe('TryActivate');
    expect(object.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']).toContain(
      '"plugin":"echo"',
    );
  });

  it('re-applies the unchanged file without a new generation', async () => {
    const res = await t.kubectl(['apply', '-f', EXAMPLE, ...ns()]);
    expect(res.code).toBe(0);
    const object = parse((await t.kubectl(['get', 'plr', name(), '-o', 'yaml', ...ns()])).stdout);
    expect(object.metadata.generation).toBe(1);
  });

  it('waits for condition Ready, satisfied by a status patch through the status subresource', async () => {
    const waiting = t.kubectl(['wait', '--for=condition=Ready', `plr/${name()}`, '--timeout=20s', ...ns()]);
    await new Promise((r) => setTimeout(r, 300));
    const status = {
      status: {
        observedGeneration: 1,
        phase: 'Ready',
        ready: '3/3',
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            observedGeneration: 1,
            lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
            reason: 'RolloutComplete',
            message: 'All 3 nodes run 1.0.0.',
          },
        ],
      },
    };
    const patched = await t.kubectl([
      'patch',
      'plr',
      name(),
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify(status),
      ...ns(),
    ]);
    expect(patched.stdout.trim()).toBe(`pluginrelease.pluginrelease.io/${name()} patched`);
    const waited = await waiting;
    expect(waited.stdout.trim()).toBe(`pluginrelease.pluginrelease.io/${name()} condition met`);
    const table = await t.kubectl(['get', 'plr', name(), '--no-headers', ...ns()]);
    expect(table.stdout.split(/\s+/).slice(0, 5)).toEqual([name(), 'echo', '1.0.0', '3/3', 'Ready']);
  });

  it('watches with get -w and prints the changed row', async () => {
    const watching = t.kubectl(['get', 'plr', '-w', '--request-timeout=3s', ...ns()]);
    await new Promise((r) => setTimeout(r, 500));
    await t.kubectl(['label', 'plr', name(), 'watched=yes', ...ns()]);
    const res = await watching;
    const lines = res.stdout.trim().split('\n');
    expect(lines[0]!.split(/\s+/)[0]).toBe('NAME');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.slice(1).every((l) => l.startsWith(name()))).toBe(true);
  });

  it('explains the resource from the served OpenAPI schema', async () => {
    const res = await t.kubectl(['explain', 'plr.spec.activation.strategy']);
    expect(res.code).toBe(0);
    // kubectl renders explain from OpenAPI v3 when the server serves it (1.24+), else from v2 in
    // the older layout.
    expect(res.stdout).toContain(
      byVersion(t.version, '1.24', { before: 'KIND:     PluginRelease', from: 'KIND:       PluginRelease' }),
    );
    expect(res.stdout).toContain('TryActivate');
  });

  it('reports a server-side validation error from apply', async () => {
    const bad = readFileSync(EXAMPLE, 'utf8')
      .replace('name: echo', 'name: bad')
      .replace('plugin: echo', 'plugin: NOT_OK');
    const res = await t.kubectl(['apply', '-f', '-', ...ns()], bad);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('spec.plugin: Invalid value: "NOT_OK"');
  });

  it('deletes the release', async () => {
    const res = await t.kubectl(['delete', 'plr', name(), ...ns()]);
    expect(res.stdout.trim()).toBe(`pluginrelease.pluginrelease.io "${name()}" deleted`);
    const after = await t.kubectl(['get', 'plr', ...ns()]);
    expect(after.stderr.trim()).toBe(`No resources found in ${t.namespace} namespace.`);
  });
});
