// The module hook of src/kube/loader.ts, in a process of its own (hooks are process-wide): client-node's
// KubeConfig works through the stand-ins, and what they stand for loads only when a call needs it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'loader-test-'));
const kubeconfig = join(dir, 'kubeconfig');
writeFileSync(
  kubeconfig,
  `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t0ken}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `steps` (async function bodies, with `kc` a new KubeConfig); reports each one's result and the packages it loaded. */
function loaded(steps: string[]): { result: unknown; modules: string[] }[] {
  const script = `
    (await import('./src/kube/loader.ts')).narrowClientNode();
    const { KubeConfig } = await import('./src/kube/config.ts');
    const { createRequire } = await import('node:module');
    const cache = createRequire(import.meta.url).cache;
    const packages = () => new Set(Object.keys(cache).map((p) => p.match(/.*node_modules\\/((?:@[^/]+\\/)?[^/]+)/)?.[1] + (p.includes('/dist/gen/') ? '/gen' : '')));
    let before = packages();
    const kc = new KubeConfig();
    const out = [];
    for (const step of ${JSON.stringify(steps)}) {
      const result = await eval('(async () => { ' + step + ' })()');
      const now = packages();
      out.push({ result, modules: [...now].filter((m) => !before.has(m)).sort() });
      before = now;
    }
    process.stdout.write(JSON.stringify(out));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO,
    encoding: 'utf8',
  });
  expect(child.status, child.stderr).toBe(0);
  return JSON.parse(child.stdout);
}

describe("client-node's KubeConfig through the stand-ins", () => {
  it('loads js-yaml for a kubeconfig file only, and the generated API and undici for makeApiClient only', () => {
    const [options, file, client] = loaded([
      `kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://10.0.0.1' }], users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' }); return kc.getCurrentCluster().server`,
      `kc.loadFromFile(${JSON.stringify(kubeconfig)}); return kc.getCurrentUser().token`,
      `return kc.makeApiClient((await import('@kubernetes/client-node/dist/gen/index.js')).CoreV1Api) && 'loaded'`,
    ]);
    // What the in-cluster service account reaches (loadFromCluster builds its config with options).
    expect(options).toEqual({ result: 'https://10.0.0.1', modules: [] });
    expect(file).toEqual({ result: 't0ken', modules: ['js-yaml'] });
    expect(client).toEqual({ result: 'loaded', modules: ['@kubernetes/client-node/gen', 'undici'] });
  });
});
