// `npm run test:real`: the real-cluster lane. Runs the conformance suite and the end-to-end suites that
// can run on any cluster against the one $KUBECONFIG names (E2E_REAL_CLUSTER=1), one file at a time (the
// e2e files each start a controller and agents for the cluster's Nodes), and prints its own counts.
// .ci/run starts shared/realkube for it; any real cluster works where the kubeconfig's user is admin.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

/** The suites that run against a real cluster; every other e2e file needs the dev cluster's hooks. */
const LANE = [
  'test/conformance',
  'test/e2e/rollout.test.ts',
  'test/e2e/lifecycle.test.ts',
  'test/e2e/host-runtime.test.ts',
  'test/e2e/identities.test.ts',
  'test/e2e/watch-expiry.test.ts',
];

const root = join(import.meta.dirname, '..');
const kubeconfig = process.env.KUBECONFIG;
if (!kubeconfig) {
  console.error('test:real: set KUBECONFIG to an admin kubeconfig of the cluster to test against');
  process.exit(2);
}
const kubectl = process.env.KUBECTL ?? '/usr/bin/kubectl';
let server = 'unknown version';
try {
  const version = JSON.parse(
    execFileSync(kubectl, ['--kubeconfig', kubeconfig, 'version', '-o', 'json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  );
  server = `Kubernetes ${version.serverVersion?.gitVersion ?? '?'}`;
} catch (error) {
  console.error(`test:real: cannot reach the cluster in ${kubeconfig}: ${(error as Error).message}`);
  process.exit(2);
}

const out = mkdtempSync(join(tmpdir(), 'plr-real-lane-'));
const report = join(out, 'report.json');
const started = Date.now();
const vitest = spawnSync(
  process.execPath,
  [
    join(root, 'node_modules/vitest/vitest.mjs'),
    'run',
    '--no-file-parallelism',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...LANE,
  ],
  // Each e2e file creates the Nodes it runs an agent for, and deletes them at its end.
  { cwd: root, stdio: 'inherit', env: { ...process.env, E2E_REAL_CLUSTER: '1' } },
);

interface Report {
  testResults: { name: string; assertionResults: { status: string }[] }[];
}
const counts = new Map<string, Record<string, number>>();
try {
  const parsed = JSON.parse(readFileSync(report, 'utf8')) as Report;
  for (const file of parsed.testResults) {
    const suite = relative(root, file.name).split('/')[1] ?? '?';
    const c = counts.get(suite) ?? { passed: 0, skipped: 0, failed: 0 };
    for (const t of file.assertionResults) {
      const key = t.status === 'passed' ? 'passed' : t.status === 'failed' ? 'failed' : 'skipped';
      c[key] = (c[key] ?? 0) + 1;
    }
    counts.set(suite, c);
  }
} catch {
  console.error('test:real: vitest wrote no report');
}
rmSync(out, { recursive: true, force: true });
const summary = [...counts].map(
  ([suite, c]) => `${suite} ${c.passed} passed, ${c.skipped} skipped, ${c.failed} failed`,
);
console.log(
  `\nreal lane on ${server}: ${summary.join('; ') || 'no tests ran'} (${Math.round((Date.now() - started) / 1000)} s)`,
);
process.exit(vitest.status ?? 1);
