// Checks the container image recipe (Dockerfile, .dockerignore) and rebuilds the image's /app from it
// without a Docker engine: the build stage's script, production dependencies only, then runs the
// entrypoint in it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { build } from '../../../scripts/build.ts';
import { expandArgs, inBuildContext, parseCopy, parseDockerfile, type Stage } from './dockerfile.ts';

const repo = join(import.meta.dirname, '../../..');
const dockerfile = parseDockerfile(readFileSync(join(repo, 'Dockerfile'), 'utf8'));
const dockerignore = readFileSync(join(repo, '.dockerignore'), 'utf8');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;
const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const stage = (name: string) => dockerfile.stages.find((s) => s.name === name)!;
/** Where the build stage's script writes the tree, and the final stage's copy of it. */
const BUILD_RUN = 'node scripts/build.ts /build';
const BUILD_COPY = '--from=build /build ./';

describe('the Dockerfile', () => {
  it('builds every stage on the Node 24 slim image that package.json pins', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of dockerfile.stages) {
      expect(expandArgs(stage.from, dockerfile.globalArgs)).toBe('node:24-bookworm-slim');
    }
    expect(pkg.devDependencies.node).toMatch(/^\^24\./);
  });

  it('installs from the lockfile, and only production dependencies for the final stage', () => {
    const installs = dockerfile.stages
      .flatMap((s) => all(s, 'RUN'))
      .filter((r) => /\bnpm (ci|install|i)\b/.test(r.args));
    for (const install of installs) expect(install.args).toMatch(/^npm ci\b/);
    const modules = all(runtime, 'COPY')
      .map((c) => parseCopy(c.args))
      .find((c) => c.dest === './node_modules');
    expect(modules?.from).toBeDefined();
    expect(all(stage(modules!.from!), 'RUN').map((r) => r.args)).toEqual([
      expect.stringMatching(/^npm ci --omit=dev\b/),
    ]);
  });

  it('ships only the output of the build script and the production dependencies', () => {
    expect(all(stage('build'), 'RUN').at(-1)?.args).toBe(BUILD_RUN);
    expect(all(runtime, 'COPY').map((c) => c.args)).toEqual([
      '--from=deps /app/node_modules ./node_modules',
      BUILD_COPY,
    ]);
  });

  it('ships no build tools: the final stage installs nothing and removes npm, npx and corepack', () => {
    for (const run of all(runtime, 'RUN')) {
      expect(run.args).not.toMatch(/\b(npm (ci|install)|apt-get install|apk add|gcc|make|python3?)\b/);
    }
    const removal = all(runtime, 'RUN')
      .map((r) => r.args)
      .join(' ');
    for (const tool of ['/usr/local/bin/npm', '/usr/local/bin/npx', '/usr/local/bin/corepack'])
      expect(removal).toContain(tool);
  });

  it('runs as the numeric non-root user the controller Deployment asks for', () => {
    const user = all(runtime, 'USER').at(-1)?.args;
    expect(user).toBe('65532:65532');
    const deployment = parse(readFileSync(join(repo, 'deploy/controller/deployment.yaml'), 'utf8'));
    expect(deployment.spec.template.spec.securityContext.runAsUser).toBe(65532);
  });

  it('starts plugin-release through its bin, in exec form', () => {
    expect(all(runtime, 'ENTRYPOINT').at(-1)?.args).toBe('["plugin-release"]');
    expect(
      all(runtime, 'RUN').some((r) =>
        r.args.includes('/app/bin/plugin-release.js /usr/local/bin/plugin-release'),
      ),
    ).toBe(true);
    expect(pkg.bin['plugin-release']).toBe('bin/plugin-release.js');
    expect(readFileSync(join(repo, pkg.bin['plugin-release']), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('copies from the build context only paths that exist and .dockerignore lets through', () => {
    const sources = dockerfile.stages
      .flatMap((s) => all(s, 'COPY'))
      .map((c) => parseCopy(c.args))
      .filter((c) => !c.from)
      .flatMap((c) => c.sources);
    expect(sources).toEqual(
      expect.arrayContaining([
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'scripts/build.ts',
        'bin',
        'src',
        'crds',
      ]),
    );
    for (const source of sources) {
      expect(existsSync(join(repo, source)), source).toBe(true);
      expect(inBuildContext(source, dockerignore), source).toBe(true);
    }
  });

  it('keeps node_modules, tests, docs and git out of the build context', () => {
    for (const path of [
      'node_modules/zod/package.json',
      'test/unit/toolchain.test.ts',
      'docs/api.md',
      '.git/HEAD',
    ])
      expect(inBuildContext(path, dockerignore), path).toBe(false);
    expect(inBuildContext('src/api/index.ts', dockerignore)).toBe(true);
  });
});

describe('the image file system, rebuilt from the Dockerfile', () => {
  let root: string;
  let app: string;
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(app, 'bin/plugin-release.js'), ...args], {
      cwd: app,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
      timeout: 20_000,
    });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'plugin-release-image-'));
    app = join(root, 'app');
    // The build stage's script writes the tree the final stage copies to /app (checked above).
    await build(app);
    // `npm ci --omit=dev`: every package the lockfile does not mark dev-only, without nested trees
    // (each nested package is its own lockfile entry).
    const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8'));
    for (const [path, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) {
      if (path === '' || entry.dev || !existsSync(join(repo, path))) continue;
      const from = join(repo, path);
      cpSync(from, join(app, path), {
        recursive: true,
        filter: (p) => !relative(from, p).split('/').includes('node_modules'),
      });
    }
  });

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('has none of the dev-only packages installed', () => {
    const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8'));
    const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev);
    expect(devOnly).toEqual(expect.arrayContaining(['vitest', 'typescript', '@biomejs/biome', 'node']));
    for (const dev of devOnly) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
  });

  it('prints the package version', () => {
    const result = run('--version');
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it('prints the agent usage', () => {
    const result = run('agent', '--help');
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Usage: plugin-release agent --node <name>/);
  });

  it('computes a digest, as operators do before writing a release', () => {
    const file = join(root, 'artifact.bin');
    writeFileSync(file, 'plugin bytes');
    const result = run('digest', file);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`sha256:${createHash('sha256').update('plugin bytes').digest('hex')}`);
  });

  /** The tree's own files (node_modules aside), relative to /app. */
  const ownFiles = () =>
    readdirSync(app)
      .filter((entry) => entry !== 'node_modules')
      .flatMap((entry) =>
        statSync(join(app, entry)).isDirectory()
          ? readdirSync(join(app, entry), { recursive: true, encoding: 'utf8' }).map((f) => `${entry}/${f}`)
          : [entry],
      )
      .filter((f) => statSync(join(app, f)).isFile());

  it('holds JavaScript only: no TypeScript for Node to strip', () => {
    const files = ownFiles();
    expect(files).toEqual(expect.arrayContaining(['bin/plugin-release.js', 'src/cli/main.js']));
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
  });

  it('holds nothing of the dev cluster, which only a checkout runs', () => {
    expect(ownFiles().filter((f) => /(^|\/)(dev|devcluster)(\/|$)/.test(f))).toEqual([]);
  });

  it('loads every module under src/ with production dependencies alone', () => {
    const modules = ownFiles()
      .filter((f) => f.startsWith('src/') && f.endsWith('.js'))
      .map((f) => join(app, f));
    expect(modules.length).toBeGreaterThan(10);
    const script = `const failed = [];
for (const m of ${JSON.stringify(modules)}) { try { await import(m); } catch (e) { failed.push(m + ': ' + e.message.split('\\n')[0]); } }
console.log(JSON.stringify(failed));`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: app,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').at(-1)!)).toEqual([]);
  });
});
